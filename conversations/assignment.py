"""Auto-assignment: a conversation queued for a team with `auto_assign` is offered to one of its members.

Chosen, once the queueing commits (`offer_after_commit`): the team's members who are available
(presence: a console socket open, their chosen state online and not idle, see
conversations.console.presence) and whose load is under the team's capacity. The load is their open
conversations (status agent, assigned to them) plus the offers they have not answered yet, so a pending
offer holds a slot. The one with the least load wins, ties going to whoever was assigned a conversation
longest ago (round-robin). Agents who declined this conversation or let its offer expire within
PASSED_OVER are skipped.

The offer (an AssignmentOffer row, so it survives a restart) is pushed to the agent's consoles
(`offer.made`) and lasts TALIA_OFFER_TIMEOUT_S:

- accepted (`accept_offer`): the conversation is claimed through conversations.state.claim_conversation,
  whose conditional UPDATE makes one winner against manual claims; the claim marks the offer accepted in
  the same transaction, and fails if the offer was answered, expired or withdrawn meanwhile.
- declined (`decline_offer`) or expired (`expire_offers`, run every few seconds by Celery beat; the next
  offer of the same conversation expires a late one too): recorded (`offer_declined`, `offer_expired`)
  and offered to the next candidate. With nobody left it simply stays queued.
- withdrawn (`resolve_offers`, called by the state machine): someone claimed the conversation, or it
  left the queue; the offered agent's prompt goes away (`offer.withdrawn`). Also when the agent goes
  away (`release_offers`: they chose away or offline, or turned idle): offered to the next one at once.

At most one offer per conversation is pending (a partial unique index). Capacity holds under
concurrency because the chosen agent's user row is locked while their load is counted and the offer is
made: two assigners choosing the same agent take turns, and the second counts the first's offer. Lock
order is always the agent's row, then the conversation's, then its offers (a claim takes the last two
in that order too), so offering, claiming and expiring never wait on each other in a circle.

An agent who becomes available (chooses online, opens the console, comes back from idle, frees a slot)
is offered the waiting conversations of their auto-assign teams, oldest first, up to capacity (`fill`).
Manual claim stays possible throughout.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from conversations import events, realtime, state
from conversations.console import presence
from conversations.console.permissions import AGENTS_GROUP_NAME
from conversations.models import AssignmentOffer, Conversation, ConversationStatus, Team

logger = logging.getLogger(__name__)

PENDING = AssignmentOffer.Status.PENDING
# An agent who declined a conversation, or let its offer expire, is not offered it again for this long.
PASSED_OVER = timedelta(minutes=10)


class OfferGoneError(Exception):
    """The offer was answered, expired or withdrawn already (or is not this agent's)."""


def _passed_over(conversation: Conversation) -> set[int]:
    since = timezone.now() - PASSED_OVER
    return set(
        AssignmentOffer.objects.filter(
            conversation=conversation,
            status__in=[AssignmentOffer.Status.DECLINED, AssignmentOffer.Status.EXPIRED],
            resolved_at__gte=since,
        ).values_list("agent_id", flat=True)
    )


def _load(agent_id: int) -> int:
    """Open conversations plus unanswered offers: what counts against the agent's capacity."""
    handling = Conversation.objects.filter(status=ConversationStatus.AGENT, assigned_agent_id=agent_id).count()
    offered = AssignmentOffer.objects.filter(agent_id=agent_id, status=PENDING, expires_at__gt=timezone.now()).count()
    return handling + offered


def _candidates(team: Team, available: set[int]) -> list[Any]:
    """Available, active agent members of `team` under capacity, the best first."""
    now = timezone.now()
    users = (
        team.members.filter(pk__in=available, is_active=True)
        .filter(Q(is_staff=True) | Q(groups__name=AGENTS_GROUP_NAME))
        .distinct()
        .annotate(
            handling=Count(
                "assigned_conversations",
                filter=Q(assigned_conversations__status=ConversationStatus.AGENT),
                distinct=True,
            ),
            offered=Count(
                "assignment_offers",
                filter=Q(assignment_offers__status=PENDING, assignment_offers__expires_at__gt=now),
                distinct=True,
            ),
            last_assigned=Max("assignments__assigned_at"),
        )
    )
    ranked = [user for user in users if user.handling + user.offered < team.capacity]
    return sorted(
        ranked,
        key=lambda user: (
            user.handling + user.offered,
            user.last_assigned.timestamp() if user.last_assigned else 0.0,
            user.pk,
        ),
    )


def _offer_payload(offer: AssignmentOffer, conversation: Conversation) -> realtime.OfferMade:
    return {
        "type": "offer.made",
        "offer_id": offer.pk,
        "conversation_id": str(conversation.pk),
        "channel": conversation.channel,
        "contact_name": str(conversation.contact),
        "team_name": conversation.team.name if conversation.team is not None else None,
        "expires_at": offer.expires_at.isoformat(),
        "timeout_s": settings.TALIA_OFFER_TIMEOUT_S,
    }


def _withdrawn(offer_id: int, conversation_id: object, reason: str) -> realtime.OfferWithdrawn:
    return {"type": "offer.withdrawn", "offer_id": offer_id, "conversation_id": str(conversation_id), "reason": reason}


def _offer_within_capacity(conversation_id: UUID, agent_id: int, capacity: int) -> AssignmentOffer | bool | None:
    """Offer to the agent if they are still under capacity: the offer, False when full, None when the
    conversation is no longer queued or is already offered to someone."""
    user_model = get_user_model()
    with transaction.atomic():
        user_model.objects.select_for_update().get(pk=agent_id)  # one assigner per agent at a time
        if _load(agent_id) >= capacity:
            return False
        # NO KEY: rows that point at the conversation (its events) may still be written meanwhile.
        conversation = (
            Conversation.objects.select_for_update(no_key=True, of=("self",))
            .select_related("contact", "team")
            .filter(pk=conversation_id, status=ConversationStatus.QUEUED)
            .first()
        )
        if conversation is None or AssignmentOffer.objects.filter(conversation=conversation, status=PENDING).exists():
            return None
        now = timezone.now()
        offer = AssignmentOffer.objects.create(
            conversation=conversation,
            agent_id=agent_id,
            team=conversation.team,
            created=now,
            expires_at=now + timedelta(seconds=settings.TALIA_OFFER_TIMEOUT_S),
        )
        events.emit(
            events.ASSIGNMENT_OFFERED,
            conversation=conversation,
            agent_id=agent_id,
            offer_id=offer.pk,
            expires_at=offer.expires_at.isoformat(),
        )
        realtime.publish([realtime.agent_group(agent_id)], _offer_payload(offer, conversation))
    return offer


def auto_assign(conversation_id: UUID | str, *, exclude: int | None = None) -> Any | None:
    """Offer a queued conversation of an auto-assign team to its best available member; the agent or None
    (not queued, no auto-assignment, already offered, or nobody available under capacity).
    `exclude`: an agent who must not get it (the one who just transferred it away)."""
    conversation = Conversation.objects.select_related("team").filter(pk=conversation_id).first()
    if conversation is None or conversation.status != ConversationStatus.QUEUED:
        return None
    team = conversation.team
    if team is None or not team.auto_assign:
        return None
    _expire_late(conversation.pk)  # an offer whose expiry the sweep has not reached yet
    available = presence.available_agent_ids()
    if not available:
        return None
    skip = _passed_over(conversation) | {exclude}
    for agent in _candidates(team, available - skip):
        outcome = _offer_within_capacity(conversation.pk, agent.pk, team.capacity)
        if outcome is None:
            return None  # claimed, closed or offered meanwhile
        if outcome:
            logger.info("Offered conversation %s to agent %s", conversation.pk, agent.pk)
            return agent
    return None


def offer_after_commit(conversation_id: UUID | str, *, exclude: int | None = None) -> None:
    """Run `auto_assign` once the current transaction commits; a failure leaves it queued (logged)."""

    def run() -> None:
        try:
            auto_assign(conversation_id, exclude=exclude)
        except Exception:
            logger.exception("Auto-assignment of conversation %s failed; it stays queued", conversation_id)

    transaction.on_commit(run)


def fill(agent: Any, *, skip: UUID | None = None) -> list[str]:
    """The agent just became available: offer them waiting conversations of their teams, oldest first
    (but `skip`, a conversation they just transferred away), up to their capacity."""
    offered = []
    waiting = Conversation.objects.filter(status=ConversationStatus.QUEUED, team__auto_assign=True, team__members=agent)
    if skip is not None:
        waiting = waiting.exclude(pk=skip)
    waiting = waiting.annotate(queued_at=Max("handoff_requests__created")).order_by("queued_at")
    for conversation in waiting[:50]:
        if auto_assign(conversation.pk) is None:
            continue
        offered.append(str(conversation.pk))
    return offered


# --- Answering offers ----------------------------------------------------------------------------------


def pending_offers(agent: Any) -> list[dict[str, Any]]:
    """The agent's offers still open, as `offer.made` pushes (for a console that (re)connects)."""
    offers = AssignmentOffer.objects.filter(agent=agent, status=PENDING, expires_at__gt=timezone.now()).select_related(
        "conversation__contact", "conversation__team"
    )
    return [dict(_offer_payload(offer, offer.conversation)) for offer in offers.order_by("created")]


def accept_offer(agent: Any, offer_id: int) -> Conversation:
    """Claim the offered conversation for `agent`. Raises OfferGoneError when the offer is no longer open."""
    offer = AssignmentOffer.objects.select_related("conversation").filter(pk=offer_id, agent=agent).first()
    if offer is None or offer.status != PENDING or offer.expires_at <= timezone.now():
        raise OfferGoneError(offer_id)
    try:
        claimed = state.claim_conversation(offer.conversation, agent, offer_id=offer.pk)
    except state.TransitionError:
        raise OfferGoneError(offer_id) from None
    logger.info("Agent %s accepted the offer of conversation %s", agent.pk, claimed.pk)
    return claimed


def decline_offer(agent: Any, offer_id: int) -> None:
    """The agent does not take it: it goes to the next candidate. Raises OfferGoneError when not open."""
    with transaction.atomic():
        offer = AssignmentOffer.objects.select_related("conversation").filter(pk=offer_id, agent=agent).first()
        now = timezone.now()
        if offer is None or not AssignmentOffer.objects.filter(pk=offer_id, status=PENDING).update(
            status=AssignmentOffer.Status.DECLINED, resolved_at=now
        ):
            raise OfferGoneError(offer_id)
        events.emit(events.OFFER_DECLINED, conversation=offer.conversation, agent_id=agent.pk, offer_id=offer.pk)
        realtime.publish([realtime.agent_group(agent.pk)], _withdrawn(offer.pk, offer.conversation_id, "declined"))
        offer_after_commit(offer.conversation_id)


def release_offers(agent: Any) -> int:
    """The agent went away (chose away or offline, or turned idle): their open offers are withdrawn and
    offered to someone else at once rather than left to time out. How many were withdrawn."""
    released = 0
    with transaction.atomic():
        now = timezone.now()
        for offer_id, conversation_id in AssignmentOffer.objects.filter(agent=agent, status=PENDING).values_list(
            "pk", "conversation_id"
        ):
            if AssignmentOffer.objects.filter(pk=offer_id, status=PENDING).update(
                status=AssignmentOffer.Status.WITHDRAWN, resolved_at=now
            ):
                released += 1
                realtime.publish([realtime.agent_group(agent.pk)], _withdrawn(offer_id, conversation_id, "withdrawn"))
                offer_after_commit(conversation_id, exclude=agent.pk)
    return released


def _expire(offer_id: int, conversation_id: UUID, agent_id: int) -> bool:
    """Mark one pending offer past its deadline expired (event, push); False when it was answered first."""
    with transaction.atomic():
        now = timezone.now()
        if not AssignmentOffer.objects.filter(pk=offer_id, status=PENDING, expires_at__lte=now).update(
            status=AssignmentOffer.Status.EXPIRED, resolved_at=now
        ):
            return False
        conversation = Conversation.objects.get(pk=conversation_id)
        events.emit(events.OFFER_EXPIRED, conversation=conversation, agent_id=agent_id, offer_id=offer_id)
        realtime.publish([realtime.agent_group(agent_id)], _withdrawn(offer_id, conversation_id, "expired"))
    return True


def _expire_late(conversation_id: UUID) -> None:
    late = AssignmentOffer.objects.filter(
        conversation_id=conversation_id, status=PENDING, expires_at__lte=timezone.now()
    )
    for offer_id, agent_id in late.values_list("pk", "agent_id"):
        _expire(offer_id, conversation_id, agent_id)


# Offers expired per sweep; the rest wait for the next one (every few seconds).
EXPIRE_BATCH = 500


def expire_offers() -> list[int]:
    """Expire every pending offer past its deadline and offer each conversation to the next candidate;
    the ids of the offers expired here (Celery beat runs this every few seconds)."""
    late = AssignmentOffer.objects.filter(status=PENDING, expires_at__lte=timezone.now()).order_by("expires_at")
    expired = []
    for offer_id, conversation_id, agent_id in late.values_list("pk", "conversation_id", "agent_id")[:EXPIRE_BATCH]:
        if not _expire(offer_id, conversation_id, agent_id):
            continue
        expired.append(offer_id)
        try:
            auto_assign(conversation_id)
        except Exception:
            logger.exception("Re-offering conversation %s failed; it stays queued", conversation_id)
    return expired


def resolve_offers(conversation: Conversation, *, claimed_by: Any | None = None, accepting: int | None = None) -> None:
    """Close the conversation's pending offer: it was claimed (by `claimed_by`, answering offer `accepting`
    or not) or it left the queue. Called by the state machine inside its transition's transaction;
    raises OfferGoneError when `accepting` is no longer open, which rolls the claim back."""
    now = timezone.now()
    if accepting is not None and not AssignmentOffer.objects.filter(
        pk=accepting, conversation=conversation, status=PENDING, expires_at__gt=now
    ).update(status=AssignmentOffer.Status.ACCEPTED, resolved_at=now):
        raise OfferGoneError(accepting)
    claimer = claimed_by.pk if claimed_by is not None else None
    if accepting is not None:
        realtime.publish([realtime.agent_group(claimer)], _withdrawn(accepting, conversation.pk, "accepted"))
    for offer_id, agent_id in AssignmentOffer.objects.filter(conversation=conversation, status=PENDING).values_list(
        "pk", "agent_id"
    ):
        # The offered agent claiming it from the queue instead of the prompt has accepted it all the same.
        outcome = AssignmentOffer.Status.ACCEPTED if agent_id == claimer else AssignmentOffer.Status.WITHDRAWN
        AssignmentOffer.objects.filter(pk=offer_id, status=PENDING).update(status=outcome, resolved_at=now)
        realtime.publish([realtime.agent_group(agent_id)], _withdrawn(offer_id, conversation.pk, str(outcome)))
