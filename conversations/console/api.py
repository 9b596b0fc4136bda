"""The console's JSON API (contract: docs/console-api.md). Session auth with CSRF; agents only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import assignment, attachments, leadfields
from conversations.console import actions, presence
from conversations.console import serializers as shapes
from conversations.console.permissions import IsAgent, IsSupervisor
from conversations.console.sidebar import sidebar_data
from conversations.models import Conversation
from conversations.realtime import label_payload, message_payload, note_payload
from talia.api import ApiError, BilingualSerializer
from talia.parsers import UploadParser

# The error answers every console operation may give besides 401/403 for someone not an agent
# (`{"error": {"code", "message", "fields"?, "localized"}}`, docs/console-api.md).
INVALID = OpenApiResponse(description="`invalid`: a malformed body; `fields` names each bad field.")
FORBIDDEN = OpenApiResponse(description="`forbidden`: not a conversation this agent may open.")
CONFLICT = OpenApiResponse(description="The action is not possible now; `code` says why.")


class MessageSerializer(BilingualSerializer):
    text = serializers.CharField(max_length=actions.MAX_TEXT, trim_whitespace=True)

    class Meta:
        ref_name = "ConsoleMessageRequest"  # not the web chat's Message


class AfterSerializer(BilingualSerializer):
    after = serializers.IntegerField(min_value=0, required=False, default=0)


class ConsoleView(APIView):
    permission_classes = [IsAgent]

    def conversation(self, request: Request, conversation_id: str, *, to_read: bool = False) -> Conversation:
        """The conversation; reading it needs watch rights, acting on it is checked by the service."""
        queryset = Conversation.objects.select_related("contact", "assigned_agent")
        conversation = get_object_or_404(queryset, pk=conversation_id)
        if to_read and not actions.can_watch(request.user, conversation):
            raise ApiError(403, "forbidden", "This conversation is not yours to see.")
        return conversation

    @staticmethod
    def act(action: Any, *args: Any) -> Any:
        try:
            return action(*args)
        except actions.ConsoleError as exc:
            raise ApiError(409, exc.code, exc.message, **exc.params) from None


class ClaimView(ConsoleView):
    @extend_schema(
        summary="Claim a queued conversation",
        request=None,
        responses={200: shapes.ConversationResponseSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.act(actions.do_claim, request.user, self.conversation(request, conversation_id))
        return Response({"conversation": actions.conversation_payload(conversation)})


class MessagesView(ConsoleView):
    @extend_schema(
        summary="Messages after a sequence number (catch-up)",
        parameters=[AfterSerializer],
        responses={200: shapes.MessagesResponseSerializer, 403: FORBIDDEN},
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = self.conversation(request, conversation_id, to_read=True)
        query = AfterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        messages = (
            conversation.messages.select_related("agent").filter(seq__gt=query.validated_data["after"]).order_by("seq")
        )
        return Response({"messages": [message_payload(m) for m in messages]})

    @extend_schema(
        summary="Send a message to the contact",
        request=MessageSerializer,
        responses={201: shapes.MessageResponseSerializer, 400: INVALID, 409: CONFLICT},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        body = MessageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        message = self.act(
            actions.do_send, request.user, self.conversation(request, conversation_id), body.validated_data["text"]
        )
        return Response({"message": message_payload(message)}, status=status.HTTP_201_CREATED)


class AttachmentSerializer(BilingualSerializer):
    """The small field beside the uploaded `file`."""

    caption = serializers.CharField(
        max_length=attachments.MAX_CAPTION, required=False, allow_blank=True, default="", trim_whitespace=True
    )


class AttachmentUploadSerializer(AttachmentSerializer):
    """The multipart body, as the schema shows it."""

    file = serializers.FileField()


class AttachmentsView(ConsoleView):
    """The agent sends a file (multipart: `file`, optional `caption`) to the contact."""

    parser_classes = [UploadParser]

    @extend_schema(
        summary="Send a file to the contact",
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={
            201: shapes.MessageResponseSerializer,
            400: INVALID,
            409: CONFLICT,
            413: OpenApiResponse(description="`file_too_large`."),
            415: OpenApiResponse(description="`unsupported_file_type`."),
        },
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        body = AttachmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = self.conversation(request, conversation_id)
        try:
            message = self.act(
                actions.do_send_file,
                request.user,
                conversation,
                request.FILES.get("file"),
                body.validated_data["caption"],
            )
        except attachments.AttachmentError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        return Response({"message": message_payload(message)}, status=status.HTTP_201_CREATED)


class CloseView(ConsoleView):
    @extend_schema(
        summary="Close the conversation",
        request=None,
        responses={200: shapes.ConversationResponseSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.act(actions.do_close, request.user, self.conversation(request, conversation_id))
        return Response({"conversation": actions.conversation_payload(conversation)})


class EndAnswerSerializer(BilingualSerializer):
    accept = serializers.BooleanField()


class EndRequestView(ConsoleView):
    @extend_schema(
        summary="Accept or decline the contact's request to end the chat",
        request=EndAnswerSerializer,
        responses={200: shapes.ConversationResponseSerializer, 400: INVALID, 409: CONFLICT},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        body = EndAnswerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = self.act(
            actions.do_answer_end,
            request.user,
            self.conversation(request, conversation_id),
            body.validated_data["accept"],
        )
        return Response({"conversation": actions.conversation_payload(conversation)})


class TakeOverView(ConsoleView):
    @extend_schema(
        summary="Take a conversation over from the assistant",
        request=None,
        responses={200: shapes.ConversationResponseSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.act(actions.do_take_over, request.user, self.conversation(request, conversation_id))
        return Response({"conversation": actions.conversation_payload(conversation)})


class LabelsSerializer(BilingualSerializer):
    labels = serializers.ListField(
        child=serializers.IntegerField(min_value=1), max_length=50, help_text="The ids of every label it should have."
    )


class LabelsView(ConsoleView):
    @extend_schema(
        summary="Set the conversation's labels",
        request=LabelsSerializer,
        responses={200: shapes.LabelsResponseSerializer, 400: INVALID, 403: FORBIDDEN, 409: CONFLICT},
    )
    def put(self, request: Request, conversation_id: str) -> Response:
        body = LabelsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = self.conversation(request, conversation_id, to_read=True)
        labels = self.act(actions.do_set_labels, request.user, conversation, body.validated_data["labels"])
        return Response({"labels": [label_payload(label) for label in labels]})


class ContactSerializer(BilingualSerializer):
    """The lead fields an agent edits in the sidebar; each sent one is checked by the lead writer's rules."""

    full_name = serializers.CharField(max_length=leadfields.MAX_NAME_LENGTH, required=False)
    email = serializers.CharField(max_length=254, required=False)
    phone = serializers.CharField(max_length=40, required=False)
    company = serializers.CharField(max_length=leadfields.MAX_NAME_LENGTH, required=False)

    MESSAGES = {
        "full_name": gettext_lazy("Enter the person's name (letters, at least two characters)."),
        "email": gettext_lazy("Enter a valid email address."),
        "phone": gettext_lazy("Enter a valid phone number, with the country code (like +34 600 123 456)."),
        "company": gettext_lazy("Enter the company's name."),
    }

    def validate(self, attrs: dict[str, str]) -> dict[str, str]:
        if not attrs:
            raise serializers.ValidationError(_("Send at least one of full_name, email, phone, company."))
        errors = {}
        for name, value in attrs.items():
            try:
                leadfields.normalise(name, value)
            except leadfields.LeadFieldError:
                errors[name] = [str(self.MESSAGES[name])]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ContactView(ConsoleView):
    """The sidebar's contact: GET what may change while the page is open (the page asks on `contact.changed`);
    PATCH stores what changed and answers with the old values."""

    @extend_schema(
        summary="The contact sidebar's live data: fields, consent and each panel's data",
        responses={200: shapes.SidebarResponseSerializer, 403: FORBIDDEN},
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = self.conversation(request, conversation_id, to_read=True)
        return Response(sidebar_data(request._request, conversation))

    @extend_schema(
        summary="Edit the contact's lead fields",
        request=ContactSerializer,
        responses={200: shapes.ContactEditResponseSerializer, 400: INVALID, 403: FORBIDDEN},
    )
    def patch(self, request: Request, conversation_id: str) -> Response:
        body = ContactSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = self.conversation(request, conversation_id, to_read=True)
        written = self.act(actions.do_edit_contact, request.user, conversation, body.validated_data)
        contact = written.contact
        return Response(
            {
                "contact": {"id": str(contact.id), "name": str(contact), **leadfields.lead_details(contact)},
                "changed": written.fields,
                "previous": written.previous,
                "lead_captured": written.lead_captured,
            }
        )


class HandBackView(ConsoleView):
    @extend_schema(
        summary="Hand the conversation back to the assistant",
        request=None,
        responses={200: shapes.ConversationNextResponseSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.act(actions.do_hand_back, request.user, self.conversation(request, conversation_id))
        # Shown on the queue the console goes back to: the agent no longer has this conversation's page.
        messages.success(request._request, _("Handed back to the assistant: it answers the visitor again."))
        return Response({"conversation": actions.conversation_payload(conversation), "next": reverse("console")})


class NoteSerializer(BilingualSerializer):
    text = serializers.CharField(max_length=actions.MAX_TEXT, trim_whitespace=True)


class NotesView(ConsoleView):
    """Internal notes and whispers: staff-only, never part of what the contact sees."""

    @extend_schema(
        summary="The conversation's internal notes, oldest first",
        responses={200: shapes.NotesResponseSerializer, 403: FORBIDDEN},
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = self.conversation(request, conversation_id, to_read=True)
        notes = conversation.notes.select_related("author", "recipient").order_by("created")
        return Response({"notes": [note_payload(note) for note in notes]})

    @extend_schema(
        summary="Add an internal note",
        request=NoteSerializer,
        responses={201: shapes.NoteResponseSerializer, 400: INVALID, 403: FORBIDDEN},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = self.conversation(request, conversation_id, to_read=True)
        note = self.act(actions.do_add_note, request.user, conversation, body.validated_data["text"])
        return Response({"note": note_payload(note)}, status=status.HTTP_201_CREATED)


class WhisperView(ConsoleView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        summary="Whisper to the agent handling the conversation (supervisors)",
        request=NoteSerializer,
        responses={201: shapes.NoteResponseSerializer, 400: INVALID, 403: FORBIDDEN, 409: CONFLICT},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = self.conversation(request, conversation_id)
        note = self.act(actions.do_whisper, request.user, conversation, body.validated_data["text"])
        return Response({"note": note_payload(note)}, status=status.HTTP_201_CREATED)


class TransferSerializer(BilingualSerializer):
    agent = serializers.IntegerField(min_value=1, required=False, help_text="The agent (user id) to give it to.")
    team = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="Or the team whose queue it goes to (the only choice for a conversation still waiting).",
    )
    note = serializers.CharField(max_length=actions.MAX_TEXT, trim_whitespace=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("agent" in attrs) == ("team" in attrs):
            raise serializers.ValidationError("Give exactly one of agent or team.")
        return attrs


class TransferView(ConsoleView):
    @extend_schema(
        summary="Transfer the conversation to another agent or a team's queue (a waiting one: to another queue)",
        description=(
            "The agent handling the conversation (any supervisor) gives it to an agent or a team's queue. A "
            "conversation still waiting moves to another team's queue (`team` only), by an agent who sees it "
            "in their queue or a supervisor: the brief and the time waited go with it, a `transferred` event "
            "records both teams."
        ),
        request=TransferSerializer,
        responses={
            200: shapes.ConversationNextResponseSerializer,
            400: INVALID,
            409: OpenApiResponse(
                description="`not_yours`, `not_with_agent`, `unknown_agent`, `same_agent`, `unknown_team`; for a "
                "waiting conversation `forbidden` (another team's queue), `queue_to_team_only`, `same_team`, "
                "`not_queued`."
            ),
        },
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        body = TransferSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        conversation = self.act(
            actions.do_transfer,
            request.user,
            self.conversation(request, conversation_id),
            data.get("agent"),
            data.get("team"),
            data["note"],
        )
        return Response({"conversation": actions.conversation_payload(conversation), "next": reverse("console")})


class PresenceSerializer(BilingualSerializer):
    state = serializers.ChoiceField(choices=["online", "away", "offline"])


class PresenceView(ConsoleView):
    """The agent's own state: online (auto-assignment on), away or offline (none)."""

    @extend_schema(summary="The agent's own presence", responses={200: shapes.PresenceResponseSerializer})
    def get(self, request: Request) -> Response:
        return Response({"state": presence.state_of(int(request.user.pk or 0))})

    @extend_schema(
        summary="Set the agent's own presence",
        request=PresenceSerializer,
        responses={200: shapes.PresenceResponseSerializer, 400: INVALID},
    )
    def put(self, request: Request) -> Response:
        body = PresenceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response({"state": self.act(actions.do_set_presence, request.user, body.validated_data["state"])})


# --- Auto-assignment offers ---------------------------------------------------------------------------------


class OffersView(ConsoleView):
    """The agent's open auto-assignment offers (a console that (re)connects shows their prompts)."""

    @extend_schema(summary="My open auto-assignment offers", responses={200: shapes.OffersResponseSerializer})
    def get(self, request: Request) -> Response:
        return Response({"offers": assignment.pending_offers(request.user)})


class OfferAcceptView(ConsoleView):
    @extend_schema(
        summary="Accept an auto-assignment offer (claims the conversation)",
        request=None,
        responses={200: shapes.ConversationNextResponseSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, offer_id: int) -> Response:
        conversation = self.act(actions.do_accept_offer, request.user, offer_id)
        return Response(
            {
                "conversation": actions.conversation_payload(conversation),
                "next": reverse("console-conversation", args=[conversation.pk]),
            }
        )


class OfferDeclineView(ConsoleView):
    @extend_schema(
        summary="Decline an auto-assignment offer (it goes to the next agent)",
        request=None,
        responses={200: shapes.OfferDeclinedResponseSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, offer_id: int) -> Response:
        self.act(actions.do_decline_offer, request.user, offer_id)
        return Response({"declined": True})


# --- Reassign from the monitor (supervisors) ----------------------------------------------------------------


class ReassignSerializer(TransferSerializer):
    """A transfer's fields, the note optional: a transfer without one records a default note."""

    note = serializers.CharField(
        max_length=actions.MAX_TEXT, required=False, allow_blank=True, default="", trim_whitespace=True
    )


class ReassignView(ConsoleView):
    """A supervisor gives a waiting conversation to an agent or another team's queue, or one an agent handles to
    another agent or team."""

    permission_classes = [IsSupervisor]

    @extend_schema(
        summary="Reassign a conversation (supervisors)",
        request=ReassignSerializer,
        responses={200: shapes.ConversationResponseSerializer, 400: INVALID, 409: CONFLICT},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        body = ReassignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        conversation = self.act(
            actions.do_reassign,
            request.user,
            self.conversation(request, conversation_id),
            data.get("agent"),
            data.get("team"),
            data["note"],
        )
        return Response({"conversation": actions.conversation_payload(conversation)})
