"""Calendars that TalIA's meetings are pushed to (talia/integrations/calendars.py does the pushing).

A `CalendarConnection` is one business calendar: Google Calendar (service account key or OAuth token JSON)
or any CalDAV server. Its secrets (`credentials`, `password`) are stored in the database as entered; the
admin never shows them back and nothing logs them. A `CalendarEntry` remembers what one meeting
(leads.ScheduledEvent, by id: the meeting may be gone) became in one calendar, so every push is an update
of the same remote event.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = ["CalendarConnection", "CalendarEntry"]

GOOGLE_CREDENTIAL_TYPES = ("service_account", "authorized_user")


class CalendarConnection(models.Model):
    class Kind(models.TextChoices):
        GOOGLE = "google", _("Google Calendar")
        CALDAV = "caldav", _("CalDAV (Nextcloud, Fastmail, iCloud…)")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    active = models.BooleanField(_("active"), default=True)
    invite_attendees = models.BooleanField(
        _("invite attendees"),
        default=False,
        help_text=_(
            "Add the contact as an attendee of the calendar event (the calendar may email them). Off: the "
            "attendees are listed in the event's description only. Google service accounts can invite only "
            "with domain-wide delegation."
        ),
    )
    # Google Calendar.
    calendar_id = models.CharField(
        _("Google calendar id"),
        max_length=255,
        blank=True,
        help_text=_("Settings → the calendar → Integrate calendar → Calendar ID (e.g. …@group.calendar.google.com)."),
    )
    credentials = models.TextField(
        _("Google credentials (JSON)"),
        blank=True,
        help_text=_(
            "A service account key JSON (share the calendar with the service account's email) or an OAuth "
            "authorized-user token JSON. Stored in the database; never shown again."
        ),
    )
    # CalDAV.
    url = models.URLField(
        _("CalDAV URL"),
        max_length=500,
        blank=True,
        help_text=_("The calendar's URL, or the server's URL together with the calendar's name below."),
    )
    username = models.CharField(_("username"), max_length=255, blank=True)
    password = models.CharField(
        _("password"),
        max_length=255,
        blank=True,
        help_text=_("An app password where the provider has them. Stored in the database; never shown again."),
    )
    calendar_name = models.CharField(
        _("calendar name"),
        max_length=255,
        blank=True,
        help_text=_("When the URL is the server's: the display name of the calendar to use."),
    )
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("calendar connection")
        verbose_name_plural = _("calendar connections")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def sink_key(self) -> str:
        return f"calendar:{self.pk}"

    def clean(self) -> None:
        if self.kind == self.Kind.GOOGLE:
            errors = {}
            if not self.calendar_id:
                errors["calendar_id"] = _("Google Calendar needs the calendar's id.")
            if not self.credentials:
                errors["credentials"] = _("Google Calendar needs a service account key or an OAuth token (JSON).")
            else:
                try:
                    info = json.loads(self.credentials)
                except ValueError:
                    info = None
                if not isinstance(info, dict) or info.get("type") not in GOOGLE_CREDENTIAL_TYPES:
                    errors["credentials"] = _(
                        'Paste the JSON of a service account key or an OAuth token ("type": "service_account" '
                        'or "authorized_user").'
                    )
            if errors:
                raise ValidationError(errors)
        elif self.kind == self.Kind.CALDAV and not self.url:
            raise ValidationError({"url": _("CalDAV needs the calendar's or the server's URL.")})


class CalendarEntry(models.Model):
    """One meeting in one calendar: the remote event's id (Google) or UID and URL (CalDAV)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("In the calendar")
        CANCELLED = "cancelled", _("Removed (meeting cancelled)")

    connection = models.ForeignKey(CalendarConnection, on_delete=models.CASCADE, related_name="entries")
    meeting_id = models.UUIDField(_("meeting"))
    remote_id = models.CharField(_("remote id"), max_length=255)
    href = models.CharField(_("URL"), max_length=1000, blank=True)
    etag = models.CharField(_("ETag"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    last_synced_at = models.DateTimeField(_("last synced"), default=timezone.now)

    class Meta:
        verbose_name = _("calendar entry")
        verbose_name_plural = _("calendar entries")
        ordering = ["-last_synced_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "meeting_id"], name="one_calendar_entry_per_meeting"),
        ]

    def __str__(self) -> str:
        return f"{self.meeting_id} → {self.remote_id}"
