"""The calls API for agents and staff (signed-in session, JSON, paginated).

- GET /api/voice/calls: newest first; status, times, duration, contact, conversation, recording (its
  state; `play_url` only for staff, and only once it is stored).
- GET /api/voice/calls/{call_sid}: the same, with the transcript (speaker caller|assistant|agent).
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_voice import services
from channels_voice.models import RecordingState, VoiceCall
from conversations.console.permissions import IsAgent, is_supervisor


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _time(value: Any) -> str | None:
    return value.isoformat() if value else None


def recording_row(call: VoiceCall, staff: bool) -> dict[str, Any] | None:
    recording = call.recording
    if recording is None:
        return None
    playable = staff and recording.state == RecordingState.STORED
    return {
        "state": recording.state,
        "duration_s": recording.duration_s,
        "play_url": reverse("voice:play-recording", args=[recording.recording_sid]) if playable else None,
    }


def call_row(call: VoiceCall, staff: bool = False) -> dict[str, Any]:
    conversation = call.conversation
    contact = conversation.contact if conversation is not None else None
    return {
        "call_sid": call.call_sid,
        "from": call.from_number,
        "to": call.to_number,
        "direction": call.direction,
        "status": call.status,
        "mode": call.mode,
        "locale": call.locale,
        "started_at": _time(call.started_at),
        "answered_at": _time(call.answered_at),
        "ended_at": _time(call.ended_at),
        "duration_s": call.duration_s,
        "conversation": {"id": str(conversation.pk), "status": conversation.status} if conversation else None,
        "contact": {
            "id": str(contact.pk),
            "name": contact.full_name or contact.display_name,
            "email": contact.email,
            "phone": contact.phone,
            "company": contact.company,
        }
        if contact is not None
        else None,
        "recording": recording_row(call, staff),
    }


# The answers' shapes, for /api/schema/ (docs/console-api.md, "API reference").
class CallConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()

    class Meta:
        ref_name = "VoiceCallConversation"


class CallContactSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    company = serializers.CharField()

    class Meta:
        ref_name = "VoiceCallContact"


class RecordingSerializer(serializers.Serializer):
    state = serializers.CharField()
    duration_s = serializers.IntegerField(allow_null=True)
    play_url = serializers.CharField(allow_null=True, help_text="Staff only, once the recording is stored.")

    class Meta:
        ref_name = "VoiceCallRecording"


class CallSerializer(serializers.Serializer):
    call_sid = serializers.CharField()
    to = serializers.CharField()
    direction = serializers.CharField()
    status = serializers.CharField()
    mode = serializers.CharField()
    locale = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    answered_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.IntegerField(allow_null=True)
    conversation = CallConversationSerializer(allow_null=True)
    contact = CallContactSerializer(allow_null=True)
    recording = RecordingSerializer(allow_null=True)

    def get_fields(self) -> dict[str, Any]:
        return {"from": serializers.CharField(), **super().get_fields()}  # `from` is a Python keyword

    class Meta:
        ref_name = "VoiceCall"


class TranscriptLineSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    speaker = serializers.ChoiceField(choices=["caller", "assistant", "agent"])
    text = serializers.CharField()
    time = serializers.DateTimeField()


class CallWithTranscriptSerializer(CallSerializer):
    transcript = TranscriptLineSerializer(many=True)

    class Meta:
        ref_name = "VoiceCallWithTranscript"


class CallPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = CallSerializer(many=True)


PAGE_PARAMETERS = [OpenApiParameter("page", int), OpenApiParameter("page_size", int, description="Up to 200.")]


def _calls() -> Any:
    return (
        VoiceCall.objects.select_related("conversation__contact")
        .prefetch_related("recordings")
        .order_by("-started_at", "-pk")
    )


class CallsView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(
        operation_id="api_voice_calls_list",  # a list, not the single call's retrieve
        summary="Phone calls, newest first (paginated)",
        parameters=PAGE_PARAMETERS,
        responses={200: CallPageSerializer},
    )
    def get(self, request: Request) -> Response:
        pages = Pages()
        page = pages.paginate_queryset(_calls(), request, view=self)
        return pages.get_paginated_response([call_row(call, is_supervisor(request.user)) for call in page or []])


class CallView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(summary="One phone call with its transcript", responses={200: CallWithTranscriptSerializer})
    def get(self, request: Request, call_sid: str) -> Response:
        call = get_object_or_404(_calls(), call_sid=call_sid)
        return Response({**call_row(call, is_supervisor(request.user)), "transcript": services.transcript(call)})
