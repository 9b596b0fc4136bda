"""Meetings pushed to calendars: the real google-api-python-client against a fake Google at the wire, and the
real `caldav` library against a real CalDAV server (Radicale, started here)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import caldav
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.utils import timezone
from icalendar import Calendar as ICalendar

from conversations import inbox
from conversations.models import Contact, Conversation, Event
from leads import tools
from leads.models import LeadMovement, ScheduledEvent
from talia.integrations import envelopes, sinks
from talia.integrations.calendars import CalendarSink, google_event_id
from talia.integrations.models import CalendarConnection, CalendarEntry, DeliveryStatus, EventDelivery
from talia.integrations.sinks import DeliveryFailed, Envelope
from talia.integrations.tests.fake_google_calendar import FakeGoogleCalendar
from talia.integrations.tests.helpers import publish_until_settled

AGENT = LeadMovement.MovedBy.AGENT
CALENDAR_ID = "team@group.calendar.google.com"
SERVICE_EMAIL = "talia-calendar@talia-test.iam.gserviceaccount.com"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --- Meetings through the project's own code paths ---------------------------------------------------------


def book_meeting(session: str, *, days: int = 3, email: str = "ana@example.com") -> ScheduledEvent:
    conversation = inbox.receive("web", session, "I'd like a meeting", assistant_turn=False).conversation
    Contact.objects.filter(pk=conversation.contact_id).update(email=email, full_name="Ana Pérez")
    conversation = Conversation.objects.select_related("contact").get(pk=conversation.pk)
    start = (timezone.now() + timedelta(days=days)).replace(microsecond=0, second=0)
    meeting, created = tools.book(
        conversation,
        title="Project review",
        start=start,
        duration_minutes=45,
        notes="Bring the plans",
        message=None,
        created_by=LeadMovement.MovedBy.ASSISTANT,
    )
    assert created
    return meeting


def envelopes_of(meeting: ScheduledEvent, name: str) -> list[Envelope]:
    rows = [e for e in Event.objects.filter(name=name).order_by("id") if e.payload.get("event_id") == str(meeting.pk)]
    assert rows, f"no {name} event for {meeting.pk}"
    return envelopes.build(rows, personal_data=True)


def scheduled(meeting: ScheduledEvent) -> Envelope:
    return envelopes_of(meeting, "meeting_scheduled")[-1]


def updated(meeting: ScheduledEvent) -> Envelope:
    return envelopes_of(meeting, "meeting_updated")[-1]


def sink_for(connection: CalendarConnection) -> CalendarSink:
    """The sink as the publisher finds it: through the registered providers."""
    found = [s for s in sinks.enabled_sinks() if s.key == f"calendar:{connection.pk}"]
    assert len(found) == 1
    assert isinstance(found[0], CalendarSink)
    return found[0]


# --- Google Calendar ----------------------------------------------------------------------------------------


def service_account_json() -> str:
    pem = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "talia-test",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": SERVICE_EMAIL,
            "client_id": "1234567890",
            "token_uri": "https://oauth2.googleapis.com/token",  # as Google writes it; the setting wins
        }
    )


@pytest.fixture
def google(settings) -> Iterator[FakeGoogleCalendar]:
    with FakeGoogleCalendar(KEY.public_key()) as fake:
        fake.add_calendar(CALENDAR_ID, "Sales team")
        settings.TALIA_GOOGLE_CALENDAR_API_BASE = f"{fake.url}/calendar/v3/"
        settings.TALIA_GOOGLE_OAUTH_TOKEN_URI = f"{fake.url}/token"
        yield fake


@pytest.fixture
def google_connection(db, google: FakeGoogleCalendar) -> CalendarConnection:
    return CalendarConnection.objects.create(
        name="Google",
        kind=CalendarConnection.Kind.GOOGLE,
        calendar_id=CALENDAR_ID,
        credentials=service_account_json(),
    )


def when(event: dict, field: str) -> datetime:
    return datetime.fromisoformat(event[field]["dateTime"])


def test_a_scheduled_meeting_is_created_once_in_google(google, google_connection):
    meeting = book_meeting("cal-google-0001")
    sink = sink_for(google_connection)

    sink.deliver(scheduled(meeting))
    sink.deliver(scheduled(meeting))  # redelivered

    events = google.events(CALENDAR_ID)
    assert list(events) == [google_event_id(meeting.pk)]
    event = events[google_event_id(meeting.pk)]
    assert event["summary"] == "Project review"
    assert when(event, "start") == meeting.start
    assert when(event, "end") == meeting.start + timedelta(minutes=45)
    assert event["status"] == "tentative"
    assert "ana@example.com" in event["description"] and "Bring the plans" in event["description"]
    assert "attendees" not in event  # inviting is off by default
    assert google.count("POST") == 1  # the second delivery updated the known event
    entry = CalendarEntry.objects.get(connection=google_connection, meeting_id=meeting.pk)
    assert (entry.remote_id, entry.status, entry.etag) == (event["id"], "active", event["etag"])


def test_the_service_account_signs_a_jwt_for_the_fake_token_endpoint(google, google_connection):
    sink_for(google_connection).deliver(scheduled(book_meeting("cal-google-0002")))

    assert len(google.assertions) == 1  # verified against the key's public half
    claims = google.assertions[0]
    assert claims["iss"] == SERVICE_EMAIL
    assert claims["aud"] == "https://oauth2.googleapis.com/token"  # google-auth's audience, wherever it posts
    assert claims["scope"] == "https://www.googleapis.com/auth/calendar.events"


def test_a_lost_entry_does_not_make_a_second_google_event(google, google_connection):
    meeting = book_meeting("cal-google-0003")
    sink = sink_for(google_connection)
    sink.deliver(scheduled(meeting))
    CalendarEntry.objects.all().delete()  # e.g. the row was not saved after the insert succeeded

    sink.deliver(scheduled(meeting))

    assert len(google.events(CALENDAR_ID)) == 1
    assert google.count("POST") == 2 and google.count("PUT") == 1  # the 409 became an update
    assert CalendarEntry.objects.get(meeting_id=meeting.pk).remote_id == google_event_id(meeting.pk)


def test_a_rescheduled_and_confirmed_meeting_updates_the_google_event(google, google_connection):
    meeting = book_meeting("cal-google-0004")
    sink = sink_for(google_connection)
    sink.deliver(scheduled(meeting))
    later = meeting.start + timedelta(days=1, hours=2)

    meeting = tools.change_meeting(meeting, start=later, status="confirmed", title="Contract review", changed_by=AGENT)
    sink.deliver(updated(meeting))

    event = google.events(CALENDAR_ID)[google_event_id(meeting.pk)]
    assert when(event, "start") == later
    assert (event["summary"], event["status"]) == ("Contract review", "confirmed")
    # An out-of-date event replayed later converges to the meeting as it is now.
    sink.deliver(scheduled(meeting))
    assert when(google.events(CALENDAR_ID)[google_event_id(meeting.pk)], "start") == later


def test_the_publisher_keeps_a_google_calendar_in_step_with_a_meeting(google, google_connection, no_stream):
    # End to end: the meeting's events claimed and delivered by the real publisher, only those to the calendar.
    meeting = book_meeting("cal-google-0010")
    publish_until_settled()
    assert when(google.events(CALENDAR_ID)[google_event_id(meeting.pk)], "start") == meeting.start

    later = meeting.start + timedelta(days=2)
    tools.change_meeting(meeting, start=later, changed_by=AGENT)
    publish_until_settled()

    assert list(google.events(CALENDAR_ID)) == [google_event_id(meeting.pk)]
    assert when(google.events(CALENDAR_ID)[google_event_id(meeting.pk)], "start") == later
    delivered = EventDelivery.objects.filter(sink_key=f"calendar:{google_connection.pk}")
    assert sorted(delivered.values_list("event__name", flat=True)) == ["meeting_scheduled", "meeting_updated"]
    assert set(delivered.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_a_cancelled_meeting_is_removed_from_google(google, google_connection):
    meeting = book_meeting("cal-google-0005")
    sink = sink_for(google_connection)
    sink.deliver(scheduled(meeting))

    meeting = tools.change_meeting(meeting, status="cancelled", changed_by=AGENT)
    sink.deliver(updated(meeting))
    sink.deliver(updated(meeting))

    assert google.events(CALENDAR_ID)[google_event_id(meeting.pk)]["status"] == "cancelled"
    assert google.count("DELETE") == 1
    assert CalendarEntry.objects.get(meeting_id=meeting.pk).status == "cancelled"


def test_a_meeting_booked_again_after_its_cancellation_comes_back(google, google_connection):
    meeting = book_meeting("cal-google-0006")
    sink = sink_for(google_connection)
    sink.deliver(scheduled(meeting))
    meeting = tools.change_meeting(meeting, status="cancelled", changed_by=AGENT)
    sink.deliver(updated(meeting))

    meeting = tools.change_meeting(meeting, status="confirmed", changed_by=AGENT)
    sink.deliver(updated(meeting))

    assert google.events(CALENDAR_ID)[google_event_id(meeting.pk)]["status"] == "confirmed"
    assert CalendarEntry.objects.get(meeting_id=meeting.pk).status == "active"


def test_a_deleted_meeting_is_removed_and_one_never_pushed_costs_no_call(google, google_connection):
    pushed, never = book_meeting("cal-google-0007"), book_meeting("cal-google-0008")
    sink = sink_for(google_connection)
    sink.deliver(scheduled(pushed))
    pushed_envelope, never_envelope = scheduled(pushed), scheduled(never)
    ScheduledEvent.objects.filter(pk__in=[pushed.pk, never.pk]).delete()
    calls = len(google.requests)

    sink.deliver(pushed_envelope)
    sink.deliver(never_envelope)

    assert google.events(CALENDAR_ID)[google_event_id(pushed.pk)]["status"] == "cancelled"
    assert google.requests[calls:] == [("DELETE", f"/calendar/v3/calendars/{CALENDAR_ID}/events/talia{pushed.pk.hex}")]


def test_inviting_attendees_sends_them_to_google(google, google_connection):
    CalendarConnection.objects.filter(pk=google_connection.pk).update(invite_attendees=True)
    meeting = book_meeting("cal-google-0009", email="bea@example.com")

    sink_for(google_connection).deliver(scheduled(meeting))

    event = google.events(CALENDAR_ID)[google_event_id(meeting.pk)]
    assert event["attendees"] == [{"email": "bea@example.com", "displayName": "Ana Pérez"}]


def test_an_oauth_token_refreshes_at_the_token_endpoint(google, db):
    connection = CalendarConnection.objects.create(
        name="Google (OAuth)",
        kind=CalendarConnection.Kind.GOOGLE,
        calendar_id=CALENDAR_ID,
        credentials=json.dumps(
            {
                "type": "authorized_user",
                "client_id": "client.apps.googleusercontent.com",
                "client_secret": "client-secret",
                "refresh_token": "1//refresh-token",
            }
        ),
    )
    meeting = book_meeting("cal-google-0010")

    sink_for(connection).deliver(scheduled(meeting))

    assert google.refresh_tokens == ["1//refresh-token"]
    assert google_event_id(meeting.pk) in google.events(CALENDAR_ID)


def test_google_refusals_fail_the_delivery_with_the_status_and_no_secret(google, google_connection):
    google.forbidden.add(CALENDAR_ID)
    meeting = book_meeting("cal-google-0011")

    with pytest.raises(DeliveryFailed) as failure:
        sink_for(google_connection).deliver(scheduled(meeting))

    assert failure.value.status_code == 403
    assert "writer access" in failure.value.reason
    assert "PRIVATE KEY" not in failure.value.reason
    assert not CalendarEntry.objects.exists()


def test_a_forged_key_is_refused_at_the_token_endpoint(google, google_connection):
    google.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()

    with pytest.raises(DeliveryFailed, match="refused the credentials"):
        sink_for(google_connection).deliver(scheduled(book_meeting("cal-google-0012")))
    assert google.events(CALENDAR_ID) == {}


def test_a_google_token_endpoint_that_never_answers_fails_the_delivery(db, settings):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    settings.TALIA_CALENDAR_TIMEOUT_S = 1
    settings.TALIA_GOOGLE_CALENDAR_API_BASE = f"{url}/calendar/v3/"
    settings.TALIA_GOOGLE_OAUTH_TOKEN_URI = f"{url}/token"
    connection = CalendarConnection.objects.create(
        name="Silent", kind="google", calendar_id=CALENDAR_ID, credentials=service_account_json()
    )
    try:
        with pytest.raises(DeliveryFailed, match="did not answer in time"):
            sink_for(connection).deliver(scheduled(book_meeting("cal-google-0013")))
    finally:
        silent.close()
    assert not CalendarEntry.objects.exists()


def test_a_google_api_that_never_answers_fails_the_delivery(google, google_connection, settings):
    """The token comes from the fake; the API call itself hangs."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    settings.TALIA_CALENDAR_TIMEOUT_S = 1
    settings.TALIA_GOOGLE_CALENDAR_API_BASE = f"http://127.0.0.1:{silent.getsockname()[1]}/calendar/v3/"
    try:
        with pytest.raises(DeliveryFailed, match="did not answer in time"):
            sink_for(google_connection).deliver(scheduled(book_meeting("cal-google-0014")))
    finally:
        silent.close()
    assert len(google.assertions) == 1


def test_only_active_connections_are_sinks_and_they_take_meetings_only(google, google_connection):
    CalendarConnection.objects.create(name="Off", kind="google", calendar_id="x", credentials="{}", active=False)

    keys = [s.key for s in sinks.enabled_sinks() if s.key.startswith("calendar:")]

    assert keys == [f"calendar:{google_connection.pk}"]
    sink = sink_for(google_connection)
    assert sink.personal_data is True
    assert sink.accepts("meeting_scheduled") and sink.accepts("meeting_updated")
    assert not sink.accepts("message_received")
    with pytest.raises(DeliveryFailed, match="names no meeting"):
        sink.deliver(
            Envelope(
                id=1,
                type="meeting_updated",
                occurred_at="",
                conversation_id=None,
                contact_id=None,
                channel=None,
                data={},
            )
        )


# --- Admin --------------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(db, django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_tests_a_connection_and_never_shows_its_secrets(google, google_connection, admin_client):
    page = admin_client.get(f"/admin/integrations/calendarconnection/{google_connection.pk}/change/")
    assert page.status_code == 200
    assert "PRIVATE KEY" not in page.content.decode()
    listing = admin_client.get("/admin/integrations/calendarconnection/")
    assert SERVICE_EMAIL in listing.content.decode() and "PRIVATE KEY" not in listing.content.decode()

    response = admin_client.post(
        "/admin/integrations/calendarconnection/",
        {"action": "test_connection", "_selected_action": [google_connection.pk]},
        follow=True,
    )

    text = response.content.decode()
    assert "Sales team" in text  # the calendar's name, read from the fake
    assert google.count("POST") == google.count("PUT") == google.count("DELETE") == 0


def test_saving_the_admin_form_blank_keeps_the_stored_secret(google_connection, admin_client):
    stored = google_connection.credentials
    response = admin_client.post(
        f"/admin/integrations/calendarconnection/{google_connection.pk}/change/",
        {"name": "Renamed", "kind": "google", "active": "on", "calendar_id": CALENDAR_ID, "credentials": ""},
    )
    assert response.status_code == 302
    google_connection.refresh_from_db()
    assert (google_connection.name, google_connection.credentials) == ("Renamed", stored)


def test_the_calendar_admin_pages_render(google_connection, admin_client):
    for path in [
        "/admin/integrations/calendarconnection/?q=Google&kind__exact=google",
        "/admin/integrations/calendarconnection/add/",
        "/admin/integrations/calendarentry/?status__exact=active",
    ]:
        assert admin_client.get(path).status_code == 200, path


def test_the_admin_refuses_credentials_that_are_not_a_google_key(db, admin_client):
    response = admin_client.post(
        "/admin/integrations/calendarconnection/add/",
        {"name": "Bad", "kind": "google", "active": "on", "calendar_id": CALENDAR_ID, "credentials": '{"a": 1}'},
    )
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["credentials"]
    assert not CalendarConnection.objects.exists()


# --- CalDAV: a real Radicale --------------------------------------------------------------------------------

RADICALE_USER, RADICALE_PASSWORD = "sales", "app-password-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def radicale(tmp_path_factory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("radicale")
    users = folder / "users"
    users.write_text(f"{RADICALE_USER}:{RADICALE_PASSWORD}\n")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            "--config",
            "",
            f"--server-hosts=127.0.0.1:{port}",
            f"--storage-filesystem-folder={folder / 'collections'}",
            "--auth-type=htpasswd",
            f"--auth-htpasswd-filename={users}",
            "--auth-htpasswd-encryption=plain",
            "--logging-level=warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(200):
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                time.sleep(0.05)
        client = caldav.DAVClient(url=url, username=RADICALE_USER, password=RADICALE_PASSWORD)
        client.principal().make_calendar(name="Sales meetings", cal_id="sales-meetings")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def caldav_connection(db, radicale: str) -> CalendarConnection:
    return CalendarConnection.objects.create(
        name="Radicale",
        kind=CalendarConnection.Kind.CALDAV,
        url=f"{radicale}{RADICALE_USER}/sales-meetings/",
        username=RADICALE_USER,
        password=RADICALE_PASSWORD,
    )


def calendar_events(radicale: str, uid: str) -> list:
    """The VEVENTs with this UID, read back from Radicale with the caldav library."""
    client = caldav.DAVClient(url=radicale, username=RADICALE_USER, password=RADICALE_PASSWORD)
    calendar = client.calendar(url=f"{radicale}{RADICALE_USER}/sales-meetings/")
    found = []
    for resource in calendar.events():
        for vevent in ICalendar.from_ical(resource.data).walk("VEVENT"):
            if str(vevent["uid"]) == uid:
                found.append(vevent)
    return found


def test_a_meeting_lives_in_a_caldav_calendar_from_booking_to_cancellation(radicale, caldav_connection):
    meeting = book_meeting("cal-caldav-0001")
    uid = f"{meeting.pk}@talia"
    sink = sink_for(caldav_connection)

    sink.deliver(scheduled(meeting))
    sink.deliver(scheduled(meeting))  # redelivered: still one
    [vevent] = calendar_events(radicale, uid)
    assert vevent.decoded("dtstart") == meeting.start
    assert (str(vevent["summary"]), str(vevent["status"])) == ("Project review", "TENTATIVE")
    assert "ana@example.com" in str(vevent["description"]) and "attendee" not in vevent
    entry = CalendarEntry.objects.get(connection=caldav_connection, meeting_id=meeting.pk)
    assert entry.remote_id == uid and entry.href.endswith(f"/sales-meetings/{quote(uid)}.ics")

    later = meeting.start + timedelta(hours=3)
    meeting = tools.change_meeting(meeting, start=later, status="confirmed", changed_by=AGENT)
    sink.deliver(updated(meeting))
    [vevent] = calendar_events(radicale, uid)
    assert (vevent.decoded("dtstart"), str(vevent["status"])) == (later, "CONFIRMED")

    meeting = tools.change_meeting(meeting, status="cancelled", changed_by=AGENT)
    sink.deliver(updated(meeting))
    sink.deliver(updated(meeting))
    assert calendar_events(radicale, uid) == []
    assert CalendarEntry.objects.get(pk=entry.pk).status == "cancelled"


def test_a_caldav_calendar_found_by_name_gets_the_attendees(radicale, db):
    connection = CalendarConnection.objects.create(
        name="Radicale by name",
        kind="caldav",
        url=radicale,
        username=RADICALE_USER,
        password=RADICALE_PASSWORD,
        calendar_name="Sales meetings",
        invite_attendees=True,
    )
    meeting = book_meeting("cal-caldav-0002", email="carla@example.com")

    sink_for(connection).deliver(scheduled(meeting))

    [vevent] = calendar_events(radicale, f"{meeting.pk}@talia")
    assert str(vevent["attendee"]) == "mailto:carla@example.com"


def test_a_wrong_caldav_password_fails_the_delivery_without_saying_it(radicale, caldav_connection):
    CalendarConnection.objects.filter(pk=caldav_connection.pk).update(password="wrong-password-9")
    meeting = book_meeting("cal-caldav-0003")

    with pytest.raises(DeliveryFailed) as failure:
        sink_for(caldav_connection).deliver(scheduled(meeting))

    assert "wrong-password-9" not in failure.value.reason
    assert calendar_events(radicale, f"{meeting.pk}@talia") == []
    assert not CalendarEntry.objects.exists()


def test_the_admin_tests_a_caldav_connection(radicale, caldav_connection, admin_client):
    response = admin_client.post(
        "/admin/integrations/calendarconnection/",
        {"action": "test_connection", "_selected_action": [caldav_connection.pk]},
        follow=True,
    )
    assert "Sales meetings" in response.content.decode()


def test_meeting_ids_make_valid_google_event_ids():
    meeting_id = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
    assert google_event_id(meeting_id) == "talia0f8fad5bd9cb469fa16570867728950e"
