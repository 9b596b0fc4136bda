"""Retention (TALIA_RETENTION_DAYS): exactly the old closed conversations lose their texts and files, a
contact loses their details only once nothing recent is left, and the dashboard counts the same."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from channels_voice import kpis as voice_kpis
from channels_voice import services as voice
from channels_voice.models import RecordingState, VoiceCall, VoiceRecording
from channels_web import kpis as web_kpis
from channels_web import services as web
from channels_web.models import WebchatSession
from conversations import inbox, retention, state, tasks
from conversations.assistant.tools import record_consent, set_email, set_full_name, set_phone_number
from conversations.models import (
    AssistantRun,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationSummary,
    Event,
    HandoffRequest,
    InternalNote,
    Message,
    Sender,
    ToolCall,
)
from leads import kpis
from leads import pipeline as leads_pipeline
from leads.models import LeadCard, LeadMovement, ScheduledEvent

DAYS = 30
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SECRET = "Lucía Pérez"


@pytest.fixture
def storage(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.TALIA_RECORDINGS_DIR = tmp_path / "recordings"
    settings.TALIA_RECORDING_KEY = Fernet.generate_key().decode()
    settings.TALIA_RETENTION_DAYS = DAYS
    return tmp_path


def web_conversation(session: str, text: str = f"Hola, soy {SECRET}") -> Conversation:
    visitor = web.Visitor(session_id=session, ip="203.0.113.7", user_agent="Firefox/140", origin="https://example.com")
    received = web.post_message(visitor, text)
    conversation = received.conversation
    inbox.send(conversation, "¡Hola! ¿En qué te ayudo?", sender=Sender.ASSISTANT)
    return conversation


def fill(conversation: Conversation, agent: Any) -> str:
    """Everything personal a conversation can hold; the stored attachment's name."""
    record_consent(conversation, True)
    set_full_name(conversation, SECRET)
    set_email(conversation, "lucia@example.com")
    set_phone_number(conversation, "+34600123456")
    stored = default_storage.save("webchat/photo.png", ContentFile(PNG))
    first = conversation.messages.get(seq=1)
    first.metadata = {
        **first.metadata,
        "attachments": [{"content_type": "image/png", "stored": stored, "size": len(PNG), "name": "dni.png"}],
        "geolocation": {"city": "Sevilla"},
    }
    first.save(update_fields=["metadata"])
    run = AssistantRun.objects.get(trigger_message=first)
    ToolCall.objects.create(run=run, call_id="call_1", name="set_email", arguments={"email": "lucia@example.com"},
                            output={"ok": True}, status="ok")  # fmt: skip
    state.request_handoff(conversation, requested_by="contact", reason=f"{SECRET} quiere una persona")
    HandoffRequest.objects.filter(conversation=conversation).update(brief_summary=f"{SECRET} pregunta por precios")
    InternalNote.objects.create(conversation=conversation, author=agent, text=f"{SECRET} es clienta VIP")
    card, _ = leads_pipeline.card_for(conversation.contact, conversation, LeadMovement.MovedBy.ASSISTANT)
    LeadCard.objects.filter(pk=card.pk).update(summary=f"{SECRET}, reforma", notes="llamar por la tarde", value=1200)
    ScheduledEvent.objects.create(
        title=f"Visita con {SECRET}",
        start=timezone.now() + timedelta(days=2),
        attendees=["lucia@example.com"],
        notes="trae planos",
        contact=conversation.contact,
        conversation=conversation,
        created_by="assistant",
    )
    state.close_conversation(conversation, ended_by="agent", reason=f"resuelto con {SECRET}")
    ConversationSummary.objects.create(
        conversation=conversation,
        summary=f"{SECRET} pidió presupuesto",
        topics=["reforma"],
        message_count=2,
        started_at=conversation.opened_at,
        ended_at=timezone.now(),
        ended_by="agent",
    )
    return stored


def age(conversation: Conversation, days: int) -> None:
    """Closed (if it is) `days` ago, and its contact that old too."""
    when = timezone.now() - timedelta(days=days)
    Conversation.objects.filter(pk=conversation.pk, closed_at__isnull=False).update(closed_at=when)
    Contact.objects.filter(pk=conversation.contact_id).update(created=when - timedelta(days=1))


def voice_call(sid: str, number: str) -> tuple[Conversation, VoiceRecording, Path]:
    call = {"CallSid": sid, "From": number, "To": "+34910000000"}
    started = voice.start_call(call)
    name = f"RE{sid[2:].ljust(32, '0')}.wav.fernet"
    folder = Path(django_settings.TALIA_RECORDINGS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"ciphertext")
    recording = VoiceRecording.objects.create(
        recording_sid=name.split(".")[0], call=started.call, state=RecordingState.STORED, stored_name=name, size=10
    )
    state.close_conversation(started.conversation, ended_by="contact")
    return started.conversation, recording, folder / name


@dataclass
class World:
    old: Conversation
    old_file: str
    returning_old: Conversation
    returning_new: Conversation
    recent: Conversation
    still_open: Conversation
    call: Conversation
    recording: VoiceRecording
    recording_file: Path


@pytest.fixture
def world(db: None, storage: Path, django_user_model: Any) -> World:
    agent = django_user_model.objects.create_user("ana-retention", is_staff=True)
    old = web_conversation("retention-old-00001")
    old_file = fill(old, agent)
    age(old, DAYS + 5)

    # A contact who came back: the old conversation goes, their details stay for the new one.
    returning_old = web_conversation("retention-back-00001")
    fill(returning_old, agent)
    age(returning_old, DAYS + 40)
    returning_new = web_conversation("retention-back-00001", "Vuelvo a escribir")
    assert returning_new.pk != returning_old.pk and returning_new.contact_id == returning_old.contact_id
    state.close_conversation(returning_new, ended_by="contact")

    recent = web_conversation("retention-recent-0001")
    fill(recent, agent)
    age(recent, DAYS - 5)

    # Opened long ago and never closed: nothing of it is old enough.
    still_open = web_conversation("retention-open-00001")
    record_consent(still_open, True)
    set_full_name(still_open, "Abierta Todavía")
    Conversation.objects.filter(pk=still_open.pk).update(opened_at=timezone.now() - timedelta(days=400))
    age(still_open, 400)

    call, recording, recording_file = voice_call("CA" + "1" * 32, "+34600999888")
    age(call, DAYS + 1)
    for conversation in (old, returning_old, returning_new, recent, still_open, call):
        conversation.refresh_from_db()
    return World(old, old_file, returning_old, returning_new, recent, still_open, call, recording, recording_file)


def snapshot(conversation: Conversation) -> dict[str, Any]:
    """Everything of a conversation and its contact that retention could touch."""
    contact = Contact.objects.get(pk=conversation.contact_id)
    return {
        "messages": list(conversation.messages.values_list("text", "metadata")),
        "handoffs": list(
            HandoffRequest.objects.filter(conversation=conversation).values_list("reason", "brief_summary")
        ),
        "notes": list(InternalNote.objects.filter(conversation=conversation).values_list("text", flat=True)),
        "summary": list(ConversationSummary.objects.filter(conversation=conversation).values_list("summary")),
        "tools": list(ToolCall.objects.filter(run__conversation=conversation).values_list("arguments", "output")),
        "events": list(Event.objects.filter(conversation=conversation).order_by("pk").values_list("payload")),
        "contact": (contact.full_name, contact.email, contact.phone, contact.metadata),
        "identities": list(ContactIdentity.objects.filter(contact=contact).values_list("value", flat=True)),
        "sessions": list(WebchatSession.objects.filter(contact=contact).values_list("ip", "user_agent")),
        "cards": list(LeadCard.objects.filter(contact=contact).values_list("summary", "notes", "stage", "value")),
        "meetings": list(ScheduledEvent.objects.filter(contact=contact).values_list("title", "attendees", "notes")),
    }


def dashboard() -> tuple[Any, ...]:
    period = kpis.Period.last(7)
    since, until = timezone.now() - timedelta(days=500), timezone.now() + timedelta(days=1)
    return (
        kpis.report(period),
        kpis.agent_figures(period),
        web_kpis.session_figures(since, until),
        voice_kpis.call_figures(since, until),
    )


def test_anonymises_exactly_the_old_closed_conversations(world: World) -> None:
    untouched = {name: snapshot(getattr(world, name)) for name in ("returning_new", "recent", "still_open")}
    message_counts = {c.pk: c.messages.count() for c in Conversation.objects.all()}
    before = dashboard()

    outcome = retention.apply_retention()

    assert outcome.conversations == 3  # old, returning_old and the call
    assert outcome.contacts == 2  # old's visitor and the caller; the returning visitor has a recent one
    assert {c.pk for c in Conversation.objects.filter(anonymised_at__isnull=False)} == {
        world.old.pk,
        world.returning_old.pk,
        world.call.pk,
    }
    for name, data in untouched.items():
        assert snapshot(getattr(world, name)) == data, name
    assert dashboard() == before
    assert {c.pk: c.messages.count() for c in Conversation.objects.all()} == message_counts

    old = snapshot(world.old)
    assert all(text == "" for text, _metadata in old["messages"])
    first_metadata = old["messages"][0][1]
    assert first_metadata["attachments_removed"] == 1 and "attachments" not in first_metadata
    assert "geolocation" not in first_metadata
    assert old["handoffs"] == [("", "")]
    assert old["notes"] == [""]
    assert old["summary"] == [("",)]
    assert old["tools"] == [({}, {})]
    assert SECRET not in str(old["events"]) and "lucia@example.com" not in str(old["events"])
    assert old["contact"] == ("", "", "", {})
    assert all(value.startswith(retention.ANONYMOUS) for value in old["identities"])
    assert old["sessions"] == [(None, "")]
    assert old["cards"] == [("", "", LeadCard.objects.get(contact=world.old.contact).stage, 1200)]
    assert old["meetings"] == [("—", [], "")]
    assert not default_storage.exists(world.old_file)
    # Who said what, and when, stays.
    assert list(world.old.messages.values_list("seq", "sender")) == [(1, "contact"), (2, "assistant")]

    # The returning visitor: the old conversation is cleared, their details and card are not.
    returning = snapshot(world.returning_old)
    assert all(text == "" for text, _metadata in returning["messages"])
    assert returning["contact"][:3] == (SECRET, "lucia@example.com", "+34600123456")
    assert returning["cards"][0][0] == f"{SECRET}, reforma"
    assert returning["sessions"] == [("203.0.113.7", "Firefox/140")]

    call = VoiceCall.objects.get(conversation=world.call)
    assert call.from_number == "" and call.duration_s is None and call.status
    world.recording.refresh_from_db()
    assert (world.recording.state, world.recording.stored_name) == (RecordingState.ABSENT, "")
    assert not world.recording_file.exists()
    assert "+34600999888" not in str(snapshot(world.call))

    # Two web conversations of two messages (the call said nothing); two attachments and a recording.
    event = Event.objects.get(name=retention.RETENTION_APPLIED.name)
    assert event.payload == {"days": DAYS, "conversations": 3, "contacts": 2, "messages": 4, "files": 3}
    assert event.conversation_id is None and event.contact_id is None


def test_a_second_run_changes_nothing(world: World) -> None:
    retention.apply_retention()
    after_first = {c.pk: snapshot(c) for c in Conversation.objects.all()}
    stamps = dict(Conversation.objects.values_list("pk", "anonymised_at"))

    outcome = retention.apply_retention()

    assert (outcome.conversations, outcome.contacts) == (0, 0)
    assert {c.pk: snapshot(c) for c in Conversation.objects.all()} == after_first
    assert dict(Conversation.objects.values_list("pk", "anonymised_at")) == stamps
    assert Event.objects.filter(name=retention.RETENTION_APPLIED.name).count() == 1


def test_the_contact_goes_once_its_last_conversation_is_old(world: World) -> None:
    retention.apply_retention()
    later = timezone.now() + timedelta(days=DAYS + 1)  # the returning visitor's new conversation is old now

    outcome = retention.apply_retention(now=later)

    assert outcome.contacts >= 1
    returning = snapshot(world.returning_new)
    assert returning["contact"] == ("", "", "", {})
    assert returning["cards"][0][:2] == ("", "")
    assert snapshot(world.still_open)["contact"][0] == "Abierta Todavía"  # its conversation is still open


def test_batches_are_bounded(world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(retention, "BATCH", 1)
    with caplog.at_level("INFO", logger="talia.retention"):
        outcome = retention.apply_retention()
    assert (outcome.conversations, outcome.contacts) == (3, 2)
    batches = [record.getMessage() for record in caplog.records if record.getMessage().startswith("Retention: 1 ")]
    assert batches == ["Retention: 1 conversations anonymised"] * 3 + ["Retention: 1 contacts anonymised"] * 2


def test_an_interrupted_run_keeps_its_finished_batches_and_the_next_one_completes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 1)
    calls: list[list[Any]] = []

    def crash_on_the_second_batch(ids: list[Any]) -> list[tuple[str, int]]:
        calls.append(ids)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return []

    crash = retention.RetentionPart("crash", crash_on_the_second_batch, lambda ids: [])
    monkeypatch.setitem(retention.parts._parts, "crash", crash)

    with pytest.raises(RuntimeError):
        retention.apply_retention()

    # The oldest conversation's batch committed; the second was rolled back whole.
    assert list(Conversation.objects.filter(anonymised_at__isnull=False).values_list("pk", flat=True)) == [
        world.returning_old.pk
    ]
    assert world.old.messages.get(seq=1).text == f"Hola, soy {SECRET}"
    assert not Event.objects.filter(name=retention.RETENTION_APPLIED.name).exists()

    monkeypatch.delitem(retention.parts._parts, "crash")
    outcome = retention.apply_retention()

    assert (outcome.conversations, outcome.contacts) == (2, 2)
    assert Conversation.objects.filter(anonymised_at__isnull=False).count() == 3
    assert all(text == "" for text, _metadata in snapshot(world.old)["messages"])
    assert not default_storage.exists(world.old_file) and not world.recording_file.exists()


def test_dry_run_counts_and_changes_nothing(world: World) -> None:
    before = {c.pk: snapshot(c) for c in Conversation.objects.all()}
    out = StringIO()

    call_command("apply_retention", "--dry-run", stdout=out)

    assert "Would anonymise 3 conversations" in out.getvalue()
    assert "and 2 contacts" in out.getvalue()
    assert {c.pk: snapshot(c) for c in Conversation.objects.all()} == before
    assert default_storage.exists(world.old_file) and world.recording_file.exists()
    assert not Event.objects.filter(name=retention.RETENTION_APPLIED.name).exists()


def test_the_command_applies_it(world: World) -> None:
    out = StringIO()
    call_command("apply_retention", stdout=out)
    assert "Anonymised 3 conversations" in out.getvalue()
    assert not default_storage.exists(world.old_file)


def test_off_when_unset(world: World, settings: Any) -> None:
    settings.TALIA_RETENTION_DAYS = 0
    before = {c.pk: snapshot(c) for c in Conversation.objects.all()}
    out = StringIO()

    call_command("apply_retention", stdout=out)
    assert tasks.apply_retention.apply().get() == 0

    assert "Retention is off" in out.getvalue()
    assert {c.pk: snapshot(c) for c in Conversation.objects.all()} == before
    assert not Message.objects.filter(text="").exists()


def test_the_nightly_task_applies_it(world: World) -> None:
    schedule = django_settings.CELERY_BEAT_SCHEDULE["apply-retention"]
    assert schedule["task"] == tasks.apply_retention.name

    assert tasks.apply_retention.apply().get() == 3

    assert Conversation.objects.filter(anonymised_at__isnull=False).count() == 3


def test_staff_still_open_an_anonymised_conversation(world: World, client: Any, django_user_model: Any) -> None:
    retention.apply_retention()
    admin = django_user_model.objects.create_user("root-retention", is_staff=True, is_superuser=True)
    client.force_login(admin)

    for conversation in (world.old, world.call):
        response = client.get(reverse("console-conversation", args=[conversation.pk]))
        assert response.status_code == 200
        assert SECRET not in response.content.decode()
        assert '<ul class="attachments">' not in response.content.decode()  # no file that is not there


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("-1", "TALIA_RETENTION_DAYS=-1 is below the minimum"),
        ("a year", "TALIA_RETENTION_DAYS='a year' is not an integer"),
    ],
)
def test_a_bad_retention_period_is_refused_at_start_up(value: str, complaint: str) -> None:
    from talia.tests.test_settings import import_settings_with

    result = import_settings_with(TALIA_RETENTION_DAYS=value)

    assert result.returncode != 0
    assert complaint in result.stderr
