"""The integrators' WhatsApp API: conversations, their messages, and the analysis run on demand."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from channels_whatsapp.tests.conftest import Twilio, text
from conversations import inbox
from conversations.models import Conversation, Message
from leads.models import ScheduledEvent

MADRID = "Europe/Madrid"
# A Wednesday morning in Madrid: "el viernes" is two days later.
WEDNESDAY = datetime(2026, 11, 25, 9, 30, tzinfo=ZoneInfo(MADRID))
CONVERSATIONS = "/api/v1/whatsapp/conversations"
PROCESS = "/api/v1/whatsapp/process-conversations"


@pytest.fixture
def madrid(settings):
    settings.TIME_ZONE = MADRID
    timezone.activate(ZoneInfo(MADRID))
    yield
    timezone.deactivate()


def said(twilio: Twilio, *lines: str, wa_id: str = "34600123456", at: datetime = WEDNESDAY) -> Conversation:
    """Each line as its own signed webhook, one minute apart from `at` on."""
    for number, line in enumerate(lines):
        assert twilio.message(text(line, wa_id=wa_id)).status_code == 200
        conversation = Conversation.objects.get(contact__identities__value=wa_id)
        Message.objects.filter(conversation=conversation, seq=conversation.last_seq).update(
            created=at + timedelta(minutes=number)
        )
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=at + timedelta(minutes=len(lines)))
    return Conversation.objects.get(pk=conversation.pk)


def test_only_agents_and_staff_may_read_it(db, client, django_user_model, twilio):
    said(twilio, "Hola")
    assert client.get(CONVERSATIONS).status_code == 403
    assert client.get(CONVERSATIONS).json()["error"]["code"] in ("forbidden", "invalid_token")
    client.force_login(django_user_model.objects.create_user("customer"))
    assert client.get(CONVERSATIONS).status_code == 403
    assert client.post(PROCESS).status_code == 403
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    assert client.get(CONVERSATIONS).status_code == 200


def test_conversations_are_listed_latest_first_with_contact_number_and_last_message(db, client, twilio, agent):
    said(twilio, "Hola", "¿Abrís el sábado?", wa_id="34600111111", at=timezone.now() - timedelta(hours=2))
    said(twilio, "Buenas", wa_id="34600222222", at=timezone.now() - timedelta(hours=1))
    inbox.receive("web", "session-not-whatsapp-01", "Hola")
    client.force_login(agent)

    first_page = client.get(CONVERSATIONS, {"page_size": 1}).json()
    second_page = client.get(CONVERSATIONS, {"page_size": 1, "page": 2}).json()

    assert first_page["count"] == 2 and first_page["next"] and second_page["next"] is None
    [newest], [older] = first_page["results"], second_page["results"]
    assert (newest["number"], newest["profile_name"], newest["last_message"]) == (
        "+34600222222",
        "Lucía",
        {"text": "Buenas", "sender": "contact"},
    )
    assert (older["number"], older["messages"], older["status"], older["events_found"]) == ("+34600111111", 2, "bot", 0)
    last_wrote = Message.objects.filter(text="¿Abrís el sábado?").get().created
    assert older["reply_window_closes_at"] == (last_wrote + timedelta(hours=24)).isoformat()


def test_a_conversations_messages_oldest_first(db, client, twilio, agent):
    conversation = said(twilio, "Hola", "Quiero información")
    web = inbox.receive("web", "session-not-whatsapp-02", "Hola").conversation
    client.force_login(agent)

    body = client.get(f"{CONVERSATIONS}/{conversation.pk}/messages").json()

    assert [m["text"] for m in body["results"]] == ["Hola", "Quiero información"]
    assert body["results"][0]["external_id"].startswith("SM")
    assert client.get(f"{CONVERSATIONS}/{web.pk}/messages").status_code == 404


@pytest.mark.usefixtures("madrid")
@pytest.mark.parametrize(
    ("number", "lines", "title"),
    [
        ("34600123456",
         ("Hola, ¿estás disponible?", "Quiero agendar una reunión", "El viernes a las 10", "Revisión del proyecto"),
         "Revisión del proyecto"),
        ("447700900123",  # a UK number: the contact is taken to speak English
         ("Hi, are you available?", "I'd like to set up a meeting", "Friday at 10am", "Project review"),
         "Project review"),
    ],
)  # fmt: skip
def test_a_meeting_told_over_four_webhooks_becomes_one_event_and_a_rerun_creates_nothing(
    db, client, twilio, agent, number, lines, title
):
    conversation = said(twilio, *lines, wa_id=number)
    client.force_login(agent)

    first = client.post(PROCESS).json()
    again = client.post(PROCESS).json()

    event = ScheduledEvent.objects.get()
    assert event.title == title
    assert timezone.localtime(event.start) == datetime(2026, 11, 27, 10, 0, tzinfo=ZoneInfo(MADRID))  # that Friday
    assert (first["events_created"], first["messages_processed"]) == ([str(event.pk)], 4)
    assert (again["events_created"], again["messages_processed"]) == ([], 0)
    listed = client.get(CONVERSATIONS).json()["results"]
    assert [(c["id"], c["events_found"]) for c in listed] == [(str(conversation.pk), 1)]
    ics = client.get(f"/console/meetings/{event.pk}.ics")
    assert ics.status_code == 200 and f"SUMMARY:{title}" in ics.content.decode()
