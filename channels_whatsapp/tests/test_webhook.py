"""The inbound webhook: Twilio's signature, the message stored once, media, location, buttons, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from channels_whatsapp.tests.conftest import WEBHOOK, Twilio, payload, text
from conversations import state
from conversations.models import AssistantRun, Contact, Conversation, Message
from talia.testing.plugin import wait_for

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def test_a_signed_message_is_stored_and_answered_with_empty_twiml(db, twilio: Twilio):
    params = text("Hola, ¿estás disponible?")

    response = twilio.message(params)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content.decode() == EMPTY_TWIML
    message = Message.objects.get()
    assert (message.channel, message.external_id, message.text) == ("whatsapp", params["MessageSid"], params["Body"])
    assert message.conversation.contact.identities.get().value == "34600123456"
    assert message.conversation.contact.display_name == "Lucía"
    assert message.metadata["from"] == "whatsapp:+34600123456"
    # The assistant's turn is recorded with the message and runs in Celery.
    assert AssistantRun.objects.filter(trigger_message=message).count() == 1


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
def test_a_missing_or_forged_signature_is_refused_and_nothing_is_stored(db, twilio: Twilio, signature):
    response = twilio.message(text("Hola"), signature=signature)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == ("missing_signature" if signature == "" else "invalid_signature")
    assert Message.objects.count() == 0 and Contact.objects.count() == 0


def test_a_signature_from_another_account_or_for_another_body_is_refused(db, twilio: Twilio, fake_twilio):
    params = text("Hola")
    signed_for_original = fake_twilio.sign(f"http://testserver{WEBHOOK}", params)

    tampered = twilio.message({**params, "Body": "Adiós"}, signature=signed_for_original)
    fake_twilio.auth_token = "0" * 32  # another account's token signs it
    other_account = twilio.message(params)

    assert (tampered.status_code, other_account.status_code) == (403, 403)
    assert Message.objects.count() == 0


def test_a_replayed_webhook_is_stored_and_answered_once(db, twilio: Twilio):
    params = text("Hola")
    signature = twilio.fake.sign(f"http://testserver{WEBHOOK}", params)

    first = twilio.message(params, signature=signature)
    replayed = twilio.message(params, signature=signature)

    assert (first.status_code, replayed.status_code) == (200, 200)
    assert Message.objects.count() == 1
    assert AssistantRun.objects.count() == 1


def test_unknown_parameters_are_signed_and_accepted(db, twilio: Twilio):
    response = twilio.message(text("Hola", SomethingTwilioAddedLater="x", ReferralCtwaClid="abc"))

    assert response.status_code == 200 and Message.objects.count() == 1


def test_behind_a_proxy_the_public_url_with_its_query_string_is_what_is_signed(db, twilio: Twilio, settings):
    settings.TALIA_PUBLIC_BASE_URL = "https://chat.example.com"
    params = text("Hola")
    path = f"{WEBHOOK}?tenant=acme"

    proxied = twilio.post(path, params, sign_url=f"https://chat.example.com{path}")
    signed_for_the_inner_url = twilio.post(path, text("Hola otra vez"), sign_url=f"http://testserver{path}")
    without_query = twilio.post(path, text("Hola sin query"), sign_url=f"https://chat.example.com{WEBHOOK}")

    assert proxied.status_code == 200
    assert (signed_for_the_inner_url.status_code, without_query.status_code) == (403, 403)
    assert Message.objects.count() == 1


def test_the_twilio_console_alias_is_the_same_door(db, twilio: Twilio):
    response = twilio.post("/webhooks/twilio/whatsapp", text("Hola"))

    assert response.status_code == 200 and Message.objects.count() == 1


def test_without_an_auth_token_webhooks_are_refused(db, twilio: Twilio, settings):
    settings.TALIA_TWILIO_AUTH_TOKEN = ""

    response = twilio.message(text("Hola"))

    assert response.status_code == 403 and response.json()["error"]["code"] == "signature_unverifiable"


def test_with_checks_turned_off_for_development_an_unsigned_message_is_taken(db, twilio: Twilio, settings):
    settings.TALIA_TWILIO_VALIDATE_SIGNATURES = False  # the settings allow it only with DEBUG on

    assert twilio.message(text("Hola"), signature="").status_code == 200
    assert Message.objects.count() == 1


def test_signature_checks_may_be_off_only_with_debug(tmp_path: Path):
    env = {**os.environ, "DEBUG": "false", "TALIA_TWILIO_VALIDATE_SIGNATURES": "false"}
    code = "import django; django.setup()"

    refused = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    allowed = subprocess.run(
        [sys.executable, "-c", code], env={**env, "DEBUG": "true"}, capture_output=True, text=True, check=False
    )

    assert refused.returncode != 0 and "TALIA_TWILIO_VALIDATE_SIGNATURES=false is only allowed" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"MessageSid": None, "SmsMessageSid": None, "SmsSid": None}, "MessageSid"),
        ({"MessageSid": "not-a-sid"}, "MessageSid"),
        ({"WaId": None, "From": "whatsapp:nobody"}, "WaId"),
        ({"NumMedia": "many"}, "NumMedia"),
        ({"NumMedia": "1"}, "MediaUrl0"),
        ({"Latitude": "40.4", "Body": ""}, "Latitude"),
        ({"Body": ""}, "Body"),
    ],
)
def test_malformed_messages_get_a_400_saying_what_is_wrong(db, twilio: Twilio, changes, field):
    params = payload("text", **changes)

    response = twilio.message(params)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Message.objects.count() == 0


def test_a_body_that_is_not_a_form_is_refused(db, twilio: Twilio):
    url = f"http://testserver{WEBHOOK}"
    response = twilio.client.post(
        WEBHOOK, '{"Body": "Hola"}', content_type="application/json", HTTP_X_TWILIO_SIGNATURE=twilio.fake.sign(url, {})
    )

    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"


def test_only_post_is_allowed(db, client):
    assert client.get(WEBHOOK).status_code == 405


def test_location_button_and_reply_context_are_kept(db, twilio: Twilio):
    twilio.message(payload("location"))
    twilio.message(payload("button"))

    location, button = Message.objects.order_by("seq")
    assert location.content_type == "location" and location.text == "Oficina"
    assert location.metadata["location"] == {
        "latitude": 40.4168,
        "longitude": -3.7038,
        "address": "Puerta del Sol, Madrid",
        "label": "Oficina",
    }
    assert button.content_type == "button" and button.text == "Sí, confirmar"
    assert button.metadata["button"] == {"text": "Sí, confirmar", "payload": "confirm-meeting"}
    assert button.metadata["in_reply_to"]["sid"] == "SMaaaabbbbccccddddeeeeffff00001111"


def test_media_are_recorded_at_once_and_downloaded_with_the_accounts_credentials(celery_worker, twilio: Twilio):
    photo, invoice = b"\xff\xd8\xff\xe0 a photo", b"%PDF-1.7 an invoice"
    params = payload(
        "media",
        MediaUrl0=twilio.fake.add_media(photo, "image/jpeg"),
        MediaUrl1=twilio.fake.add_media(invoice, "application/pdf"),
    )

    assert twilio.message(params).status_code == 200

    message = Message.objects.get(external_id=params["MessageSid"])
    assert message.content_type == "media"
    assert [a["content_type"] for a in message.metadata["attachments"]] == ["image/jpeg", "application/pdf"]

    def stored() -> list[dict]:
        attachments = Message.objects.get(pk=message.pk).metadata["attachments"]
        return attachments if all("stored" in a for a in attachments) else []

    attachments = wait_for(stored)
    with (
        default_storage.open(attachments[0]["stored"]) as first,
        default_storage.open(attachments[1]["stored"]) as second,
    ):
        assert (first.read(), second.read()) == (photo, invoice)
    media_requests = [r for r in twilio.fake.requests if "/Media/" in r.path]
    assert len(media_requests) == 2
    assert all(r.auth == (twilio.fake.account_sid, twilio.fake.auth_token) for r in media_requests)


def test_media_elsewhere_than_twilio_are_not_fetched_with_the_accounts_credentials(db, twilio: Twilio, settings):
    from channels_whatsapp import services

    params = payload("media", NumMedia="1", MediaUrl0="https://attacker.example/steal", MediaUrl1=None)
    params.pop("MediaContentType1")
    assert twilio.message(params).status_code == 200
    message = Message.objects.get()

    with pytest.raises(services.twilio_client.TwilioError, match="Not a Twilio media URL") as refused:
        services.download_media(str(message.pk))

    assert refused.value.permanent
    assert twilio.fake.requests == []


def test_a_message_after_the_conversation_closed_opens_a_new_one(db, twilio: Twilio):
    twilio.message(text("Hola"))
    first = Conversation.objects.get()
    state.close_conversation(first, ended_by="agent")

    twilio.message(text("Hola de nuevo"))

    assert Conversation.objects.count() == 2
    assert Conversation.objects.exclude(pk=first.pk).get().messages.get().text == "Hola de nuevo"


@pytest.mark.parametrize(("wa_id", "locale"), [("34600123456", "es"), ("5215512345678", "es"), ("447700900123", "en")])
def test_the_contacts_language_is_first_guessed_from_their_numbers_country(db, twilio: Twilio, wa_id, locale):
    twilio.message(text("Hola", wa_id=wa_id))

    assert Contact.objects.get().locale == locale


def test_a_webhook_is_stored_in_a_bounded_number_of_queries(db, twilio: Twilio, django_assert_max_num_queries):
    twilio.message(text("Hola"))  # the contact and their conversation exist from here on

    with django_assert_max_num_queries(10):
        assert twilio.message(text("¿Seguís ahí?")).status_code == 200


def test_the_deploy_checks_name_what_is_missing(settings):
    from channels_whatsapp.checks import whatsapp_configured

    settings.TALIA_TWILIO_ACCOUNT_SID = settings.TALIA_TWILIO_AUTH_TOKEN = settings.TALIA_PUBLIC_BASE_URL = ""
    settings.TALIA_TWILIO_WHATSAPP_FROM = settings.TALIA_TWILIO_MESSAGING_SERVICE_SID = ""
    assert [c.id for c in whatsapp_configured()] == [f"channels_whatsapp.W00{n}" for n in (1, 2, 3, 4)]

    settings.TALIA_TWILIO_ACCOUNT_SID, settings.TALIA_TWILIO_AUTH_TOKEN = "AC" + "0" * 32, "token"
    settings.TALIA_TWILIO_WHATSAPP_FROM = "whatsapp:+14155238886"
    settings.TALIA_PUBLIC_BASE_URL = "https://chat.example.com"
    assert whatsapp_configured() == []


def test_media_downloads_run_on_the_bulk_queue_never_before_a_reply(settings):
    from talia.celery import app

    route = app.amqp.router.route
    assert route({}, "channels_whatsapp.tasks.download_media")["queue"].name == settings.TALIA_QUEUES["ingest"]
    assert route({}, "channels_whatsapp.tasks.record_status_later")["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE
