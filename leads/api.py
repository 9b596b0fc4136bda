"""`POST /api/v1/conversations/analyze` (staff): run the conversation analysis now and see what it found."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
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


class AnalyzeView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(summary="Analyse conversations now: meetings, insight and lead data", request=AnalyzeSerializer)
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
