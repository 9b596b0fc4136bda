"""Meetings pushed to the business's calendars: Google Calendar and CalDAV (Nextcloud, Fastmail, iCloud).

One sink per active `CalendarConnection` (key "calendar:<pk>"), taking `meeting_scheduled` and
`meeting_updated`. Invariants:
- A delivery reads the meeting's CURRENT row (by the envelope's `event_id`), never the event's payload, so a
  replayed or out-of-date event converges the calendar to the meeting as it is now.
- One remote event per (connection, meeting), whatever is delivered twice: Google's event id is derived
  from the meeting's UUID (`talia` + its hex digits: base32hex, which Google accepts as a client-chosen id) and
  an insert that answers 409 becomes an update; CalDAV's object is PUT at `<uuid>@talia.ics` with that UID.
  `CalendarEntry` remembers what was created, for updates and removal.
- A cancelled meeting, or one deleted, is removed from the calendar (when TalIA put it there).
- No transaction is open across a network call; every call has TALIA_CALENDAR_TIMEOUT_S.
- Secrets (the credentials JSON, the CalDAV password) never appear in an error or a log line.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone

from leads.models import ScheduledEvent
from talia.integrations import sinks
from talia.integrations.models import CalendarConnection, CalendarEntry
from talia.integrations.sinks import DeliveryFailed, Envelope, Sink

logger = logging.getLogger("talia.integrations")

MEETING_EVENTS = frozenset({"meeting_scheduled", "meeting_updated"})
GOOGLE_SCOPES = ["https://www.googleapis.com/auth/calendar.events"]
GOOGLE_STATUSES: dict[str, str] = {
    ScheduledEvent.Status.PROPOSED: "tentative",
    ScheduledEvent.Status.CONFIRMED: "confirmed",
}


def google_event_id(meeting_id: object) -> str:
    """Google's id for a meeting's event: base32hex (0-9, a-v), 5 to 1024 characters, deterministic."""
    return "talia" + str(meeting_id).replace("-", "").lower()


def caldav_uid(meeting_id: object) -> str:
    """The meeting's iCalendar UID, the same the private feed (leads.calendar) uses."""
    return f"{meeting_id}@talia"


@dataclass(frozen=True)
class Remote:
    """What a calendar calls the meeting's event."""

    remote_id: str
    href: str = ""
    etag: str = ""


class Calendar(Protocol):
    def put(self, meeting: ScheduledEvent, *, known: bool) -> Remote: ...
    def remove(self, entry: CalendarEntry) -> None: ...
    def describe(self) -> str: ...


def _description(meeting: ScheduledEvent) -> str:
    lines = [str(meeting.contact)]
    for attendee in meeting.attendees:
        if isinstance(attendee, dict) and attendee.get("email"):
            lines.append(f"{attendee.get('name') or attendee['email']} <{attendee['email']}>")
    if meeting.notes:
        lines += ["", meeting.notes]
    return "\n".join(lines)


def _emails(meeting: ScheduledEvent) -> list[dict[str, str]]:
    return [
        {"email": a["email"], "displayName": str(a.get("name") or a["email"])}
        for a in meeting.attendees
        if isinstance(a, dict) and a.get("email")
    ]


# --- Google Calendar ---------------------------------------------------------------------------------------


class GoogleCalendar:
    """Events in one Google calendar through google-api-python-client (the discovery document it ships)."""

    def __init__(self, connection: CalendarConnection) -> None:
        self.connection = connection
        self.calendar_id = connection.calendar_id
        self._service: Any = None

    def _events(self) -> Any:
        if self._service is None:
            import httplib2
            from google_auth_httplib2 import AuthorizedHttp
            from googleapiclient import discovery

            http = AuthorizedHttp(self._credentials(), http=httplib2.Http(timeout=settings.TALIA_CALENDAR_TIMEOUT_S))
            self._service = discovery.build(
                "calendar",
                "v3",
                http=http,
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": settings.TALIA_GOOGLE_CALENDAR_API_BASE},
            )
        return self._service.events()

    def _credentials(self) -> Any:
        try:
            info = json.loads(self.connection.credentials)
        except ValueError:
            info = None
        kind = info.get("type") if isinstance(info, dict) else None
        try:
            if kind == "service_account":
                from google.oauth2 import service_account

                account = service_account.Credentials.from_service_account_info(info, scopes=GOOGLE_SCOPES)
                return account.with_token_uri(settings.TALIA_GOOGLE_OAUTH_TOKEN_URI)
            if kind == "authorized_user":
                from google.oauth2.credentials import Credentials

                # The scopes the user granted (the token's own), not ours: a refresh asking for others fails.
                token = Credentials.from_authorized_user_info(info)
                return token.with_token_uri(settings.TALIA_GOOGLE_OAUTH_TOKEN_URI)
        except (ValueError, KeyError) as error:
            # The library's message names the missing field, never a value.
            raise DeliveryFailed(f"Google credentials are incomplete: {error}") from None
        raise DeliveryFailed('Google credentials must be a service account key or an OAuth token ("type").')

    def _body(self, meeting: ScheduledEvent) -> dict[str, Any]:
        zone = settings.TIME_ZONE
        end = meeting.start + timedelta(minutes=meeting.duration_minutes)
        body: dict[str, Any] = {
            "summary": meeting.title,
            "description": _description(meeting),
            "start": {"dateTime": meeting.start.isoformat(), "timeZone": zone},
            "end": {"dateTime": end.isoformat(), "timeZone": zone},
            "status": GOOGLE_STATUSES.get(meeting.status, "tentative"),
            "extendedProperties": {"private": {"talia_meeting": str(meeting.pk)}},
        }
        if self.connection.invite_attendees:
            body["attendees"] = _emails(meeting)
        return body

    def _send_updates(self) -> str:
        return "all" if self.connection.invite_attendees else "none"

    def put(self, meeting: ScheduledEvent, *, known: bool) -> Remote:
        event_id = google_event_id(meeting.pk)
        if known:
            try:
                return self._update(event_id, meeting)
            except DeliveryFailed as failure:
                if failure.status_code not in (404, 410):
                    raise
                # Gone from the calendar (deleted there): insert it again below.
        try:
            created = self._call(
                self._events().insert(
                    calendarId=self.calendar_id,
                    body={"id": event_id, **self._body(meeting)},
                    sendUpdates=self._send_updates(),
                )
            )
        except DeliveryFailed as failure:
            if failure.status_code != 409:
                raise
            return self._update(event_id, meeting)  # the id exists: created before (or deleted): update it
        return Remote(created["id"], created.get("htmlLink", ""), created.get("etag", ""))

    def _update(self, event_id: str, meeting: ScheduledEvent) -> Remote:
        updated = self._call(
            self._events().update(
                calendarId=self.calendar_id,
                eventId=event_id,
                body=self._body(meeting),
                sendUpdates=self._send_updates(),
            )
        )
        return Remote(updated["id"], updated.get("htmlLink", ""), updated.get("etag", ""))

    def remove(self, entry: CalendarEntry) -> None:
        try:
            self._call(
                self._events().delete(
                    calendarId=self.calendar_id, eventId=entry.remote_id, sendUpdates=self._send_updates()
                )
            )
        except DeliveryFailed as failure:
            if failure.status_code not in (404, 410):  # already gone
                raise

    def describe(self) -> str:
        listed = self._call(self._events().list(calendarId=self.calendar_id, maxResults=1))
        return str(listed.get("summary") or self.calendar_id)

    def _call(self, request: Any) -> dict[str, Any]:
        from google.auth.exceptions import GoogleAuthError, TransportError
        from googleapiclient.errors import HttpError

        try:
            return request.execute() or {}
        except HttpError as error:
            raise DeliveryFailed(
                f"Google Calendar answered {error.resp.status}: {error._get_reason()}",
                status_code=int(error.resp.status),
            ) from None
        except TransportError as error:
            raise DeliveryFailed(f"Google's token endpoint could not be reached: {_first_line(error)}") from None
        except GoogleAuthError as error:
            raise DeliveryFailed(f"Google refused the credentials: {_first_line(error)}") from None
        except TimeoutError as error:
            raise DeliveryFailed(
                f"Google (the token endpoint or the Calendar API) did not answer in time: {error}"
            ) from None
        except OSError as error:
            raise DeliveryFailed(f"Google Calendar could not be reached: {error}") from None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


# --- CalDAV ------------------------------------------------------------------------------------------------


class CalDAVCalendar:
    """Events in one CalDAV calendar through the `caldav` library: PUT by UID, DELETE by URL."""

    def __init__(self, connection: CalendarConnection) -> None:
        self.connection = connection
        self._calendar: Any = None

    def _collection(self) -> Any:
        if self._calendar is None:
            import caldav

            client = caldav.DAVClient(
                url=self.connection.url,
                username=self.connection.username or None,
                password=self.connection.password or None,
                timeout=settings.TALIA_CALENDAR_TIMEOUT_S,
            )
            if self.connection.calendar_name:
                self._calendar = client.principal().calendar(name=self.connection.calendar_name)
            else:
                self._calendar = client.calendar(url=self.connection.url)
        return self._calendar

    def _ical(self, meeting: ScheduledEvent) -> str:
        from icalendar import Calendar as ICalendar

        from leads.calendar import calendar_of

        # The private feed's VEVENT (UID "<uuid>@talia", times, status, description, attendees).
        document = ICalendar.from_ical(calendar_of([meeting], "TalIA"))
        del document["x-wr-calname"]
        if not self.connection.invite_attendees:
            for vevent in document.walk("VEVENT"):
                vevent.pop("attendee", None)
                vevent["description"] = _description(meeting)
        return document.to_ical().decode()

    def put(self, meeting: ScheduledEvent, *, known: bool) -> Remote:
        saved = self._guard(lambda: self._collection().save_event(self._ical(meeting)))
        return Remote(caldav_uid(meeting.pk), str(saved.url), "")

    def remove(self, entry: CalendarEntry) -> None:
        import caldav

        def delete() -> None:
            calendar = self._collection()
            url = entry.href or str(calendar.url.join(quote(entry.remote_id) + ".ics"))
            caldav.Event(client=calendar.client, url=url, parent=calendar).delete()  # 404: already gone

        self._guard(delete)

    def describe(self) -> str:
        calendar = self._collection()
        name = self._guard(calendar.get_display_name)
        return str(name or calendar.url)

    def _guard(self, call: Any) -> Any:
        import requests
        from caldav.lib import error as caldav_error

        try:
            return call()
        except caldav_error.AuthorizationError as error:
            raise DeliveryFailed("The CalDAV server refused the username or password.", status_code=401) from error
        except caldav_error.DAVError as error:
            raise DeliveryFailed(f"The CalDAV server refused: {_first_line(error)}") from None
        except requests.Timeout as error:
            raise DeliveryFailed(f"The CalDAV server did not answer in time: {type(error).__name__}") from None
        except (requests.RequestException, OSError) as error:
            raise DeliveryFailed(f"The CalDAV server could not be reached: {type(error).__name__}") from None


# --- Sync and sinks ----------------------------------------------------------------------------------------


def calendar_for(connection: CalendarConnection) -> Calendar:
    if connection.kind == CalendarConnection.Kind.GOOGLE:
        return GoogleCalendar(connection)
    return CalDAVCalendar(connection)


def sync_meeting(connection: CalendarConnection, meeting_id: str, calendar: Calendar | None = None) -> str:
    """Make the connection's calendar show the meeting as it is now; returns what was done."""
    meeting = ScheduledEvent.objects.select_related("contact").filter(pk=meeting_id).first()
    entry = CalendarEntry.objects.filter(connection=connection, meeting_id=meeting_id).first()
    calendar = calendar or calendar_for(connection)
    if meeting is None or meeting.status == ScheduledEvent.Status.CANCELLED:
        if entry is None or entry.status == CalendarEntry.Status.CANCELLED:
            return "nothing"
        calendar.remove(entry)
        CalendarEntry.objects.filter(pk=entry.pk).update(
            status=CalendarEntry.Status.CANCELLED, last_synced_at=timezone.now()
        )
        return "removed"
    known = entry is not None and entry.status == CalendarEntry.Status.ACTIVE
    remote = calendar.put(meeting, known=known)
    CalendarEntry.objects.update_or_create(
        connection=connection,
        meeting_id=meeting.pk,
        defaults={
            "remote_id": remote.remote_id,
            "href": remote.href[:1000],
            "etag": remote.etag[:255],
            "status": CalendarEntry.Status.ACTIVE,
            "last_synced_at": timezone.now(),
        },
    )
    return "updated" if known else "created"


def check_connection(connection: CalendarConnection) -> str:
    """The calendar's name as the server gives it (reads only); raises DeliveryFailed."""
    return calendar_for(connection).describe()


class CalendarSink(Sink):
    personal_data = True  # attendees' names and emails, the meeting's notes

    def __init__(self, connection: CalendarConnection) -> None:
        self.connection = connection
        self.key = connection.sink_key
        self.label = connection.name
        self._calendar = calendar_for(connection)

    def accepts(self, event_type: str) -> bool:
        return event_type in MEETING_EVENTS

    def deliver(self, envelope: Envelope) -> int | None:
        if envelope.type not in MEETING_EVENTS:
            return None
        try:
            meeting_id = str(uuid.UUID(str(envelope.data.get("event_id"))))
        except ValueError:
            raise DeliveryFailed(f"Event {envelope.id} ({envelope.type}) names no meeting.") from None
        done = sync_meeting(self.connection, meeting_id, self._calendar)
        logger.info("calendar %s: meeting %s %s (event %s)", self.key, meeting_id, done, envelope.id)
        return None


@sinks.provider
def calendar_sinks() -> list[Sink]:
    return [CalendarSink(connection) for connection in CalendarConnection.objects.filter(active=True)]
