"""The console's JSON API (contract: docs/console-api.md). Session auth with CSRF; agents only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import attachments, leadfields
from conversations.console import actions, presence
from conversations.console.permissions import IsAgent, IsSupervisor
from conversations.models import Conversation
from conversations.realtime import label_payload, message_payload, note_payload
from talia.api import ApiError
from talia.parsers import UploadParser


class MessageSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=actions.MAX_TEXT, trim_whitespace=True)


class AfterSerializer(serializers.Serializer):
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
            raise ApiError(409, exc.code, str(exc)) from None


class ClaimView(ConsoleView):
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.act(actions.do_claim, request.user, self.conversation(request, conversation_id))
        return Response({"conversation": actions.conversation_payload(conversation)})


class MessagesView(ConsoleView):
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = self.conversation(request, conversation_id, to_read=True)
        query = AfterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        messages = (
            conversation.messages.select_related("agent").filter(seq__gt=query.validated_data["after"]).order_by("seq")
        )
        return Response({"messages": [message_payload(m) for m in messages]})

    def post(self, request: Request, conversation_id: str) -> Response:
        body = MessageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        message = self.act(
            actions.do_send, request.user, self.conversation(request, conversation_id), body.validated_data["text"]
        )
        return Response({"message": message_payload(message)}, status=status.HTTP_201_CREATED)


class AttachmentSerializer(serializers.Serializer):
    """The small field beside the uploaded `file`."""

    caption = serializers.CharField(
        max_length=attachments.MAX_CAPTION, required=False, allow_blank=True, default="", trim_whitespace=True
    )


class AttachmentsView(ConsoleView):
    """The agent sends a file (multipart: `file`, optional `caption`) to the contact."""

    parser_classes = [UploadParser]

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
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.act(actions.do_close, request.user, self.conversation(request, conversation_id))
        return Response({"conversation": actions.conversation_payload(conversation)})


class EndAnswerSerializer(serializers.Serializer):
    accept = serializers.BooleanField()


class EndRequestView(ConsoleView):
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
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.act(actions.do_take_over, request.user, self.conversation(request, conversation_id))
        return Response({"conversation": actions.conversation_payload(conversation)})


class LabelsSerializer(serializers.Serializer):
    labels = serializers.ListField(
        child=serializers.IntegerField(min_value=1), max_length=50, help_text="The ids of every label it should have."
    )


class LabelsView(ConsoleView):
    def put(self, request: Request, conversation_id: str) -> Response:
        body = LabelsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = self.conversation(request, conversation_id, to_read=True)
        labels = self.act(actions.do_set_labels, request.user, conversation, body.validated_data["labels"])
        return Response({"labels": [label_payload(label) for label in labels]})


class ContactSerializer(serializers.Serializer):
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
    """The sidebar's contact fields: PATCH stores what changed and answers with the old values."""

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
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = self.act(actions.do_hand_back, request.user, self.conversation(request, conversation_id))
        # Shown on the queue the console goes back to: the agent no longer has this conversation's page.
        messages.success(request._request, _("Handed back to the assistant: it answers the visitor again."))
        return Response({"conversation": actions.conversation_payload(conversation), "next": reverse("console")})


class NoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=actions.MAX_TEXT, trim_whitespace=True)


class NotesView(ConsoleView):
    """Internal notes and whispers: staff-only, never part of what the contact sees."""

    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = self.conversation(request, conversation_id, to_read=True)
        notes = conversation.notes.select_related("author", "recipient").order_by("created")
        return Response({"notes": [note_payload(note) for note in notes]})

    def post(self, request: Request, conversation_id: str) -> Response:
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = self.conversation(request, conversation_id, to_read=True)
        note = self.act(actions.do_add_note, request.user, conversation, body.validated_data["text"])
        return Response({"note": note_payload(note)}, status=status.HTTP_201_CREATED)


class WhisperView(ConsoleView):
    permission_classes = [IsSupervisor]

    def post(self, request: Request, conversation_id: str) -> Response:
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = self.conversation(request, conversation_id)
        note = self.act(actions.do_whisper, request.user, conversation, body.validated_data["text"])
        return Response({"note": note_payload(note)}, status=status.HTTP_201_CREATED)


class TransferSerializer(serializers.Serializer):
    agent = serializers.IntegerField(min_value=1, required=False, help_text="The agent (user id) to give it to.")
    team = serializers.IntegerField(min_value=1, required=False, help_text="Or the team whose queue it goes to.")
    note = serializers.CharField(max_length=actions.MAX_TEXT, trim_whitespace=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("agent" in attrs) == ("team" in attrs):
            raise serializers.ValidationError("Give exactly one of agent or team.")
        return attrs


class TransferView(ConsoleView):
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


class PresenceSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["online", "away", "offline"])


class PresenceView(ConsoleView):
    """The agent's own state: online (auto-assignment on), away or offline (none)."""

    def get(self, request: Request) -> Response:
        return Response({"state": presence.state_of(int(request.user.pk or 0))})

    def put(self, request: Request) -> Response:
        body = PresenceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response({"state": self.act(actions.do_set_presence, request.user, body.validated_data["state"])})


# --- Reassign from the monitor (supervisors) ----------------------------------------------------------------


class ReassignSerializer(serializers.Serializer):
    agent = serializers.IntegerField(min_value=1, required=False, help_text="The agent (user id) to give it to.")
    team = serializers.IntegerField(
        min_value=1, required=False, help_text="Or the team whose queue it goes to (a conversation with an agent)."
    )
    note = serializers.CharField(
        max_length=actions.MAX_TEXT,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=True,
        help_text="For whoever gets it; a transfer without one records a default note.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("agent" in attrs) == ("team" in attrs):
            raise serializers.ValidationError("Give exactly one of agent or team.")
        return attrs


class ReassignResponseSerializer(serializers.Serializer):
    conversation = serializers.DictField(help_text="The conversation as it is now (id, status, agent, team…).")


class ReassignView(ConsoleView):
    """A supervisor gives a waiting conversation to an agent, or one an agent handles to another agent or team."""

    permission_classes = [IsSupervisor]

    @extend_schema(
        summary="Reassign a conversation (supervisors)",
        request=ReassignSerializer,
        responses={200: ReassignResponseSerializer},
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
