"""What agents do in the console: claim, answer, close, hand back. Views and the socket stay thin."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext_lazy as _

from conversations import assignment, attachments, endchat, inbox, labels, realtime, state
from conversations.console import presence
from conversations.console.permissions import is_agent, is_supervisor
from conversations.console.visibility import can_watch
from conversations.leadfields import Written, lead_details, write_lead_fields
from conversations.models import Conversation, ConversationStatus, InternalNote, Label, Message, Sender, Team
from conversations.realtime import agent_name
from conversations.registry import channel_specs
from talia.api import render_message

logger = logging.getLogger(__name__)

MAX_TEXT = 4000


class ConsoleError(Exception):
    """An action the agent may not take now; `code` is machine-readable, the message is for people.

    The message is a lazy msgid with its `%(name)s` params, so the API can say it in English and in the
    agent's language (talia.api.ApiError); str() says it in the active language.
    """

    def __init__(self, code: str, message: Any, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.params = params

    def __str__(self) -> str:
        return render_message(self.message, self.params)


def check_own_conversation(user: Any, conversation: Conversation) -> None:
    if conversation.status != ConversationStatus.AGENT or conversation.assigned_agent_id != user.pk:
        raise ConsoleError("not_yours", _("This conversation is not assigned to you."))


def do_claim(user: Any, conversation: Conversation) -> Conversation:
    if conversation.status == ConversationStatus.QUEUED and not can_watch(user, conversation):
        raise ConsoleError("forbidden", _("This conversation waits in another team's queue."))
    try:
        return state.claim_conversation(conversation, user)
    except state.AlreadyClaimedError:
        current = Conversation.objects.select_related("assigned_agent").get(pk=conversation.pk)
        name = agent_name(current.assigned_agent) or _("Another agent")
        raise ConsoleError("already_claimed", _("%(name)s took it first."), name=name) from None
    except state.TransitionError as exc:
        message = _("The conversation is not waiting for an agent (it is %(status)s).")
        raise ConsoleError("not_queued", message, status=exc.current) from None


def do_take_over(user: Any, conversation: Conversation) -> Conversation:
    """Take a conversation from the assistant before anyone asked for a person (a queued one is claimed)."""
    if conversation.status == ConversationStatus.QUEUED:
        return do_claim(user, conversation)
    try:
        return state.take_over(conversation, user)
    except state.TransitionError as exc:
        if exc.current == ConversationStatus.AGENT:
            current = Conversation.objects.select_related("assigned_agent").get(pk=conversation.pk)
            name = agent_name(current.assigned_agent) or _("Another agent")
            raise ConsoleError("already_claimed", _("%(name)s took it first."), name=name) from None
        raise ConsoleError("not_with_assistant", _("The conversation is no longer with the assistant.")) from None


def do_set_labels(user: Any, conversation: Conversation, label_ids: list[int]) -> list[Label]:
    """Any agent who may open the conversation may label it; supervisors manage the labels themselves."""
    if not can_watch(user, conversation):
        raise ConsoleError("forbidden", _("This conversation is not yours to see."))
    try:
        return labels.set_labels(conversation, label_ids, by=user)
    except labels.UnknownLabelError:
        raise ConsoleError("unknown_label", _("One of those labels no longer exists; reload the page.")) from None


def do_send(user: Any, conversation: Conversation, text: str) -> Message:
    check_own_conversation(user, conversation)
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise ConsoleError("invalid", _("A message has 1 to %(max)d characters."), max=MAX_TEXT)
    return inbox.send(conversation, text, sender=Sender.AGENT, agent=user)


def do_send_file(user: Any, conversation: Conversation, file: Any, caption: str = "") -> Message:
    """The agent's file (and optional caption) to the contact, on a channel that can carry one.

    Raises attachments.AttachmentError for a file TalIA refuses, ConsoleError when the agent may not
    send here (not theirs, or a channel that cannot carry files, such as WhatsApp for now).
    """
    check_own_conversation(user, conversation)
    spec = channel_specs.get(conversation.channel)
    if spec is None or not spec.sends_files:
        label = spec.label if spec is not None else conversation.channel
        raise ConsoleError("files_not_supported", _("Files cannot be sent on %(channel)s."), channel=label)
    caption = caption.strip()
    if len(caption) > attachments.MAX_CAPTION:
        raise ConsoleError("invalid", _("A caption has at most %(max)d characters."), max=attachments.MAX_CAPTION)
    entry = attachments.store_upload(attachments.check_upload(file), f"console/{conversation.pk}")
    try:
        return inbox.send(
            conversation,
            caption,
            sender=Sender.AGENT,
            agent=user,
            content_type="media",
            metadata={"attachments": [entry]},
        )
    except inbox.ConversationClosedError:
        attachments.discard([entry])
        raise ConsoleError("already_closed", _("The conversation is already closed.")) from None


def do_close(user: Any, conversation: Conversation) -> Conversation:
    if not is_supervisor(user):
        check_own_conversation(user, conversation)
    handler = conversation.assigned_agent if conversation.status == ConversationStatus.AGENT else None
    try:
        closed = state.close_conversation(conversation, ended_by="agent", reason=f"closed by {user.get_username()}")
    except state.TransitionError:
        raise ConsoleError("already_closed", _("The conversation is already closed.")) from None
    _refill(handler)
    return closed


def _refill(agent: Any, *, skip: UUID | None = None) -> None:
    """The agent has room for one more: waiting conversations of their auto-assign teams may go out now."""
    if agent is None:
        return
    try:
        assignment.fill(agent, skip=skip)
    except Exception:
        logger.exception("Auto-assignment after agent %s freed a slot failed", agent.pk)


def do_answer_end(user: Any, conversation: Conversation, accept: bool) -> Conversation:
    check_own_conversation(user, conversation)
    try:
        return endchat.answer_end(conversation, user, accept=accept)
    except endchat.NoEndRequestError:
        raise ConsoleError("no_end_request", _("The contact has not asked to end the chat.")) from None


def do_hand_back(user: Any, conversation: Conversation) -> Conversation:
    check_own_conversation(user, conversation)
    handed_back = state.hand_back_to_assistant(conversation)
    _refill(user)
    return handed_back


def _agent(user_id: int) -> Any:
    """The agent with this user id; ConsoleError when there is none (or they are not an agent)."""
    target = get_user_model().objects.filter(pk=user_id).first()
    if target is None or not is_agent(target):
        raise ConsoleError("unknown_agent", _("That person is not an agent."))
    return target


def do_transfer(
    user: Any, conversation: Conversation, agent_id: int | None, team_id: int | None, note: str
) -> Conversation:
    """Hand the conversation this agent handles (any, for a supervisor) to another agent or a team's queue.

    A waiting conversation moves to another team's queue instead (`do_move_queue`).
    """
    if conversation.status == ConversationStatus.QUEUED:
        return do_move_queue(user, conversation, agent_id, team_id, note)
    if not is_supervisor(user):
        check_own_conversation(user, conversation)
    elif conversation.status != ConversationStatus.AGENT:
        raise ConsoleError("not_with_agent", _("Only a conversation an agent is handling can be transferred."))
    text = _clean_note(note)
    previous = conversation.assigned_agent
    try:
        if agent_id is not None:
            target = _agent(agent_id)
            if target.pk == conversation.assigned_agent_id:
                raise ConsoleError("same_agent", _("The conversation is already with that agent."))
            moved = state.transfer_to_agent(conversation, target, by=user, note=text)
        else:
            moved = state.transfer_to_team(conversation, _team(team_id), by=user, note=text)
    except state.TransitionError:
        raise ConsoleError("not_with_agent", _("The conversation is no longer with an agent.")) from None
    _refill(previous, skip=conversation.pk)
    return moved


def _team(team_id: int | None) -> Team:
    team = Team.objects.filter(pk=team_id).first() if team_id is not None else None
    if team is None:
        raise ConsoleError("unknown_team", _("That team no longer exists; reload the page."))
    return team


def do_move_queue(
    user: Any, conversation: Conversation, agent_id: int | None, team_id: int | None, note: str
) -> Conversation:
    """Move a waiting conversation to another team's queue, with a note (the brief and the wait go with it).

    An agent may move what waits in their teams' queues or in the unrouted one (what their queue page
    shows them: `can_watch`); a supervisor anything waiting. Only to a team: giving a waiting conversation
    to one agent is a supervisor's reassign.
    """
    if not can_watch(user, conversation):
        raise ConsoleError("forbidden", _("This conversation waits in another team's queue."))
    if agent_id is not None:
        raise ConsoleError("queue_to_team_only", _("A waiting conversation can only be moved to a team's queue."))
    team = _team(team_id)
    text = _clean_note(note)
    try:
        moved = state.move_to_team(conversation, team, by=user, note=text)
    except state.SameTeamError:
        raise ConsoleError("same_team", _("The conversation already waits in that team's queue.")) from None
    except state.TransitionError:
        raise ConsoleError("not_queued", _("The conversation is no longer waiting for an agent.")) from None
    return moved


def do_set_presence(user: Any, value: str) -> str:
    """The agent's chosen state; choosing online offers them waiting conversations of their teams, choosing
    away or offline hands their open offers to others."""
    if value not in presence.STATES:
        raise ConsoleError("invalid", _("Choose online, away or offline."))
    try:
        presence.set_state(user.pk, value)
    except Exception:
        raise ConsoleError("unavailable", _("Your state could not be saved; try again.")) from None
    if value == "online":
        assignment.fill(user)
    else:
        assignment.release_offers(user)  # their open offers go to someone available now
    presence.announce()
    return value


def do_accept_offer(user: Any, offer_id: int) -> Conversation:
    """The agent takes the conversation auto-assignment offered them (a claim, one winner)."""
    try:
        return assignment.accept_offer(user, offer_id)
    except assignment.OfferGoneError:
        raise ConsoleError(
            "offer_gone", _("That offer is no longer open: it expired or someone else took the conversation.")
        ) from None


def do_decline_offer(user: Any, offer_id: int) -> None:
    """The agent passes: the conversation is offered to the next agent, or waits in the queue."""
    try:
        assignment.decline_offer(user, offer_id)
    except assignment.OfferGoneError:
        raise ConsoleError("offer_gone", _("That offer is no longer open.")) from None


def _clean_note(text: str) -> str:
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise ConsoleError("invalid", _("A note has 1 to %(max)d characters."), max=MAX_TEXT)
    return text


def do_add_note(user: Any, conversation: Conversation, text: str) -> InternalNote:
    """An internal note: every agent who can see the conversation reads it; the contact never does."""
    if not can_watch(user, conversation):
        raise ConsoleError("forbidden", _("This conversation is not yours to see."))
    return _write_note(conversation, user, text)


def _write_note(conversation: Conversation, author: Any, text: str) -> InternalNote:
    """Store an internal note and tell the staff watching (after commit)."""
    with transaction.atomic():
        note = InternalNote.objects.create(conversation=conversation, author=author, text=_clean_note(text))
        realtime.publish([realtime.staff_group(conversation.pk), realtime.MONITOR_GROUP], realtime.note_added(note))
    return note


def do_whisper(user: Any, conversation: Conversation, text: str) -> InternalNote:
    """A supervisor's word to the agent handling the conversation, wherever in the console they are."""
    if not is_supervisor(user):
        raise ConsoleError("forbidden", _("Only supervisors may whisper to an agent."))
    agent = conversation.assigned_agent if conversation.status == ConversationStatus.AGENT else None
    if agent is None:
        raise ConsoleError("no_agent", _("No agent is handling this conversation."))
    with transaction.atomic():
        note = InternalNote.objects.create(
            conversation=conversation,
            kind=InternalNote.Kind.WHISPER,
            author=user,
            recipient=agent,
            text=_clean_note(text),
        )
        realtime.publish(
            [realtime.staff_group(conversation.pk), realtime.agent_group(agent.pk), realtime.MONITOR_GROUP],
            realtime.note_added(note),
        )
    return note


def do_edit_contact(user: Any, conversation: Conversation, values: dict[str, str]) -> Written:
    """An agent corrects the contact's details from the sidebar, through the one lead-field writer.

    Any agent who may open the conversation may edit (its contact is on their screen). Consent does not
    hold it back: the agent is the business's staff keeping its own records (leadfields' docstring).
    """
    if not can_watch(user, conversation):
        raise ConsoleError("forbidden", _("This conversation is not yours to see."))
    return write_lead_fields(conversation, values, agent=user)


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    contact = conversation.contact
    queued_at = conversation.handoff_requests.aggregate(at=Max("created"))["at"]
    return {
        "id": str(conversation.id),
        "channel": conversation.channel,
        "status": conversation.status,
        "contact": {
            "id": str(contact.id),
            "name": str(contact),
            **lead_details(contact),
        },
        "agent_name": agent_name(conversation.assigned_agent),
        "team": conversation.team.name if conversation.team_id and conversation.team else None,
        "queued_at": queued_at.isoformat() if queued_at else None,
        "last_message_at": conversation.last_message_at.isoformat() if conversation.last_message_at else None,
    }


def do_reassign(
    user: Any, conversation: Conversation, agent_id: int | None, team_id: int | None, note: str
) -> Conversation:
    """A supervisor, from the monitor, gives a conversation to another agent or team.

    With an agent: a queued conversation is claimed on their behalf (state.claim_conversation, capacity
    not checked: the supervisor decides), one an agent handles is transferred to them. With a team: one
    an agent handles, or one waiting in another queue, goes to that team's queue. A transfer or a move
    records its note (the given one, else a default naming the supervisor); a claim on behalf records the
    note only when one is given.
    """
    if not is_supervisor(user):
        raise ConsoleError("forbidden", _("Only supervisors may reassign conversations."))
    text = note.strip()
    default = _("Reassigned by %(name)s from the monitor.") % {"name": agent_name(user)}
    if conversation.status == ConversationStatus.AGENT:
        return do_transfer(user, conversation, agent_id, team_id, text or default)
    if conversation.status != ConversationStatus.QUEUED:
        raise ConsoleError("not_reassignable", _("Only a waiting conversation or one with an agent can be reassigned."))
    if agent_id is None:
        return do_move_queue(user, conversation, None, team_id, text or default)
    target = _agent(agent_id)
    with transaction.atomic():
        try:
            claimed = state.claim_conversation(conversation, target)
        except state.TransitionError:
            raise ConsoleError("not_queued", _("The conversation is no longer waiting for an agent.")) from None
        if text:
            _write_note(claimed, user, text)
        # The agent's consoles: it is theirs now (the queue page says so).
        realtime.publish(
            [realtime.agent_group(target.pk)], realtime.conversation_changed("conversation.assigned", claimed)
        )
    return claimed
