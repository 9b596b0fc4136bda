"""Django admin for the conversation core: browse and search everything; history is read-only.

Messages, runs, tool calls and events are records of what happened, so the admin shows them but never
edits them; status changes go through the state machine (see the "route to queue" and "close" actions).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from conversations import state
from conversations.events import events
from conversations.models import (
    AgentAssignment,
    AssignmentOffer,
    AssistantProfile,
    AssistantRun,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationRating,
    ConversationSummary,
    EndChatRequest,
    Event,
    HandoffRequest,
    InternalNote,
    Label,
    Message,
    QuickReply,
    Team,
    ToolCall,
)
from talia.text import shorten


class ReadOnlyAdminMixin:
    """For records of what happened: viewable, never added or edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()


class ContactIdentityInline(admin.TabularInline):
    model = ContactIdentity
    extra = 0
    fields = ["channel", "value", "created"]
    readonly_fields = ["created"]


class ContactConversationInline(ReadOnlyInline):
    model = Conversation
    fields = ["channel", "status", "opened_at", "closed_at", "last_message_at"]
    ordering = ["-opened_at"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "phone", "company", "locale", "consent_given_at", "created"]
    list_filter = ["locale", "identities__channel", ("consent_given_at", admin.EmptyFieldListFilter), "created"]
    search_fields = ["display_name", "full_name", "email", "phone", "company", "identities__value"]
    readonly_fields = ["id", "created", "updated"]
    date_hierarchy = "created"
    inlines = [ContactIdentityInline, ContactConversationInline]


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ["seq", "created", "sender", "agent", "text", "content_type", "delivery_status"]
    ordering = ["seq"]
    show_change_link = False


class HandoffRequestInline(ReadOnlyInline):
    model = HandoffRequest
    fields = ["created", "requested_by", "reason", "status", "resolved_at"]


class AgentAssignmentInline(ReadOnlyInline):
    model = AgentAssignment
    fields = ["agent", "assigned_at", "released_at", "release_reason"]


class InternalNoteInline(ReadOnlyInline):
    model = InternalNote
    fields = ["created", "kind", "author", "recipient", "text"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "contact",
        "channel",
        "status",
        "team",
        "assigned_agent",
        "last_message_at",
        "opened_at",
        "closed_at",
    ]
    list_filter = ["channel", "status", "team", "labels", "opened_at", "closed_at", "assigned_agent"]
    search_fields = ["id", "contact__display_name", "contact__full_name", "contact__email", "contact__phone",
                     "contact__identities__value", "messages__text"]  # fmt: skip
    list_select_related = ["contact", "assigned_agent", "team"]
    date_hierarchy = "opened_at"
    # Status and assignment change only through the state machine (the actions below).
    readonly_fields = ("id", "contact", "channel", "status", "team", "assigned_agent", "last_seq",
                                        "last_message_at", "opened_at", "closed_at", "created", "updated")  # fmt: skip
    fields = (*readonly_fields, "provider_conversation_id", "last_response_id")
    inlines = [MessageInline, HandoffRequestInline, AgentAssignmentInline, InternalNoteInline]
    actions = ["route_to_queue", "close"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conversations are opened by messages, through the inbox

    @admin.action(description=_("Route to the agent queue"))
    def route_to_queue(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        self._apply(
            request,
            queryset,
            lambda c: state.request_handoff(
                c, requested_by=HandoffRequest.RequestedBy.ADMIN, reason=f"Routed by {request.user}"
            ),
        )

    @admin.action(description=_("Close"))
    def close(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        self._apply(request, queryset, lambda c: state.close_conversation(c, ended_by="system", reason="admin"))

    def _apply(self, request: HttpRequest, queryset: QuerySet[Conversation], change: Any) -> None:
        done = refused = 0
        for conversation in queryset:
            try:
                change(conversation)
                done += 1
            except state.TransitionError:
                refused += 1
        if done:
            self.message_user(request, ngettext("%d conversation changed.", "%d conversations changed.", done) % done)
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%d conversation was not in a status that allows it.",
                    "%d conversations were not in a status that allows it.",
                    refused,
                )
                % refused,  # fmt: skip
                messages.WARNING,
            )


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "seq", "sender", "short_text", "channel", "delivery_status", "created"]
    list_filter = ["channel", "direction", "sender", "delivery_status", "created"]
    search_fields = ["text", "external_id", "conversation__id", "conversation__contact__email"]
    list_select_related = ["conversation__contact"]
    date_hierarchy = "created"

    @admin.display(description=_("text"))
    def short_text(self, obj: Message) -> str:
        return shorten(obj.text, 80)


@admin.register(HandoffRequest)
class HandoffRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "requested_by", "reason", "status", "out_of_hours", "created", "resolved_at"]
    list_filter = ["status", "requested_by", "out_of_hours", "conversation__channel", "created"]
    search_fields = ["reason", "conversation__id"]
    list_select_related = ["conversation__contact"]


@admin.register(AgentAssignment)
class AgentAssignmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "agent", "assigned_at", "released_at", "release_reason"]
    list_filter = ["release_reason", "agent", "conversation__channel", "assigned_at"]
    search_fields = ["agent__username", "conversation__id"]
    list_select_related = ["conversation__contact", "agent"]


@admin.register(AssignmentOffer)
class AssignmentOfferAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "agent", "team", "status", "created", "expires_at", "resolved_at"]
    list_filter = ["status", "team", "agent", "created"]
    search_fields = ["agent__username", "conversation__id"]
    list_select_related = ["conversation__contact", "agent", "team"]


@admin.register(InternalNote)
class InternalNoteAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "kind", "author", "recipient", "text", "created"]
    list_filter = ["kind", "conversation__channel", "created"]
    search_fields = ["text", "conversation__id"]
    list_select_related = ["conversation__contact", "author", "recipient"]


@admin.register(EndChatRequest)
class EndChatRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "requested_by", "status", "created", "resolved_at"]
    list_filter = ["status", "requested_by", "conversation__channel", "created"]
    search_fields = ["conversation__id"]


@admin.register(ConversationSummary)
class ConversationSummaryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "summary", "message_count", "started_at", "ended_at", "ended_by", "engine"]
    list_filter = ["ended_by", "engine", "conversation__channel", "ended_at"]
    search_fields = ["summary", "conversation__id"]


@admin.register(ConversationRating)
class ConversationRatingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "score", "channel", "comment_excerpt", "created"]
    list_filter = ["score", "conversation__channel", "created"]
    search_fields = ["comment", "conversation__id"]
    list_select_related = ["conversation__contact"]
    date_hierarchy = "created"

    @admin.display(description=_("channel"), ordering="conversation__channel")
    def channel(self, rating: ConversationRating) -> str:
        return rating.conversation.channel_label

    @admin.display(description=_("comment"))
    def comment_excerpt(self, rating: ConversationRating) -> str:
        return shorten(rating.comment, 80)


class ToolCallInline(ReadOnlyInline):
    model = ToolCall
    fields = ["call_id", "name", "arguments", "output", "status", "created"]


@admin.register(AssistantRun)
class AssistantRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["conversation", "engine", "model", "status", "rounds", "total_tokens", "latency_ms", "created"]
    list_filter = ["status", "engine", "model", "conversation__channel", "created"]
    search_fields = ["response_id", "previous_response_id", "conversation__id", "error", "worker"]
    list_select_related = ["conversation__contact"]
    date_hierarchy = "created"
    inlines = [ToolCallInline]


@admin.register(ToolCall)
class ToolCallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "call_id", "status", "run", "created"]
    list_filter = ["name", "status", "created"]
    search_fields = ["call_id", "name", "run__conversation__id"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # `name` is an open CharField: the filter lists the names stored, the label comes from the declaration.
    list_display = ["name", "label", "conversation", "contact", "created"]
    list_filter = ["name", "conversation__channel", "created"]
    search_fields = ["name", "conversation__id", "contact__email"]
    list_select_related = ["conversation__contact", "contact"]
    date_hierarchy = "created"

    @admin.display(description=_("event"))
    def label(self, obj: Event) -> str:
        return events.label(obj.name)


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "swatch", "description", "conversation_count"]
    search_fields = ["name", "description"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Label]:
        return super().get_queryset(request).annotate(conversation_count=Count("conversations"))

    @admin.display(description=_("colour"))
    def swatch(self, label: Label) -> str:
        return format_html(
            '<span style="display:inline-block;width:1em;height:1em;border-radius:50%;background:{}"></span> {}',
            label.colour,
            label.colour,
        )

    @admin.display(description=_("conversations"), ordering="conversation_count")
    def conversation_count(self, label: Label) -> int:
        return int(getattr(label, "conversation_count", 0))


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "channels", "keywords", "auto_assign", "capacity", "member_count"]
    list_filter = ["auto_assign"]
    search_fields = ["name", "keywords"]
    filter_horizontal = ["members"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, team: Team) -> int:
        return int(getattr(team, "member_count", 0))


@admin.register(QuickReply)
class QuickReplyAdmin(admin.ModelAdmin):
    list_display = ["shortcut", "locale", "text", "updated"]
    list_filter = ["locale"]
    search_fields = ["shortcut", "text"]


@admin.register(AssistantProfile)
class AssistantProfileAdmin(admin.ModelAdmin):
    """The one profile of the business's assistant: added once, then edited; deleting it restores the defaults."""

    list_display = ["__str__", "business_name", "assistant_name", "updated"]
    fieldsets = [
        (_("Who speaks"), {"fields": ["business_name", "assistant_name", "greeting_es", "greeting_en"]}),
        (
            _("How it speaks"),
            {"fields": ["tone", "instructions_es", "instructions_en", "lead_fields", "offer_whatsapp"]},
        ),
        (_("Consent notice"), {"fields": ["consent_text_es", "consent_text_en", "consent_version"]}),
        (
            _("Business hours"),
            {
                "fields": [
                    "time_zone",
                    "business_hours",
                    "holidays",
                    "out_of_hours_es",
                    "out_of_hours_en",
                    "reply_minutes",
                ]
            },
        ),
        (_("Chat's first minute"), {"fields": ["offer_choice", "prechat_fields", "prechat_required"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not AssistantProfile.objects.exists()
