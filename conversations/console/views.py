"""The agent console (server-rendered; live updates arrive with the console socket)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from conversations import attachments, delivery
from conversations import teams as conversation_teams
from conversations.assistant import summaries
from conversations.console import presence
from conversations.console.permissions import AGENTS_GROUP_NAME, agent_required, is_supervisor, supervisor_required
from conversations.console.sidebar import contact_sidebar, my_other_conversations
from conversations.console.visibility import can_watch, watchable
from conversations.models import (
    OPEN_STATUSES,
    ContactIdentity,
    Conversation,
    ConversationStatus,
    ConversationSummary,
    DeliveryStatus,
    EndChatRequest,
    HandoffRequest,
    Label,
    Message,
    QuickReply,
    Sender,
    Team,
)
from conversations.registry import channel_specs
from conversations.templatetags.console_tags import phone_address

PREVIEW_MESSAGES = 3
# How many of the assistant's conversations the queue page lists (most recently active first).
WITH_ASSISTANT = 20
RECENTLY_CLOSED = 10
# The monitor shows this many open conversations (the queue first); beyond that it says how many more.
MONITOR_LIMIT = 200


def _with_preview(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Contact, agent, how the contact is known on the channel (`identity`: a WhatsApp or caller number)
    and the last few messages (newest first) of each conversation, in three queries."""
    latest = Message.objects.order_by("-seq")[:PREVIEW_MESSAGES]
    identity = ContactIdentity.objects.filter(contact_id=OuterRef("contact_id"), channel=OuterRef("channel"))
    return (
        conversations.select_related("contact", "assigned_agent", "team")
        .annotate(identity=Subquery(identity.values("value")[:1]))
        .prefetch_related(Prefetch("messages", queryset=latest, to_attr="latest_messages"), "labels")
    )


def _chosen_label(request: HttpRequest) -> Label | None:
    """The label the queue page is filtered by (`?label=<id>`); None for all, or for an id that is not one."""
    raw = request.GET.get("label", "")
    return Label.objects.filter(pk=int(raw)).first() if raw.isdigit() else None


@agent_required
def console(request: HttpRequest) -> HttpResponse:
    label = _chosen_label(request)
    everything = Conversation.objects.filter(labels=label) if label is not None else Conversation.objects.all()
    # The agent's teams' queues and the unrouted one (supervisors: every team's).
    queued = _with_preview(
        watchable(request.user, everything.filter(status=ConversationStatus.QUEUED))
        .annotate(
            queued_at=Max("handoff_requests__created"),
            # Asked for while the team was away: it waits for the next opening.
            out_of_hours=Exists(
                HandoffRequest.objects.filter(
                    conversation=OuterRef("pk"), status=HandoffRequest.Status.PENDING, out_of_hours=True
                )
            ),
        )
        .order_by("queued_at")
    )
    mine = _with_preview(
        everything.filter(status=ConversationStatus.AGENT, assigned_agent_id=request.user.pk).order_by(
            "-last_message_at"
        )
    )
    # The assistant's conversations, most recently active first: any agent may follow one and take it over.
    with_assistant = _with_preview(
        everything.filter(status=ConversationStatus.BOT).order_by(F("last_message_at").desc(nulls_last=True))
    )
    # Previews only of conversations the agent may open: their own closed ones (staff: everyone's).
    closed = _with_preview(
        watchable(request.user, everything.filter(status=ConversationStatus.CLOSED)).order_by("-closed_at")
    )
    context = {
        "queued": queued,
        "mine": mine,
        "with_assistant": with_assistant[:WITH_ASSISTANT],
        "closed": closed[:RECENTLY_CLOSED],
        "channel_specs": channel_specs.all(),
        "sender_choices": Sender.choices,  # labels for live rows' previews
        "all_labels": Label.objects.all(),
        "label": label,
        # What the agent chose, not state_of: that says offline until this page's socket connects.
        "presence_state": presence.chosen_state(int(request.user.pk or 0)),
        "presence_states": [("online", _("Online")), ("away", _("Away")), ("offline", _("Offline"))],
    }
    return render(request, "conversations/console.html", context)


@agent_required
def conversation_page(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = get_object_or_404(
        Conversation.objects.select_related("contact", "assigned_agent", "team"), pk=conversation_id
    )
    if not can_watch(request.user, conversation):
        # Normal use leads here (a conversation handed back, claimed by someone else or closed while its
        # link was open): back to the queue with a word on why, not a bare 403. Nothing of it is shown.
        messages.info(request, _("That conversation is no longer in your queue: someone else has it or it ended."))
        return redirect("console")
    context = {
        "conversation": conversation,
        # Not "messages": that name is the flash messages base.html shows (a sidebar action says how it went).
        "history": conversation.messages.select_related("agent").order_by("seq"),
        "brief": summaries.handoff_brief(conversation),
        "is_mine": conversation.status == ConversationStatus.AGENT
        and conversation.assigned_agent_id == request.user.pk,
        "can_claim": conversation.status == ConversationStatus.QUEUED,
        "can_take_over": conversation.status == ConversationStatus.BOT,
        "all_labels": Label.objects.all(),
        "label_ids": set(conversation.labels.values_list("pk", flat=True)),
        # A request to end the chat that arrived before this page was opened.
        "end_requested": conversation.end_requests.filter(status=EndChatRequest.Status.PENDING).exists(),
        "quick_replies": QuickReply.objects.all(),
        "delivery_statuses": DeliveryStatus.choices,
        "notes": conversation.notes.select_related("author", "recipient"),
        "can_whisper": is_supervisor(request.user)
        and conversation.status == ConversationStatus.AGENT
        and conversation.assigned_agent_id not in (None, request.user.pk),
        "closing_summary": ConversationSummary.objects.filter(conversation=conversation).first(),
        "address": contact_address(conversation),
        "reply_window": delivery.reply_window(conversation) if conversation.is_open else None,
        "channel_details": channel_details(conversation),
        "can_send_files": bool((spec := channel_specs.get(conversation.channel)) and spec.sends_files),
        "accepted_types": ",".join(attachments.ALLOWED_TYPES),
        "image_types": attachments.IMAGE_TYPES,
        **transfer_choices(request.user, conversation),
        "sidebar": contact_sidebar(request, conversation),
        "mine_elsewhere": my_other_conversations(request.user, conversation),
    }
    return render(request, "conversations/conversation.html", context)


def transfer_choices(user: Any, conversation: Conversation) -> dict[str, Any]:
    """Who the conversation may be transferred to, when this user may transfer it (theirs; staff: any); a
    waiting one, to which other team's queue (whoever sees it waiting: actions.do_move_queue)."""
    if conversation.status == ConversationStatus.QUEUED:
        other_teams = Team.objects.exclude(pk=conversation.team_id or 0).order_by("name")
        return {"can_move_queue": True, "transfer_teams": other_teams}  # the page was checked with can_watch
    handled = conversation.status == ConversationStatus.AGENT
    if not handled or not (conversation.assigned_agent_id == user.pk or is_supervisor(user)):
        return {"can_transfer": False}
    agents = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_staff=True) | Q(groups__name=AGENTS_GROUP_NAME))
        .exclude(pk=conversation.assigned_agent_id or 0)
        .distinct()
        .order_by("first_name", "username")
    )
    return {"can_transfer": True, "transfer_agents": agents, "transfer_teams": Team.objects.all()}


def channel_details(conversation: Conversation) -> list[tuple[Any, str]]:
    """What the conversation's channel knows about it (a call's status and duration), from its spec."""
    spec = channel_specs.get(conversation.channel)
    return spec.details(conversation) if spec is not None and spec.details is not None else []


def contact_address(conversation: Conversation) -> str:
    """The contact's number on a phone channel (WhatsApp, voice), as +E.164; "" on others (a web session)."""
    identities = conversation.contact.identities.filter(channel=conversation.channel)
    return phone_address(identities.values_list("value", flat=True).first())


@supervisor_required
def monitor(request: HttpRequest) -> HttpResponse:
    """Every open conversation on every channel, the queue and the agents online, live (read-only)."""
    open_conversations = Conversation.objects.filter(status__in=OPEN_STATUSES)
    ordered = _with_preview(
        open_conversations.annotate(
            queued_at=Max("handoff_requests__created", filter=Q(handoff_requests__status="pending")),
            rank=Case(
                When(status=ConversationStatus.QUEUED, then=Value(0)),
                When(status=ConversationStatus.AGENT, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            ),
        ).order_by("rank", "queued_at", "-last_message_at")
    )
    counts = {row["status"]: row["n"] for row in open_conversations.values("status").annotate(n=Count("id"))}
    online = presence.online_agents()
    handling = conversation_teams.loads()
    teams = list(Team.objects.order_by("name"))
    context = {
        "conversations": ordered[:MONITOR_LIMIT],
        "more": max(0, sum(counts.values()) - MONITOR_LIMIT),
        "open_count": sum(counts.values()),
        "queue_length": counts.get(ConversationStatus.QUEUED, 0),
        "with_agents": counts.get(ConversationStatus.AGENT, 0),
        "with_assistant": counts.get(ConversationStatus.BOT, 0),
        "agents_online": None if online is None else [(agent, handling.get(agent.pk, 0)) for agent in online],
        "summaries": ConversationSummary.objects.select_related("conversation__contact").order_by("-created")[:10],
        "channel_specs": channel_specs.all(),
        "team_queues": team_queues(teams),
        "agent_rows": agent_rows(online, handling),
        "teams": teams,
    }
    return render(request, "conversations/monitor.html", context)


def team_queues(teams: list[Team]) -> list[dict[str, Any]]:
    """Each team's queue (by name, then the unrouted one): how many wait and since when the oldest does
    (kept live by the `monitor.figures` push, conversations.realtime)."""
    by_team = conversation_teams.waiting_by_team()
    rows = [{"id": team.pk, "name": team.name, **_queue_figures(by_team.get(team.pk))} for team in teams]
    return [*rows, {"id": None, "name": _("No team"), **_queue_figures(by_team.get(None))}]


def _queue_figures(row: tuple[int, Any] | None) -> dict[str, Any]:
    return {"waiting": row[0] if row else 0, "oldest": row[1] if row else None}


def agent_rows(online: list[Any] | None, handling: dict[int, int]) -> list[dict[str, Any]]:
    """Every active agent with their state (offline without a console open, else what they chose), their
    load (conversations they handle) and capacity (the largest of their teams'; None without a team)."""
    agents = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_staff=True) | Q(groups__name=AGENTS_GROUP_NAME))
        .distinct()
        .annotate(capacity=Max("teams__capacity"))
        .prefetch_related(Prefetch("teams", queryset=Team.objects.order_by("name")))
        .order_by("first_name", "username")
    )
    online_ids = None if online is None else {int(agent.pk) for agent in online}
    rows = []
    for agent in agents:
        state = "unknown" if online_ids is None else presence.state_of(int(agent.pk), online_ids)
        rows.append(
            {
                "agent": agent,
                "state": state,
                "load": handling.get(agent.pk, 0),
                "capacity": agent.capacity,
                "teams": ", ".join(team.name for team in agent.teams.all()),
            }
        )
    # Who can take work first: online, then away, then offline (and unknown), by name within each.
    order = {"online": 0, "away": 1}
    return sorted(rows, key=lambda row: order.get(row["state"], 2))


@agent_required
def attachment(request: HttpRequest, conversation_id: str, message_id: str, index: int) -> HttpResponse:
    """One held file of a message (a WhatsApp photo, a voice note, a widget upload), for who may watch it.

    Always as a download (Content-Disposition: attachment, nosniff): a file a contact sent never renders
    as a page of TalIA's origin (an <img> still shows an image).
    """
    conversation = get_object_or_404(Conversation, pk=conversation_id)
    if not can_watch(request.user, conversation):
        raise PermissionDenied
    message = get_object_or_404(Message, pk=message_id, conversation=conversation)
    item = attachments.stored_entry(message, index)
    if item is None:
        raise Http404("This attachment has not been downloaded yet.")
    return attachments.file_response(item)
