"""Leads in Django admin: cards with their movements, insights, meetings and calendar feeds."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from leads.models import CalendarFeed, ConversationAnalysis, ConversationInsight, LeadCard, LeadMovement, ScheduledEvent


class LeadMovementInline(admin.TabularInline):
    model = LeadMovement
    fields = ["created", "from_stage", "to_stage", "moved_by", "user", "reason"]
    readonly_fields = ["created", "from_stage", "to_stage", "moved_by", "user", "reason"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LeadCard)
class LeadCardAdmin(admin.ModelAdmin):
    list_display = ["contact", "stage", "value", "channel", "owner", "updated"]
    list_filter = ["stage", "channel", "owner"]
    search_fields = ["contact__full_name", "contact__email", "contact__company", "summary"]
    list_select_related = ["contact", "owner"]
    # The stage changes through the pipeline (the dashboard's kanban), so that every move is recorded.
    readonly_fields = ["contact", "source_conversation", "channel", "stage", "created", "updated"]
    inlines = [LeadMovementInline]


@admin.register(ScheduledEvent)
class ScheduledEventAdmin(admin.ModelAdmin):
    list_display = ["title", "start", "duration_minutes", "contact", "status", "created_by"]
    list_filter = ["status", "created_by", "start"]
    search_fields = ["title", "contact__full_name", "contact__email"]
    list_select_related = ["contact"]
    readonly_fields = ["contact", "conversation", "message", "created_by", "created"]


@admin.register(ConversationInsight)
class ConversationInsightAdmin(admin.ModelAdmin):
    list_display = ["conversation", "intent", "sentiment", "next_step", "engine", "updated"]
    list_filter = ["sentiment", "engine"]
    search_fields = ["intent", "next_step"]
    readonly_fields = ["conversation", "engine", "updated"]


@admin.register(ConversationAnalysis)
class ConversationAnalysisAdmin(admin.ModelAdmin):
    list_display = ["conversation", "analysed_seq", "analysed_at"]
    readonly_fields = ["conversation", "analysed_seq", "analysed_at", "findings"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = ["user", "created"]
    fields = ["user", "created"]  # the token stays out of sight
    readonly_fields = ["user", "created"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
