"""Twilio's status callbacks: signed, forward only, failures with Twilio's code and meaning."""

from __future__ import annotations

import pytest

from channels_whatsapp.tests.conftest import STATUS, Twilio, text
from conversations import inbox
from conversations.models import Conversation, DeliveryStatus, Message, Sender
from conversations.tasks import deliver_message
from talia.testing.plugin import wait_for


def sent_reply(twilio: Twilio, agent, body: str = "¡Hola!") -> Message:
    assert twilio.message(text("Hola")).status_code == 200
    conversation = Conversation.objects.get()
    message = inbox.send(conversation, body, sender=Sender.AGENT, agent=agent)
    deliver_message.apply(args=(str(message.pk),))
    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.SENT and message.external_id.startswith("SM")
    return message


def status_of(message: Message) -> tuple[str, str]:
    message.refresh_from_db()
    return message.delivery_status, message.delivery_error


def test_statuses_move_forward_only_whatever_order_they_arrive_in(db, twilio: Twilio, agent):
    message = sent_reply(twilio, agent)
    sid = message.external_id

    answers = [twilio.status(sid, s).json()["status"] for s in ("delivered", "sending", "sent", "delivered", "read")]
    late = [twilio.status(sid, s).json()["status"] for s in ("delivered", "queued", "failed")]

    assert answers == ["updated", "unchanged", "unchanged", "unchanged", "updated"]
    assert late == ["unchanged", "unchanged", "unchanged"]
    assert status_of(message) == (DeliveryStatus.READ, "")


def test_sending_counts_as_queued_with_twilio(db, twilio: Twilio, agent):
    message = sent_reply(twilio, agent)
    Message.objects.filter(pk=message.pk).update(delivery_status=DeliveryStatus.QUEUED)

    assert twilio.status(message.external_id, "sending").json()["status"] == "unchanged"
    assert twilio.status(message.external_id, "sent").json()["status"] == "updated"


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        ("undelivered", "30003", "30003: The phone is unreachable (off or without signal)."),
        ("undelivered", "30005", "30005: Unknown destination: the number does not exist or is not on WhatsApp."),
        ("undelivered", "30006", "30006: The number cannot receive this message (landline or unreachable carrier)."),
        ("failed", "30007", "30007: The message was filtered as spam by the carrier or WhatsApp."),
        ("failed", "30008", "30008: Unknown error delivering the message."),
        ("failed", "63016", "63016: Outside the 24-hour window: only an approved template may be sent."),
        ("failed", "21211", "21211: The 'To' number is not a valid phone number."),
    ],
)
def test_a_failure_is_terminal_and_keeps_twilios_code_and_its_meaning(db, twilio: Twilio, agent, status, code, error):
    message = sent_reply(twilio, agent)

    assert twilio.status(message.external_id, status, error_code=code).json()["status"] == "updated"
    assert twilio.status(message.external_id, "delivered").json()["status"] == "unchanged"
    assert twilio.status(message.external_id, status, error_code=code).json()["status"] == "unchanged"

    assert status_of(message) == (status, error)


def test_statuses_twilio_sends_that_talia_does_not_track_are_acknowledged(db, twilio: Twilio, agent):
    message = sent_reply(twilio, agent)

    assert twilio.status(message.external_id, "receiving").json() == {"status": "ignored"}
    assert status_of(message)[0] == DeliveryStatus.SENT


@pytest.mark.parametrize("signature", ["", "Zm9yZ2Vk"])
def test_an_unsigned_or_forged_status_is_refused(db, twilio: Twilio, agent, signature):
    message = sent_reply(twilio, agent)

    response = twilio.status(message.external_id, "failed", error_code="30008", signature=signature)

    assert response.status_code == 403 and "error" in response.json()
    assert status_of(message) == (DeliveryStatus.SENT, "")


def test_a_malformed_status_gets_a_400(db, twilio: Twilio):
    response = twilio.post(STATUS, {"MessageStatus": "delivered"})
    no_status = twilio.post(STATUS, {"MessageSid": "SM" + "0" * 32})

    assert response.status_code == 400 and "MessageSid" in response.json()["error"]["fields"]
    assert no_status.status_code == 400 and "MessageStatus" in no_status.json()["error"]["fields"]


def test_a_status_that_beats_the_senders_own_write_is_applied_shortly_after(celery_worker, twilio: Twilio, agent):
    assert twilio.message(text("Hola")).status_code == 200
    conversation = Conversation.objects.get()
    wait_for(lambda: Message.objects.filter(sender=Sender.ASSISTANT, delivery_status=DeliveryStatus.SENT).exists())
    message = inbox.send(conversation, "¡Hola!", sender=Sender.AGENT, agent=agent)
    wait_for(lambda: Message.objects.filter(pk=message.pk, delivery_status=DeliveryStatus.SENT).exists())
    message.refresh_from_db()
    sid = message.external_id
    # As if Twilio's "delivered" had arrived before the sid was stored.
    Message.objects.filter(pk=message.pk).update(external_id="")

    assert twilio.status(sid, "delivered").json()["status"] == "unknown"
    Message.objects.filter(pk=message.pk).update(external_id=sid)

    wait_for(lambda: status_of(message)[0] == DeliveryStatus.DELIVERED)


def test_the_fake_twilio_reports_statuses_to_talias_status_url(db, twilio: Twilio, agent, settings):
    """Signed over the StatusCallback URL the deliverer gave Twilio, the callbacks pass TalIA's check."""
    settings.TALIA_PUBLIC_BASE_URL = twilio.base
    message = sent_reply(twilio, agent)
    [sent] = twilio.fake.sent
    for status in ("sent", "delivered", "read"):
        params = {"MessageSid": sent["sid"], "MessageStatus": status, "AccountSid": twilio.fake.account_sid}
        signature = twilio.fake.sign(sent["StatusCallback"], params)
        assert twilio.post(STATUS, params, signature=signature).status_code == 200

    assert status_of(message)[0] == DeliveryStatus.READ
