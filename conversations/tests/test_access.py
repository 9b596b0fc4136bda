"""Access ends at once: pages, API and open sockets of an agent who loses it; previews only of what one may open."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group

from conversations import inbox, state
from conversations.models import Sender
from conversations.tests.console_helpers import console_socket, next_of, ready, signed_in, staff_socket

CLOSE_REVOKED, CLOSE_SIGNED_OUT = 4403, 4401

# Each way an account loses the console: (what is done to the agent "ana", done through the ORM as the
# admin and the shell do it).
LOSSES: dict[str, Callable[[Any], object]] = {
    "removed from the group": lambda user: user.groups.remove(Group.objects.get(name="agents")),
    "removed from the group's side": lambda user: Group.objects.get(name="agents").user_set.remove(user),
    "all groups cleared": lambda user: user.groups.clear(),
    "group emptied": lambda user: Group.objects.get(name="agents").user_set.clear(),
    "group deleted": lambda user: Group.objects.get(name="agents").delete(),
    "group renamed": lambda user: _rename_agents(),
    "deactivated": lambda user: _save(user, is_active=False),
    "deleted": lambda user: user.delete(),
    "password changed": lambda user: _new_password(user),
}
# The session no longer signs anyone in: the socket is signed out, as the next page request would be.
SIGNS_OUT = {"deactivated", "deleted", "password changed"}


def _new_password(user: Any) -> None:
    user.set_password("a new password nobody else knows")
    user.save()


def _rename_agents() -> None:
    group = Group.objects.get(name="agents")
    group.name = "former agents"
    group.save()


def _save(user: Any, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(user, name, value)
    user.save()


# --- Pages and API: checked on every request ------------------------------------------------------------


@pytest.mark.parametrize("loss", ["removed from the group", "deactivated", "password changed"])
def test_pages_and_api_refuse_an_agent_at_the_next_request(agent, lucia, loss):
    state.request_handoff(lucia.conversation, requested_by="contact")
    client = signed_in(agent)
    messages = f"/console/api/conversations/{lucia.conversation.pk}/messages"
    assert client.get("/console/").status_code == 200
    assert client.get(messages).status_code == 200

    LOSSES[loss](agent)

    assert client.get("/console/").status_code in {302, 403}
    assert client.get(f"/console/conversations/{lucia.conversation.pk}/").status_code in {302, 403}
    assert client.get(messages).status_code == 403
    assert client.get("/console/meetings/").status_code in {302, 403}


# --- Open sockets: closed with 4403 as soon as the change commits ---------------------------------------


async def closed_with(socket: Any) -> int:
    output = await socket.receive_output(timeout=10)
    while output["type"] != "websocket.close":  # pushes that were on their way
        output = await socket.receive_output(timeout=10)
    return int(output["code"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("loss", list(LOSSES))
async def test_an_open_console_closes_when_the_agent_loses_access(agent, loss):
    socket = await ready(await sync_to_async(console_socket)(agent))

    await sync_to_async(LOSSES[loss])(agent)

    assert await closed_with(socket) == (CLOSE_SIGNED_OUT if loss in SIGNS_OUT else CLOSE_REVOKED)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_monitor_closes_when_a_supervisor_loses_staff(people):
    boss = people["staff"]
    monitor = await ready(await sync_to_async(staff_socket)(boss, "/ws/monitor/"))
    console = await ready(await sync_to_async(console_socket)(boss))

    await sync_to_async(_save)(boss, is_staff=False)

    assert await closed_with(monitor) == CLOSE_REVOKED
    # Without staff and outside the agents group, the console goes too.
    assert await closed_with(console) == CLOSE_REVOKED
    await monitor.disconnect()
    await console.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_supervisor_who_stays_an_agent_keeps_the_console_but_not_the_monitor(people):
    boss = people["staff"]
    await sync_to_async(boss.groups.add)(await sync_to_async(Group.objects.get)(name="agents"))
    monitor = await ready(await sync_to_async(staff_socket)(boss, "/ws/monitor/"))
    console = await ready(await sync_to_async(console_socket)(boss))

    await sync_to_async(_save)(boss, is_staff=False)

    assert await closed_with(monitor) == CLOSE_REVOKED
    await console.send_json_to({"type": "ping"})
    assert await next_of(console, "pong") == {"type": "pong"}
    await monitor.disconnect()
    await console.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_changes_that_take_nothing_away_leave_the_console_open(agent, make_agent):
    socket = await ready(await sync_to_async(console_socket)(agent))
    other = await sync_to_async(Group.objects.create)(name="spanish desk")
    await sync_to_async(agent.groups.add)(other)

    await sync_to_async(agent.groups.remove)(other)  # a push arrives, and the check passes
    await sync_to_async(_save)(agent, first_name="Ana María")
    bea = await sync_to_async(make_agent)("bea")
    await sync_to_async(LOSSES["removed from the group's side"])(bea)  # someone else's loss

    await socket.send_json_to({"type": "ping"})
    assert await next_of(socket, "pong") == {"type": "pong"}
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_rolled_back_change_closes_nothing(agent):
    from django.db import transaction

    socket = await ready(await sync_to_async(console_socket)(agent))

    def remove_then_roll_back() -> None:
        with pytest.raises(RuntimeError), transaction.atomic():
            agent.groups.remove(Group.objects.get(name="agents"))
            raise RuntimeError

    await sync_to_async(remove_then_roll_back)()

    await socket.send_json_to({"type": "ping"})
    assert await next_of(socket, "pong") == {"type": "pong"}
    await socket.disconnect()


# --- Previews: only of conversations the agent may open ---------------------------------------------------


def test_the_console_previews_only_conversations_the_agent_may_open(make_agent, lucia):
    ana, bruno = make_agent("ana"), make_agent("bruno")
    state.request_handoff(lucia.conversation, requested_by="contact")
    state.claim_conversation(lucia.conversation, bruno)
    inbox.send(lucia.conversation, "Secreto de Bruno: el descuento es del 30 %", sender=Sender.AGENT, agent=bruno)
    state.close_conversation(lucia.conversation, ended_by="agent")
    mine = inbox.receive("web", "session-marta-0001", "Hola, soy Marta y os escribo por mi pedido").conversation
    state.request_handoff(mine, requested_by="contact")
    state.claim_conversation(mine, ana)
    state.close_conversation(mine, ended_by="agent")

    page = signed_in(ana).get("/console/").content.decode()
    supervisor = signed_in(make_agent("sara", is_staff=True)).get("/console/").content.decode()

    assert "soy Marta" in page  # her own closed conversation
    assert "Secreto de Bruno" not in page and str(lucia.conversation.pk) not in page
    # Someone else's conversation: back to the queue with a word on why, and none of it shown.
    client = signed_in(ana)
    opened = client.get(f"/console/conversations/{lucia.conversation.pk}/", follow=True)
    assert opened.redirect_chain == [("/console/", 302)]
    assert "Secreto de Bruno" not in opened.content.decode()
    assert "no longer in your queue" in opened.content.decode() or "ya no está en tu cola" in opened.content.decode()
    assert "Secreto de Bruno" in supervisor


@pytest.mark.django_db(transaction=True)
async def test_a_watcher_stops_hearing_a_conversation_another_agent_claimed(make_agent, lucia):
    ana, bruno = await sync_to_async(make_agent)("ana"), await sync_to_async(make_agent)("bruno")
    conversation = lucia.conversation
    await sync_to_async(state.request_handoff)(conversation, requested_by="contact")
    socket = await ready(await sync_to_async(console_socket)(ana))
    await socket.send_json_to({"type": "watch", "conversation_id": str(conversation.pk)})
    await next_of(socket, "watching")

    await sync_to_async(state.claim_conversation)(conversation, bruno)
    assert (await next_of(socket, "handoff.accepted"))["conversation_id"] == str(conversation.pk)
    await socket.send_json_to({"type": "ping"})
    await next_of(socket, "pong")  # frames are handled in order: the claim's push has been dealt with
    await sync_to_async(inbox.send)(conversation, "Solo para Lucía", sender=Sender.AGENT, agent=bruno)
    await sync_to_async(inbox.receive)("web", "session-lucia-0001", "Gracias, Bruno")
    # A later push to the agents group: anything sent to Ana's socket before it arrives before it.
    marker = await sync_to_async(inbox.receive)("web", "session-marta-0001", "Quiero hablar con alguien")
    await sync_to_async(state.request_handoff)(marker.conversation, requested_by="contact")

    seen = []
    while (event := await socket.receive_json_from(timeout=10))["type"] != "queue.added":
        seen.append(event)
    assert [event for event in seen if event["type"] == "message.new"] == []
    await socket.disconnect()
