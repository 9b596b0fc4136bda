"""Admin for calendar connections: secrets are write-only, and a "Test connection" action reads the calendar."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from talia.integrations.calendars import check_connection
from talia.integrations.models import CalendarConnection, CalendarEntry
from talia.integrations.sinks import DeliveryFailed

SECRET_FIELDS = ("credentials", "password")


class CalendarConnectionForm(forms.ModelForm):
    """The stored secrets are never sent to the browser; a blank secret field keeps the stored one."""

    credentials = forms.CharField(
        label=_("Google credentials (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text=CalendarConnection._meta.get_field("credentials").help_text,
    )
    url = forms.URLField(
        label=_("CalDAV URL"),
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=CalendarConnection._meta.get_field("url").help_text,
    )
    password = forms.CharField(
        label=_("password"),
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=CalendarConnection._meta.get_field("password").help_text,
    )

    class Meta:
        model = CalendarConnection
        fields = [
            "name",
            "kind",
            "active",
            "invite_attendees",
            "calendar_id",
            "credentials",
            "url",
            "username",
            "password",
            "calendar_name",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["credentials"] = ""
        self.initial["password"] = ""
        for name in SECRET_FIELDS:
            if getattr(self.instance, name, ""):
                self.fields[name].help_text = gettext("Stored; leave blank to keep it. ") + str(
                    self.fields[name].help_text
                )

    def clean(self) -> dict[str, Any]:
        # Keep what is stored when the field was left blank; the model's clean() then checks the result.
        cleaned = super().clean() or {}
        for name in SECRET_FIELDS:
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = CalendarConnection.objects.values_list(name, flat=True).get(pk=self.instance.pk)
        return cleaned


def credentials_summary(connection: CalendarConnection) -> str:
    """What the stored credentials are, without the secret parts."""
    if not connection.credentials:
        return "—"
    try:
        info = json.loads(connection.credentials)
    except ValueError:
        return gettext("not JSON")
    if not isinstance(info, dict):
        return gettext("not JSON")
    if info.get("type") == "service_account":
        return gettext("service account %(email)s") % {"email": info.get("client_email", "?")}
    if info.get("type") == "authorized_user":
        return gettext("OAuth token (client %(client)s)") % {"client": str(info.get("client_id", "?"))[:24]}
    return gettext("unknown type")


@admin.register(CalendarConnection)
class CalendarConnectionAdmin(admin.ModelAdmin):
    form = CalendarConnectionForm
    list_display = ["name", "kind", "active", "target", "credentials_kind", "entries_count"]
    list_filter = ["kind", "active"]
    actions = ["test_connection"]

    @admin.display(description=_("calendar"))
    def target(self, connection: CalendarConnection) -> str:
        if connection.kind == CalendarConnection.Kind.GOOGLE:
            return connection.calendar_id
        return " · ".join(filter(None, [connection.url, connection.calendar_name]))

    @admin.display(description=_("credentials"))
    def credentials_kind(self, connection: CalendarConnection) -> str:
        if connection.kind == CalendarConnection.Kind.GOOGLE:
            return credentials_summary(connection)
        return connection.username or "—"

    @admin.display(description=_("meetings"))
    def entries_count(self, connection: CalendarConnection) -> int:
        return connection.entries.count()

    @admin.action(description=_("Test connection (reads the calendar, changes nothing)"))
    def test_connection(self, request: HttpRequest, queryset: QuerySet[CalendarConnection]) -> None:
        for connection in queryset:
            try:
                name = check_connection(connection)
            except DeliveryFailed as failure:
                self.message_user(
                    request,
                    gettext("%(connection)s: failed: %(reason)s")
                    % {"connection": connection, "reason": failure.reason},
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    gettext("%(connection)s: connected to the calendar “%(name)s”.")
                    % {"connection": connection, "name": name},
                    messages.SUCCESS,
                )


@admin.register(CalendarEntry)
class CalendarEntryAdmin(admin.ModelAdmin):
    list_display = ["meeting_id", "connection", "remote_id", "status", "last_synced_at"]
    list_filter = ["connection", "status"]
    search_fields = ["=meeting_id", "remote_id"]
    readonly_fields = ["connection", "meeting_id", "remote_id", "href", "etag", "status", "last_synced_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
