from django.contrib import admin
from django.http import HttpRequest

from channels_web.models import WebchatSession


@admin.register(WebchatSession)
class WebchatSessionAdmin(admin.ModelAdmin):
    list_display = [
        "session_id",
        "contact",
        "started_at",
        "last_seen_at",
        "closed_at",
        "message_count",
        "lead_captured",
        "origin",
    ]
    list_filter = ["lead_captured", "locale", ("closed_at", admin.EmptyFieldListFilter), "started_at"]
    search_fields = ["session_id", "ip", "origin", "contact__email", "contact__full_name"]
    list_select_related = ["contact"]
    date_hierarchy = "started_at"
    readonly_fields = [field.name for field in WebchatSession._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
