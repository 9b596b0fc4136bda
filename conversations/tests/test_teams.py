"""Teams (issue #17, "Taking over and routing"): routing to a team's queue, who sees which queue,
auto-assignment under capacity (concurrently too), presence states, and transfers with a note."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db.models import Count, Q

from conversations import assignment, events, realtime, state
from conversations.console import presence
from conversations.models import (
    AgentAssignment,
    Conversation,
    ConversationStatus,
    Event,
    HandoffRequest,
    InternalNote,
    Team,
)
from conversations.tests.console_helpers import api, console_socket, next_of, queued, ready, signed_in
from conversations.tests.test_inbox import run_concurrently

QUEUED, AGENT = ConversationStatus.QUEUED, ConversationStatus.AGENT


# --- Routing -------------------------------------------------------------------------------------------


def test_a_conversation_is_routed_by_its_channel_or_waits_in_everyones_queue(db):
    whatsapp_desk = Team.objects.create(name="WhatsApp desk", channels="whatsapp", auto_assign=False)

    on_whatsapp = queued("routing-wa", channel="whatsapp")
    on_web = queued("routing-web-0001")

    assert on_whatsapp.team == whatsapp_desk
    [routed] = Event.objects.filter(conversation=on_whatsapp, name=events.ROUTED.name)
    assert routed.payload == {"team_id": whatsapp_desk.pk, "team": "WhatsApp desk", "by": "channel"}
    assert on_web.team is None
    assert not Event.objects.filter(conversation=on_web, name=events.ROUTED.name).exists()


def test_a_keyword_of_the_handoff_reason_routes_before_the_channel(db):
    sales = Team.objects.create(name="Ventas", keywords="precio, presupuesto", auto_assign=False)
    support = Team.objects.create(name="Soporte", channels="web", auto_assign=False)

    asked_price = queued("routing-price-01", reason="El visitante pregunta el PRECIO de la ortodoncia")
    accented = queued("routing-price-02", reason="Quiere un presupuésto")  # accents are ignored
    not_a_word = queued("routing-price-03", reason="Dice que la clínica es preciosa")  # no whole keyword

    assert asked_price.team == sales
    assert Event.objects.get(conversation=asked_price, name=events.ROUTED.name).payload["by"] == "reason"
    assert accented.team == sales
    assert not_a_word.team == support


def test_a_team_with_an_unknown_channel_is_refused_by_validation(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        Team(name="Fax", channels="web, fax").full_clean()

    assert "fax" in str(refused.value)


# --- Who sees which queue ------------------------------------------------------------------------------


@pytest.fixture
def desks(desk: dict[str, Any]) -> dict[str, Any]:
    """The shared desk (conftest) with a conversation in each team's queue and an unrouted one."""
    return {
        **desk,
        "for_sales": queued("desk-sales-0001", reason="precio"),
        "for_support": queued("desk-support-01", reason="avería"),
        "unrouted": queued("desk-anyone-0001", reason="quiere una persona"),
    }


@pytest.mark.parametrize(
    ("who", "sees", "hidden"),
    [
        ("ana", ["for_sales", "unrouted"], ["for_support"]),
        ("bruno", ["for_support", "unrouted"], ["for_sales"]),
        ("boss", ["for_sales", "for_support", "unrouted"], []),
    ],
)
def test_an_agent_sees_their_teams_queues_and_the_unrouted_one_supervisors_all(desks, who, sees, hidden):
    client = signed_in(desks[who])

    page = client.get("/console/").content.decode()

    for name in sees:
        conversation = desks[name]
        assert str(conversation.pk) in page
        assert client.get(f"/console/conversations/{conversation.pk}/").status_code == 200
        assert client.get(f"/console/api/conversations/{conversation.pk}/messages").status_code == 200
    for name in hidden:
        conversation = desks[name]
        assert str(conversation.pk) not in page
        # The page sends them back to the queue; the API refuses; claiming it is refused.
        assert client.get(f"/console/conversations/{conversation.pk}/").status_code == 302
        assert client.get(f"/console/api/conversations/{conversation.pk}/messages").status_code == 403
        refused = api(client, conversation, "claim")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "forbidden"
        conversation.refresh_from_db()
        assert conversation.status == QUEUED


def test_the_team_name_shows_on_queued_rows(desks):
    page = signed_in(desks["boss"]).get("/console/").content.decode()

    assert '<span class="team">Ventas</span>' in page and '<span class="team">Soporte</span>' in page


@pytest.mark.django_db(transaction=True)
async def test_live_queue_pushes_reach_only_the_agents_who_may_see_them(make_agent, django_user_model):
    sales = await sync_to_async(Team.objects.create)(name="Ventas", keywords="precio", auto_assign=False)
    ana, bruno = await sync_to_async(make_agent)("ana"), await sync_to_async(make_agent)("bruno")
    boss = await sync_to_async(django_user_model.objects.create_user)("boss", is_staff=True)
    await sync_to_async(sales.members.add)(ana)
    sockets = {name: await ready(await sync_to_async(console_socket)(user)) for name, user in
               [("ana", ana), ("bruno", bruno), ("boss", boss)]}  # fmt: skip

    for_sales = await sync_to_async(queued)("live-sales-0001", "precio")
    unrouted = await sync_to_async(queued)("live-anyone-001", "una persona")

    for name in ("ana", "boss"):
        first = await next_of(sockets[name], "queue.added")
        assert (first["conversation_id"], first["team_name"]) == (str(for_sales.pk), "Ventas")
        assert (await next_of(sockets[name], "queue.added"))["conversation_id"] == str(unrouted.pk)
    # Bruno's first queue push is the unrouted one: the sales one never reached him.
    assert (await next_of(sockets["bruno"], "queue.added"))["conversation_id"] == str(unrouted.pk)

    # Joining the team mid-session: his open console hears the team's queue from then on.
    await sync_to_async(sales.members.add)(bruno)
    assert (await next_of(sockets["bruno"], "queues.changed"))["teams"] == [sales.pk]
    later = await sync_to_async(queued)("live-sales-0002", "precio")
    assert (await next_of(sockets["bruno"], "queue.added"))["conversation_id"] == str(later.pk)
    for socket in sockets.values():
        await socket.disconnect()


# --- Auto-assignment -----------------------------------------------------------------------------------


def open_load(user: Any) -> int:
    return Conversation.objects.filter(status=AGENT, assigned_agent=user).count()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_auto_assignments_assign_each_once_within_capacity(make_agent, online):
    team = Team.objects.create(name="Ventas", channels="web", capacity=3)
    agents = [make_agent(f"agent{i}") for i in range(5)]
    team.members.add(*agents)
    # Queued while nobody is online, so nothing is assigned yet.
    conversations = [queued(f"concurrent-{i:04d}") for i in range(20)]
    assert all(c.status == QUEUED and c.team_id == team.pk for c in conversations)
    online(*agents)

    winners = run_concurrently(lambda i: assignment.auto_assign(conversations[i].pk), 20)

    assigned = [winner for winner in winners if winner is not None]
    assert len(assigned) == 15  # 5 agents x capacity 3; the other 5 keep waiting
    assert all(open_load(agent) == 3 for agent in agents)
    per_conversation = AgentAssignment.objects.values("conversation").annotate(n=Count("id"))
    assert per_conversation.count() == 15 and all(row["n"] == 1 for row in per_conversation)
    assert Conversation.objects.filter(status=QUEUED).count() == 5
    assert Event.objects.filter(name=events.AGENT_ASSIGNED.name).count() == 15


@pytest.mark.django_db(transaction=True)
def test_queueing_assigns_the_least_loaded_available_member_and_skips_away_ones(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, bruno, carla = make_agent("ana"), make_agent("bruno"), make_agent("carla")
    outsider = make_agent("dario")  # online, but not in the team
    team.members.add(ana, bruno, carla)
    online(ana, bruno, carla, outsider)
    presence.set_state(ana.pk, "away")

    first = queued("auto-0001", "una avería")
    second = queued("auto-0002", "otra avería")
    third = queued("auto-0003", "más averías: ninguna palabra suelta")  # no keyword: unrouted

    assert {first.assigned_agent_id, second.assigned_agent_id} == {bruno.pk, carla.pk}  # one each, never Ana
    assert third.status == QUEUED and third.team is None
    assert AgentAssignment.objects.filter(agent__in=[ana, outsider]).count() == 0

    # Round-robin among equals: both have one; whoever was assigned longest ago gets the next.
    oldest = first.assigned_agent_id
    fourth = queued("auto-0004", "avería")
    assert fourth.assigned_agent_id == oldest


@pytest.mark.django_db(transaction=True)
def test_an_agent_who_comes_back_online_gets_the_waiting_conversations_of_their_teams(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería", capacity=2)
    ana = make_agent("ana")
    team.members.add(ana)
    online(ana)
    client = signed_in(ana)
    assert client.put("/console/api/presence", {"state": "away"}, content_type="application/json").json() == {
        "state": "away"
    }
    waiting = [queued(f"comeback-{i:04d}", "avería") for i in range(3)]
    assert all(c.status == QUEUED for c in waiting)

    back = client.put("/console/api/presence", {"state": "online"}, content_type="application/json")

    assert back.status_code == 200 and back.json() == {"state": "online"}
    for conversation in waiting:
        conversation.refresh_from_db()
    # The two oldest, up to her capacity; the newest keeps waiting.
    assert [c.status for c in waiting] == [AGENT, AGENT, QUEUED]
    assert client.get("/console/api/presence").json() == {"state": "online"}


def test_presence_states_are_validated(agent):
    refused = signed_in(agent).put("/console/api/presence", {"state": "asleep"}, content_type="application/json")

    assert refused.status_code == 400
    assert "state" in json.dumps(refused.json())


def test_an_agent_without_a_console_open_is_offline(agent):
    assert signed_in(agent).get("/console/api/presence").json() == {"state": "offline"}


def test_a_team_without_auto_assignment_leaves_it_in_the_queue(make_agent, online, django_capture_on_commit_callbacks):
    team = Team.objects.create(name="Ventas", keywords="precio", auto_assign=False)
    ana = make_agent("ana")
    team.members.add(ana)
    online(ana)

    with django_capture_on_commit_callbacks(execute=True):
        conversation = queued("manual-0001", "precio")

    assert conversation.status == QUEUED
    assert api(signed_in(ana), conversation, "claim").status_code == 200  # manual claim as ever


# --- Transfers -----------------------------------------------------------------------------------------


@pytest.fixture
def handled(make_agent) -> dict[str, Any]:
    ana, bruno = make_agent("ana", first_name="Ana"), make_agent("bruno", first_name="Bruno")
    conversation = queued("transfer-0001", "quiere hablar con una persona")
    HandoffRequest.objects.filter(conversation=conversation).update(brief_summary="Pregunta por implantes.")
    state.claim_conversation(conversation, ana)
    conversation.refresh_from_db()
    return {"ana": ana, "bruno": bruno, "conversation": conversation}


def transfer(user: Any, conversation: Conversation, **body: Any) -> Any:
    return api(signed_in(user), conversation, "transfer", body)


def test_transfer_to_another_agent_with_a_note(handled, listen, django_capture_on_commit_callbacks):
    ana, bruno, conversation = handled["ana"], handled["bruno"], handled["conversation"]
    bruno_console = listen(realtime.agent_group(bruno.pk))

    with django_capture_on_commit_callbacks(execute=True):
        moved = transfer(ana, conversation, agent=bruno.pk, note="Quiere precio de implantes, te lo paso")

    assert moved.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent_id) == (AGENT, bruno.pk)
    released = AgentAssignment.objects.get(conversation=conversation, agent=ana)
    assert released.release_reason == AgentAssignment.ReleaseReason.TRANSFERRED
    assert AgentAssignment.objects.get(conversation=conversation, released_at__isnull=True).agent_id == bruno.pk
    note = InternalNote.objects.get(conversation=conversation)
    assert (note.author_id, note.text) == (ana.pk, "Quiere precio de implantes, te lo paso")
    [event] = Event.objects.filter(conversation=conversation, name=events.TRANSFERRED.name)
    assert event.payload == {
        "from_agent_id": ana.pk,
        "to_agent_id": bruno.pk,
        "from_team_id": None,
        "to_team_id": None,
        "note_id": str(note.pk),
        "by_id": ana.pk,
    }
    pushed = bruno_console.receive()
    assert pushed is not None and (pushed["type"], pushed["to_agent_id"]) == ("conversation.transferred", bruno.pk)
    # The brief travels with it; Bruno reads the note; Ana can no longer write.
    page = signed_in(bruno).get(f"/console/conversations/{conversation.pk}/").content.decode()
    assert "Pregunta por implantes." in page and "te lo paso" in page
    assert api(signed_in(ana), conversation, "messages", {"text": "sigo aquí"}).status_code == 409
    assert api(signed_in(bruno), conversation, "messages", {"text": "Hola, soy Bruno"}).status_code == 201


def test_transfer_to_a_team_puts_it_in_their_queue_with_the_brief(
    handled, make_agent, listen, django_capture_on_commit_callbacks
):
    ana, conversation = handled["ana"], handled["conversation"]
    billing = Team.objects.create(name="Facturación", auto_assign=False)
    carla = make_agent("carla")
    billing.members.add(carla)
    team_queue = listen(realtime.team_group(billing.pk))
    widget = listen(conversation.group_name)

    with django_capture_on_commit_callbacks(execute=True):
        moved = transfer(ana, conversation, team=billing.pk, note="Es una duda de factura")

    assert moved.status_code == 200 and moved.json()["next"] == "/console/"
    conversation.refresh_from_db()
    assert (conversation.status, conversation.team_id, conversation.assigned_agent_id) == (QUEUED, billing.pk, None)
    pending = HandoffRequest.objects.get(conversation=conversation, status=HandoffRequest.Status.PENDING)
    assert (pending.requested_by, pending.reason, pending.brief_summary) == (
        "agent",
        "Es una duda de factura",
        "Pregunta por implantes.",
    )
    pushed = team_queue.receive()
    assert pushed is not None and (pushed["type"], pushed["team_name"]) == ("queue.added", "Facturación")
    told = widget.receive()  # the visitor's widget says they wait for a person again
    assert told is not None and (told["type"], told["status"]) == ("handoff.requested", QUEUED)
    # Ana (not in the team) no longer sees it; Carla claims it and reads the brief.
    assert signed_in(ana).get(f"/console/conversations/{conversation.pk}/").status_code == 302
    assert api(signed_in(carla), conversation, "claim").status_code == 200
    page = signed_in(carla).get(f"/console/conversations/{conversation.pk}/").content.decode()
    assert "Pregunta por implantes." in page and "Es una duda de factura" in page


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"note": "sin destino"}, 400, None),
        ({"agent": 1, "team": 1, "note": "los dos"}, 400, None),
        ({"team": 999999, "note": "x"}, 409, "unknown_team"),
        ({"agent": 999999, "note": "x"}, 409, "unknown_agent"),
        ({"team": "sales", "note": "x"}, 400, None),
    ],
)
def test_malformed_transfers_are_refused(handled, body, status, code):
    refused = transfer(handled["ana"], handled["conversation"], **body)

    assert refused.status_code == status
    if code:
        assert refused.json()["error"]["code"] == code
    handled["conversation"].refresh_from_db()
    assert handled["conversation"].assigned_agent_id == handled["ana"].pk


def test_a_transfer_needs_a_note_and_an_agent_as_target(handled, django_user_model):
    customer = django_user_model.objects.create_user("customer")

    no_note = transfer(handled["ana"], handled["conversation"], agent=handled["bruno"].pk, note="   ")
    not_agent = transfer(handled["ana"], handled["conversation"], agent=customer.pk, note="a ti")

    assert no_note.status_code == 400
    assert not_agent.status_code == 409 and not_agent.json()["error"]["code"] == "unknown_agent"


def test_only_the_handling_agent_or_a_supervisor_transfers(handled, django_user_model):
    bruno, conversation = handled["bruno"], handled["conversation"]
    boss = django_user_model.objects.create_user("boss", is_staff=True)

    refused = transfer(bruno, conversation, agent=bruno.pk, note="me lo quedo")
    by_boss = transfer(boss, conversation, agent=bruno.pk, note="Bruno, encárgate tú")

    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_yours"
    assert by_boss.status_code == 200
    conversation.refresh_from_db()
    assert conversation.assigned_agent_id == bruno.pk


def test_the_transfer_form_is_offered_to_the_handling_agent_only(handled):
    conversation = handled["conversation"]
    Team.objects.create(name="Ventas")

    mine = signed_in(handled["ana"]).get(f"/console/conversations/{conversation.pk}/").content.decode()
    theirs = signed_in(handled["bruno"]).get(f"/console/conversations/{conversation.pk}/")

    assert 'id="transfer-form"' in mine and 'value="team:' in mine and f'value="agent:{handled["bruno"].pk}"' in mine
    assert theirs.status_code == 302  # not his to open


def test_watchable_matches_can_watch(desks):
    from conversations.console.visibility import can_watch, watchable

    everything = Conversation.objects.all()
    for who in ("ana", "bruno", "boss"):
        user = desks[who]
        listed = set(watchable(user, everything).values_list("pk", flat=True))
        assert listed == {c.pk for c in everything if can_watch(user, c)}
        assert watchable(user, everything).count() == len(listed)  # no duplicate rows from the team join
    assert Conversation.objects.filter(Q(team__isnull=False)).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_freed_slot_takes_the_next_waiting_conversation(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería", capacity=1)
    ana = make_agent("ana")
    team.members.add(ana)
    online(ana)
    first, second = queued("freed-0001", "avería"), queued("freed-0002", "avería")
    assert (first.assigned_agent_id, second.status) == (ana.pk, QUEUED)  # at capacity: the second waits

    assert api(signed_in(ana), first, "close").status_code == 200

    second.refresh_from_db()
    assert (second.status, second.assigned_agent_id) == (AGENT, ana.pk)


@pytest.mark.django_db(transaction=True)
async def test_opening_the_console_brings_the_waiting_conversations_of_the_agents_teams(make_agent):
    team = await sync_to_async(Team.objects.create)(name="Soporte", keywords="avería")
    ana = await sync_to_async(make_agent)("ana")
    await sync_to_async(team.members.add)(ana)
    waiting = await sync_to_async(queued)("connect-0001", "avería")  # nobody online: it waits
    assert waiting.status == QUEUED

    socket = await sync_to_async(console_socket)(ana)
    connected, _ = await socket.connect()
    assert connected

    told = await next_of(socket, "conversation.assigned")
    assert (told["conversation_id"], told["status"]) == (str(waiting.pk), AGENT)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_transfer_to_an_auto_assign_team_never_bounces_back_to_the_transferring_agent(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, carla = make_agent("ana"), make_agent("carla")
    team.members.add(ana)
    online(ana, carla)
    first, second = queued("bounce-0001", "avería"), queued("bounce-0002", "avería")
    assert first.assigned_agent_id == ana.pk and second.assigned_agent_id == ana.pk

    # Only Ana is an available member: the transferred conversation waits rather than coming back to her.
    assert transfer(ana, first, team=team.pk, note="No me da tiempo").status_code == 200
    first.refresh_from_db()
    assert (first.status, first.assigned_agent_id) == (QUEUED, None)

    # With Carla in the team too, the next transfer goes to her.
    team.members.add(carla)
    assert transfer(ana, second, team=team.pk, note="Para Carla").status_code == 200
    second.refresh_from_db()
    assert (second.status, second.assigned_agent_id) == (AGENT, carla.pk)
