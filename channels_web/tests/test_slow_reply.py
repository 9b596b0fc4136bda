"""Slow is a state, not an error: a reply that takes longer than the wait is a 202 "pending", never a
500, whatever the channel layer does meanwhile; the reply is still stored and reaches the visitor later."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from conversations.models import AssistantRun, Message, Sender
from talia.testing.fake_openai import slow, text
from talia.testing.plugin import wait_for

SESSION = "slow-visitor-session-01"


def say(client, content: str):
    body = {"session_id": SESSION, "author": "user", "content": content}
    return client.post("/api/webchat/messages", data=json.dumps(body), content_type="application/json")


def test_a_reply_slower_than_the_wait_is_202_pending_and_is_stored_later(client, celery_worker, model_engine, settings):
    # Longer than the channel layer's 5 s blocking read, so the wait outlives at least one of them.
    settings.TALIA_REPLY_WAIT_S = 7
    model_engine.script(slow(10, then=text("Perdón por la espera: sí, abrimos los sábados.")))

    response = say(client, "¿Abren los sábados?")

    assert response.status_code == 202, response.content[:2000]
    body = response.json()
    assert body["reply"] is None and body["metadata"]["status"] == "pending"
    conversation_id = body["metadata"]["conversation_id"]
    reply = wait_for(
        lambda: Message.objects.filter(conversation_id=conversation_id, sender=Sender.ASSISTANT).first(), timeout=40
    )
    assert reply.text == "Perdón por la espera: sí, abrimos los sábados."


def test_a_channel_layer_failing_during_the_wait_gives_202_not_500(client, db, settings):
    """A Redis read that times out mid-wait (here: a read timeout shorter than the blocking read, as a
    hung Redis would look) is logged, the database is asked, and the answer is 202."""
    settings.TALIA_REPLY_WAIT_S = 4
    layers: dict[str, Any] = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["socket_timeout"] = 1
    with override_settings(CHANNEL_LAYERS=layers):
        response = say(client, "Hola")

    assert response.status_code == 202, response.content[:2000]
    assert response.json()["metadata"]["status"] == "pending"
    assert Message.objects.filter(sender=Sender.CONTACT, text="Hola").exists()


@pytest.fixture(autouse=True)
def _fresh_layers():
    """The failing layer above must not outlive its test (channels caches one per settings value)."""
    from channels.layers import channel_layers

    yield
    channel_layers.backends = {}


def test_a_prompt_reply_carries_the_model_response_and_the_status_its_push_announced(
    client, celery_worker, model_engine, settings
):
    # The waiting request answers from the reply's push (conversations.waiting): the status and the model
    # response's id it returns are those the database holds for the run that stored the reply.
    settings.TALIA_REPLY_WAIT_S = 20
    model_engine.script(text("Sí, abrimos los sábados de 10 a 14."))

    response = say(client, "¿Abren los sábados?")

    assert response.status_code == 200, response.content[:2000]
    body = response.json()
    assert body["reply"] == "Sí, abrimos los sábados de 10 a 14."
    run = AssistantRun.objects.get(reply_message_id=body["metadata"]["assistant_message_id"])
    assert run.response_id.startswith("resp_")
    assert body["metadata"]["assistant_response_id"] == run.response_id
    assert body["metadata"]["status"] == run.conversation.status == "bot"
