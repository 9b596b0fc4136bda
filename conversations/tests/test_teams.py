"""Teams (issue #17, "Taking over and routing"): routing to a team's queue, who sees which queue,
auto-assignment under capacity (concurrently too), presence states, and transfers with a note."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from conversations import assignment, events, realtime, state, tasks
from conversations.console import presence
from conversations.models import (
    AgentAssignment,
    AssignmentOffer,
    Conversation,
    ConversationStatus,
    Event,
    HandoffRequest,
    InternalNote,
    Team,
)
from conversations.tests.console_helpers import api, console_socket, next_of, queued, ready, signed_in, staff_socket
from conversations.tests.test_inbox import run_concurrently
from talia.redis_client import get_redis

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


# --- Auto-assignment: offers ---------------------------------------------------------------------------


def open_load(user: Any) -> int:
    return Conversation.objects.filter(status=AGENT, assigned_agent=user).count()


def offer_of(conversation: Conversation) -> AssignmentOffer | None:
    """The conversation's pending offer, if any."""
    return AssignmentOffer.objects.filter(conversation=conversation, status=AssignmentOffer.Status.PENDING).first()


def offered_to(conversation: Conversation) -> int | None:
    offer = offer_of(conversation)
    return offer.agent_id if offer is not None else None


def accept(conversation: Conversation) -> Conversation:
    """The offered agent accepts through the console API."""
    offer = offer_of(conversation)
    assert offer is not None, "no pending offer"
    response = signed_in(offer.agent).post(f"/console/api/offers/{offer.pk}/accept")
    assert response.status_code == 200, response.content
    conversation.refresh_from_db()
    return conversation


def past_deadline(offer: AssignmentOffer) -> None:
    """As if TALIA_OFFER_TIMEOUT_S had passed: the sweep sees the offer late."""
    AssignmentOffer.objects.filter(pk=offer.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_auto_assignments_offer_each_once_within_capacity(make_agent, online):
    team = Team.objects.create(name="Ventas", channels="web", capacity=3)
    agents = [make_agent(f"agent{i}") for i in range(5)]
    team.members.add(*agents)
    # Queued while nobody is online, so nothing is offered yet.
    conversations = [queued(f"concurrent-{i:04d}") for i in range(20)]
    assert all(c.status == QUEUED and c.team_id == team.pk for c in conversations)
    online(*agents)

    winners = run_concurrently(lambda i: assignment.auto_assign(conversations[i].pk), 20)

    offered = [winner for winner in winners if winner is not None]
    assert len(offered) == 15  # 5 agents x capacity 3: a pending offer holds a slot; the other 5 keep waiting
    pending = AssignmentOffer.objects.filter(status=AssignmentOffer.Status.PENDING)
    assert pending.count() == 15
    assert pending.values("conversation").distinct().count() == 15  # each conversation offered once
    assert all(pending.filter(agent=agent).count() == 3 for agent in agents)
    assert Event.objects.filter(name=events.ASSIGNMENT_OFFERED.name).count() == 15
    # Nothing is claimed until an agent accepts; then every agent accepts at once.
    assert Conversation.objects.filter(status=AGENT).count() == 0
    offers = list(pending)
    run_concurrently(lambda i: assignment.accept_offer(offers[i].agent, offers[i].pk), 15)

    assert all(open_load(agent) == 3 for agent in agents)
    per_conversation = AgentAssignment.objects.values("conversation").annotate(n=Count("id"))
    assert per_conversation.count() == 15 and all(row["n"] == 1 for row in per_conversation)
    assert Conversation.objects.filter(status=QUEUED).count() == 5
    assert Event.objects.filter(name=events.AGENT_ASSIGNED.name).count() == 15
    # At capacity, another round offers nothing more.
    assert [assignment.auto_assign(c.pk) for c in conversations if c.pk not in {o.conversation_id for o in offers}] == [
        None
    ] * 5


@pytest.mark.django_db(transaction=True)
def test_queueing_offers_to_the_least_loaded_available_member_and_skips_away_ones(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, bruno, carla = make_agent("ana"), make_agent("bruno"), make_agent("carla")
    outsider = make_agent("dario")  # online, but not in the team
    team.members.add(ana, bruno, carla)
    online(ana, bruno, carla, outsider)
    presence.set_state(ana.pk, "away")

    first = queued("auto-0001", "una avería")
    second = queued("auto-0002", "otra avería")
    third = queued("auto-0003", "más averías: ninguna palabra suelta")  # no keyword: unrouted

    assert {offered_to(first), offered_to(second)} == {bruno.pk, carla.pk}  # one each, never Ana
    assert first.status == QUEUED  # an offer, not a claim
    assert third.status == QUEUED and offer_of(third) is None and third.team is None
    assert not AssignmentOffer.objects.filter(agent__in=[ana, outsider]).exists()
    accept(first), accept(second)

    # Round-robin among equals: both have one; whoever was assigned longest ago gets the next.
    oldest = first.assigned_agent_id
    fourth = queued("auto-0004", "avería")
    assert offered_to(fourth) == oldest


@pytest.mark.django_db(transaction=True)
def test_an_accepted_offer_claims_the_conversation_once(make_agent, online, django_capture_on_commit_callbacks, listen):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana = make_agent("ana")
    team.members.add(ana)
    online(ana)
    ana_console = listen(realtime.agent_group(ana.pk))

    with django_capture_on_commit_callbacks(execute=True):
        conversation = queued("accept-0001", "avería")
    offer = offer_of(conversation)
    assert offer is not None and offer.agent_id == ana.pk
    pushed = ana_console.receive()
    assert pushed is not None and (pushed["type"], pushed["offer_id"]) == ("offer.made", offer.pk)
    assert pushed["conversation_id"] == str(conversation.pk) and pushed["timeout_s"] == settings.TALIA_OFFER_TIMEOUT_S
    [offered] = Event.objects.filter(conversation=conversation, name=events.ASSIGNMENT_OFFERED.name)
    assert offered.payload["agent_id"] == ana.pk and offered.payload["offer_id"] == offer.pk
    listed = signed_in(ana).get("/console/api/offers").json()["offers"]
    assert [item["offer_id"] for item in listed] == [offer.pk]

    client = signed_in(ana)
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client.post(f"/console/api/offers/{offer.pk}/accept")

    assert accepted.status_code == 200
    assert accepted.json()["next"] == f"/console/conversations/{conversation.pk}/"
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent_id) == (AGENT, ana.pk)
    offer.refresh_from_db()
    assert offer.status == AssignmentOffer.Status.ACCEPTED
    again = client.post(f"/console/api/offers/{offer.pk}/accept")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "offer_gone")
    assert AgentAssignment.objects.filter(conversation=conversation).count() == 1
    assert client.get("/console/api/offers").json() == {"offers": []}


@pytest.mark.django_db(transaction=True)
def test_a_declined_offer_goes_to_the_next_agent_and_then_waits(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, bruno = make_agent("ana"), make_agent("bruno")
    team.members.add(ana, bruno)
    online(ana, bruno)
    conversation = queued("decline-0001", "avería")
    first = offer_of(conversation)
    assert first is not None
    second_agent = bruno if first.agent_id == ana.pk else ana

    declined = signed_in(first.agent).post(f"/console/api/offers/{first.pk}/decline")

    assert declined.status_code == 200 and declined.json() == {"declined": True}
    first.refresh_from_db()
    assert first.status == AssignmentOffer.Status.DECLINED
    assert Event.objects.get(conversation=conversation, name=events.OFFER_DECLINED.name).payload == {
        "agent_id": first.agent_id,
        "offer_id": first.pk,
    }
    second = offer_of(conversation)
    assert second is not None and second.agent_id == second_agent.pk
    # The other declines too: nobody is left, it stays queued, and manual claim still works.
    assert signed_in(second_agent).post(f"/console/api/offers/{second.pk}/decline").status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == QUEUED and offer_of(conversation) is None
    assert assignment.auto_assign(conversation.pk) is None  # both passed it over recently
    # Someone else's offer cannot be answered.
    assert signed_in(ana).post(f"/console/api/offers/{second.pk}/decline").status_code == 409
    assert api(signed_in(ana), conversation, "claim").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_unanswered_offer_expires_and_goes_to_the_next_agent(make_agent, online, listen):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, bruno = make_agent("ana"), make_agent("bruno")
    team.members.add(ana, bruno)
    online(ana, bruno)
    conversation = queued("expire-0001", "avería")
    first = offer_of(conversation)
    assert first is not None
    assert tasks.expire_assignment_offers() == 0  # not late yet: nothing happens
    first_console = listen(realtime.agent_group(first.agent_id))
    past_deadline(first)

    assert tasks.expire_assignment_offers() == 1  # the task Celery beat runs
    assert "conversations.tasks.expire_assignment_offers" in {
        job["task"] for job in settings.CELERY_BEAT_SCHEDULE.values()
    }

    first.refresh_from_db()
    assert first.status == AssignmentOffer.Status.EXPIRED
    assert Event.objects.filter(conversation=conversation, name=events.OFFER_EXPIRED.name).count() == 1
    gone = first_console.receive()
    assert gone is not None and (gone["type"], gone["reason"]) == ("offer.withdrawn", "expired")
    second = offer_of(conversation)
    assert second is not None and second.agent_id != first.agent_id
    # Too late to accept the expired one.
    late = signed_in(first.agent).post(f"/console/api/offers/{first.pk}/accept")
    assert (late.status_code, late.json()["error"]["code"]) == (409, "offer_gone")


@pytest.mark.django_db(transaction=True)
def test_a_late_offer_the_sweep_missed_is_expired_by_the_next_offer(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, bruno = make_agent("ana"), make_agent("bruno")
    team.members.add(ana, bruno)
    online(ana, bruno)
    conversation = queued("stuck-0001", "avería")
    stuck = offer_of(conversation)
    assert stuck is not None
    past_deadline(stuck)  # and no sweep ran (its task was lost)

    # A late offer does not hold the agent's slot, and the next offer of the conversation expires it.
    assert assignment.auto_assign(conversation.pk) is not None
    stuck.refresh_from_db()
    assert stuck.status == AssignmentOffer.Status.EXPIRED
    assert offered_to(conversation) not in (None, stuck.agent_id)


@pytest.mark.django_db(transaction=True)
def test_a_manual_claim_withdraws_the_pending_offer(make_agent, online, django_capture_on_commit_callbacks, listen):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, bruno = make_agent("ana"), make_agent("bruno")
    team.members.add(ana, bruno)
    online(ana)  # only Ana is available: the offer is hers
    conversation = queued("withdraw-0001", "avería")
    offer = offer_of(conversation)
    assert offer is not None and offer.agent_id == ana.pk
    ana_console = listen(realtime.agent_group(ana.pk))

    with django_capture_on_commit_callbacks(execute=True):
        assert api(signed_in(bruno), conversation, "claim").status_code == 200

    offer.refresh_from_db()
    assert offer.status == AssignmentOffer.Status.WITHDRAWN
    assert ana_console.receive() == {
        "type": "offer.withdrawn",
        "offer_id": offer.pk,
        "conversation_id": str(conversation.pk),
        "reason": "withdrawn",
    }
    accepted = signed_in(ana).post(f"/console/api/offers/{offer.pk}/accept")
    assert (accepted.status_code, accepted.json()["error"]["code"]) == (409, "offer_gone")
    conversation.refresh_from_db()
    assert conversation.assigned_agent_id == bruno.pk


@pytest.mark.django_db(transaction=True)
def test_the_offered_agent_and_a_manual_claimer_racing_make_one_winner(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, bruno = make_agent("ana"), make_agent("bruno")
    team.members.add(ana, bruno)
    online(ana)
    conversations = [queued(f"race-{i:04d}", "avería") for i in range(4)]
    offers = [offer for offer in map(offer_of, conversations) if offer is not None]
    assert len(offers) == 4 and all(offer.agent_id == ana.pk for offer in offers)

    def race(i: int) -> str:
        offer, conversation = offers[i // 2], conversations[i // 2]
        try:
            if i % 2 == 0:
                assignment.accept_offer(ana, offer.pk)
            else:
                state.claim_conversation(conversation, bruno)
        except (assignment.OfferGoneError, state.TransitionError):
            return "lost"
        return "won"

    outcomes = run_concurrently(race, 8)

    assert outcomes.count("won") == 4
    for conversation, offer in zip(conversations, offers, strict=True):
        assert AgentAssignment.objects.filter(conversation=conversation).count() == 1
        offer.refresh_from_db()
        conversation.refresh_from_db()
        expected = AssignmentOffer.Status.ACCEPTED if conversation.assigned_agent_id == ana.pk else "withdrawn"
        assert offer.status == expected


@pytest.mark.django_db(transaction=True)
def test_choosing_away_hands_the_open_offers_to_another_agent(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, bruno = make_agent("ana"), make_agent("bruno")
    team.members.add(ana, bruno)
    online(ana, bruno)
    conversation = queued("away-offer-0001", "avería")
    first = offer_of(conversation)
    assert first is not None
    leaving = first.agent

    away = signed_in(leaving).put("/console/api/presence", {"state": "away"}, content_type="application/json")
    assert away.status_code == 200

    first.refresh_from_db()
    assert first.status == AssignmentOffer.Status.WITHDRAWN
    assert offered_to(conversation) not in (None, leaving.pk)


@pytest.mark.django_db(transaction=True)
def test_an_agent_who_comes_back_online_is_offered_the_waiting_conversations_of_their_teams(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería", capacity=2)
    ana = make_agent("ana")
    team.members.add(ana)
    online(ana)
    client = signed_in(ana)
    assert client.put("/console/api/presence", {"state": "away"}, content_type="application/json").json() == {
        "state": "away"
    }
    waiting = [queued(f"comeback-{i:04d}", "avería") for i in range(3)]
    assert all(offer_of(c) is None for c in waiting)

    back = client.put("/console/api/presence", {"state": "online"}, content_type="application/json")

    assert back.status_code == 200 and back.json() == {"state": "online"}
    # The two oldest, up to her capacity; the newest keeps waiting.
    assert [offered_to(c) for c in waiting] == [ana.pk, ana.pk, None]
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
    assert (offered_to(first), offered_to(second)) == (ana.pk, None)  # at capacity: the second waits
    accept(first)
    assert offered_to(second) is None

    assert api(signed_in(ana), first, "close").status_code == 200

    assert offered_to(second) == ana.pk


@pytest.mark.django_db(transaction=True)
async def test_opening_the_console_offers_the_waiting_conversations_and_accept_works(make_agent):
    team = await sync_to_async(Team.objects.create)(name="Soporte", keywords="avería")
    ana = await sync_to_async(make_agent)("ana")
    await sync_to_async(team.members.add)(ana)
    waiting = await sync_to_async(queued)("connect-0001", "avería")  # nobody online: it waits
    assert waiting.status == QUEUED

    socket = await sync_to_async(console_socket)(ana)
    connected, _ = await socket.connect()
    assert connected

    offer = await next_of(socket, "offer.made")
    assert offer["conversation_id"] == str(waiting.pk) and offer["contact_name"]
    accept_url = f"/console/api/offers/{offer['offer_id']}/accept"
    accepted = await sync_to_async(lambda: signed_in(ana).post(accept_url))()
    assert accepted.status_code == 200
    gone = await next_of(socket, "offer.withdrawn")
    assert (gone["offer_id"], gone["reason"]) == (offer["offer_id"], "accepted")
    await socket.disconnect()
    await sync_to_async(presence.leave)(ana.pk, "any")


@pytest.mark.django_db(transaction=True)
def test_a_transfer_to_an_auto_assign_team_never_bounces_back_to_the_transferring_agent(make_agent, online):
    team = Team.objects.create(name="Soporte", keywords="avería")
    ana, carla = make_agent("ana"), make_agent("carla")
    team.members.add(ana)
    online(ana, carla)
    first, second = accept(queued("bounce-0001", "avería")), accept(queued("bounce-0002", "avería"))
    assert first.assigned_agent_id == ana.pk and second.assigned_agent_id == ana.pk

    # Only Ana is an available member: the transferred conversation waits rather than coming back to her.
    assert transfer(ana, first, team=team.pk, note="No me da tiempo").status_code == 200
    first.refresh_from_db()
    assert (first.status, first.assigned_agent_id, offer_of(first)) == (QUEUED, None, None)

    # With Carla in the team too, the next transfer is offered to her.
    team.members.add(carla)
    assert transfer(ana, second, team=team.pk, note="Para Carla").status_code == 200
    second.refresh_from_db()
    assert (second.status, offered_to(second)) == (QUEUED, carla.pk)


# --- Presence by activity ------------------------------------------------------------------------------


def idle_for(user: Any, minutes: float) -> None:
    """As if the agent's console had reported no activity for `minutes` (the stored timestamp, set directly)."""
    get_redis().zadd(f"{settings.REDIS_PREFIX}:console:activity", {str(user.pk): time.time() - minutes * 60})


async def state_on_monitor(monitor: Any, user: Any, expected: str) -> None:
    """Read the monitor's `agents.online` pushes until one says `user` is in the `expected` state."""
    while True:
        told = await next_of(monitor, "agents.online")
        states = {agent["id"]: agent.get("state") for agent in told["agents"]}
        if states.get(user.pk) == expected:
            return


@pytest.mark.django_db(transaction=True)
async def test_an_idle_agent_is_away_for_offers_and_back_online_on_activity(make_agent, django_user_model, settings):
    settings.TALIA_PRESENCE_IDLE_MIN = 5
    team = await sync_to_async(Team.objects.create)(name="Soporte", keywords="avería")
    ana = await sync_to_async(make_agent)("ana")
    boss = await sync_to_async(django_user_model.objects.create_user)("boss", is_staff=True)
    await sync_to_async(team.members.add)(ana)
    monitor = await ready(await sync_to_async(staff_socket)(boss, "/ws/monitor/"))
    console = await ready(await sync_to_async(console_socket)(ana))
    await state_on_monitor(monitor, ana, "online")
    first = await sync_to_async(queued)("idle-0001", "avería")
    assert (await next_of(console, "offer.made"))["conversation_id"] == str(first.pk)

    await sync_to_async(idle_for)(ana, 6)
    assert await sync_to_async(presence.state_of)(ana.pk) == "away"
    assert ana.pk not in await sync_to_async(presence.available_agent_ids)()
    second = await sync_to_async(queued)("idle-0002", "avería")
    assert await sync_to_async(offer_of)(second) is None  # nobody to offer it to
    # The console's next ping notices the idle spell: the monitor is told, her open offer is withdrawn.
    await console.send_json_to({"type": "ping"})
    await state_on_monitor(monitor, ana, "away")
    withdrawn = await next_of(console, "offer.withdrawn")
    assert (withdrawn["conversation_id"], withdrawn["reason"]) == (str(first.pk), "withdrawn")

    await console.send_json_to({"type": "activity"})

    await state_on_monitor(monitor, ana, "online")
    # Back online: both waiting conversations are offered to her.
    offered = {(await next_of(console, "offer.made"))["conversation_id"] for _ in range(2)}
    assert offered == {str(first.pk), str(second.pk)}
    assert await sync_to_async(presence.state_of)(ana.pk) == "online"
    await console.disconnect()
    await monitor.disconnect()


@pytest.mark.django_db(transaction=True)
def test_activity_never_overrides_a_chosen_away(make_agent, online):
    ana = make_agent("ana")
    online(ana)
    presence.set_state(ana.pk, "away")
    idle_for(ana, settings.TALIA_PRESENCE_IDLE_MIN + 1)
    assert presence.state_of(ana.pk) == "away"

    ended_idle = presence.record_activity(ana.pk)  # idle, though no ping noticed it yet

    assert ended_idle is True and presence.record_activity(ana.pk) is False
    assert presence.state_of(ana.pk) == "away" and ana.pk not in presence.available_agent_ids()
    presence.set_state(ana.pk, "online")
    assert presence.state_of(ana.pk) == "online" and ana.pk in presence.available_agent_ids()


def test_the_queue_page_shows_the_chosen_state_before_the_socket_connects(agent):
    presence.set_state(agent.pk, "away")
    try:
        page = signed_in(agent).get("/console/").content.decode()
        assert '<option value="away" selected>' in page

        presence.set_state(agent.pk, "online")
        page = signed_in(agent).get("/console/").content.decode()
        assert '<option value="online" selected>' in page  # not "offline": no console socket is open yet
    finally:
        presence.set_state(agent.pk, "online")
