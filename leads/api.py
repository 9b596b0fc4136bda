"""`POST /api/v1/conversations/analyze` (staff): run the conversation analysis now and see what it found."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.console.permissions import IsSupervisor
from conversations.models import Conversation
from leads import analysis


class AnalyzeSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField(
        required=False, help_text="One conversation (analysed again even if nothing changed); else all pending."
    )


ANALYSED = inline_serializer(
    "AnalyzeResponse",
    {
        "analysed": inline_serializer(
            "Analysis",
            {
                "conversation_id": serializers.CharField(),
                "engine": serializers.CharField(),
                "meetings": inline_serializer(
                    "AnalysisMeeting",
                    {
                        "title": serializers.CharField(),
                        "start": serializers.DateTimeField(),
                        "message_id": serializers.UUIDField(),
                    },
                    many=True,
                ),
                "events_created": serializers.ListField(child=serializers.CharField()),
                "insight": inline_serializer(
                    "AnalysisInsight",
                    {
                        "intent": serializers.CharField(),
                        "topics": serializers.ListField(child=serializers.CharField()),
                        "sentiment": serializers.CharField(),
                        "next_step": serializers.CharField(),
                    },
                ),
                "lead_fields": serializers.DictField(help_text="The lead fields found, by name."),
            },
            many=True,
        )
    },
)


class AnalyzeView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        summary="Analyse conversations now: meetings, insight and lead data",
        request=AnalyzeSerializer,
        responses={200: ANALYSED},
    )
    def post(self, request: Request) -> Response:
        body = AnalyzeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation_id = body.validated_data.get("conversation_id")
        if conversation_id is not None:
            conversation = get_object_or_404(Conversation.objects.select_related("contact"), pk=conversation_id)
            outcomes = [analysis.analyse(conversation)]
        else:
            outcomes = analysis.analyse_pending()
        return Response({"analysed": [outcome.as_dict() for outcome in outcomes]})
