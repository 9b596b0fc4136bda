from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from channels_voice.models import VoiceCall


@admin.register(VoiceCall)
class VoiceCallAdmin(admin.ModelAdmin):
    """The call history, read-only: calls are written by Twilio's webhooks only."""

    list_display = ("call_sid", "from_number", "to_number", "status", "mode", "locale", "started_at", "duration_s")
    list_filter = ("status", "mode", "locale", "direction")
    search_fields = ("call_sid", "from_number", "to_number")
    date_hierarchy = "started_at"
    list_select_related = ("conversation",)
    raw_id_fields = ("conversation",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
