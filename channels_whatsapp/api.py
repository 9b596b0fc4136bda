"""The WhatsApp conversation API for integrators (agents and staff, signed-in session, JSON, paginated).

- GET /api/v1/whatsapp/conversations: contact, number, last message, status, events found, and when
  the 24-hour reply window closes.
- GET /api/v1/whatsapp/conversations/{id}/messages: oldest first.
- POST /api/v1/whatsapp/process-conversations: the leads' whole-conversation analysis, now, for every
  WhatsApp conversation with messages it has not read; returns the events created and messages read.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Count, F, OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_whatsapp.services import CHANNEL, REPLY_WINDOW
from conversations.console.permissions import IsAgent
from conversations.models import ContactIdentity, Conversation, Direction, Message

logger = logging.getLogger("talia.whatsapp")


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _last(field: str) -> Subquery:
    return Subquery(Message.objects.filter(conversation=OuterRef("pk")).order_by("-seq").values(field)[:1])


def conversation_row(conversation: Any) -> dict[str, Any]:
    contact = conversation.contact
    return {
        "id": str(conversation.pk),
        "status": conversation.status,
        "contact": {"id": str(contact.pk), "name": contact.full_name or contact.display_name},
        "number": f"+{conversation.wa_id}" if conversation.wa_id else "",
        "profile_name": contact.display_name,
        "opened_at": conversation.opened_at.isoformat(),
        "last_message_at": conversation.last_message_at.isoformat() if conversation.last_message_at else None,
        "last_message": {"text": conversation.last_text, "sender": conversation.last_sender}
        if conversation.last_sender
        else None,
        "messages": conversation.last_seq,
        "events_found": conversation.events_found,
        # WhatsApp's 24-hour window: free-form replies until then, templates after.
        "reply_window_closes_at": (conversation.last_inbound_at + REPLY_WINDOW).isoformat()
        if conversation.last_inbound_at
        else None,
    }


def message_row(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.pk),
        "seq": message.seq,
        "direction": message.direction,
        "sender": message.sender,
        "text": message.text,
        "content_type": message.content_type,
        "metadata": message.metadata,
        "external_id": message.external_id,
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "created": message.created.isoformat(),
    }


# The answers' shapes, for /api/schema/ (docs/console-api.md, "API reference").
def page_of(name: str, item: serializers.Serializer) -> serializers.Serializer:
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.CharField(allow_null=True),
            "previous": serializers.CharField(allow_null=True),
            "results": item,
        },
    )


CONVERSATIONS_PAGE = page_of(
    "WhatsAppConversationPage",
    inline_serializer(
        "WhatsAppConversation",
        {
            "id": serializers.UUIDField(),
            "status": serializers.CharField(),
            "contact": inline_serializer(
                "WhatsAppContact", {"id": serializers.UUIDField(), "name": serializers.CharField()}
            ),
            "number": serializers.CharField(help_text="E.164, or empty when unknown."),
            "profile_name": serializers.CharField(),
            "opened_at": serializers.DateTimeField(),
            "last_message_at": serializers.DateTimeField(allow_null=True),
            "last_message": inline_serializer(
                "WhatsAppLastMessage",
                {"text": serializers.CharField(), "sender": serializers.CharField()},
                allow_null=True,
            ),
            "messages": serializers.IntegerField(),
            "events_found": serializers.IntegerField(),
            "reply_window_closes_at": serializers.DateTimeField(allow_null=True),
        },
        many=True,
    ),
)
MESSAGES_PAGE = page_of(
    "WhatsAppMessagePage",
    inline_serializer(
        "WhatsAppMessage",
        {
            "id": serializers.UUIDField(),
            "seq": serializers.IntegerField(),
            "direction": serializers.CharField(),
            "sender": serializers.CharField(),
            "text": serializers.CharField(),
            "content_type": serializers.CharField(),
            "metadata": serializers.DictField(),
            "external_id": serializers.CharField(),
            "delivery_status": serializers.CharField(),
            "delivery_error": serializers.CharField(),
            "created": serializers.DateTimeField(),
        },
        many=True,
    ),
)
PROCESSED = inline_serializer(
    "WhatsAppProcessed",
    {
        "events_created": serializers.ListField(child=serializers.CharField()),
        "messages_processed": serializers.IntegerField(),
        "conversations": serializers.ListField(
            child=serializers.DictField(), help_text="What the analysis found in each (as analyze's `analysed`)."
        ),
        "failed": serializers.ListField(child=serializers.UUIDField()),
    },
)
PAGE_PARAMETERS = [OpenApiParameter("page", int), OpenApiParameter("page_size", int, description="Up to 200.")]


class ConversationsView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(
        summary="WhatsApp conversations, latest first (paginated)",
        parameters=PAGE_PARAMETERS,
        responses={200: CONVERSATIONS_PAGE},
    )
    def get(self, request: Request) -> Response:
        conversations = (
            Conversation.objects.filter(channel=CHANNEL)
            .select_related("contact")
            .annotate(
                last_text=_last("text"),
                last_sender=_last("sender"),
                # Meetings found in it (leads' ScheduledEvent, related_name "meetings").
                events_found=Count("meetings", distinct=True),
                wa_id=Subquery(
                    ContactIdentity.objects.filter(contact=OuterRef("contact"), channel=CHANNEL).values("value")[:1]
                ),
                last_inbound_at=Subquery(
                    Message.objects.filter(
                        conversation__contact=OuterRef("contact"), channel=CHANNEL, direction=Direction.INBOUND
                    )
                    .order_by("-created")
                    .values("created")[:1]
                ),
            )
            .order_by(F("last_message_at").desc(nulls_last=True), "-opened_at")
        )
        pages = Pages()
        page = pages.paginate_queryset(conversations, request, view=self) or []
        return pages.get_paginated_response([conversation_row(c) for c in page])


class MessagesView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(
        summary="One WhatsApp conversation's messages, oldest first (paginated)",
        parameters=PAGE_PARAMETERS,
        responses={200: MESSAGES_PAGE},
    )
    def get(self, request: Request, pk: str) -> Response:
        conversation = get_object_or_404(Conversation, pk=pk, channel=CHANNEL)
        pages = Pages()
        page = pages.paginate_queryset(conversation.messages.order_by("seq"), request, view=self) or []
        return pages.get_paginated_response([message_row(m) for m in page])


class ProcessConversationsView(APIView):
    permission_classes = [IsAgent]

    @extend_schema(
        summary="Analyse the WhatsApp conversations now: meetings found, messages read",
        request=None,
        responses={200: PROCESSED},
    )
    def post(self, request: Request) -> Response:
        # The one import of the leads app: its analysis is what this endpoint runs.
        from leads import analysis

        unread = (
            Conversation.objects.filter(channel=CHANNEL)
            .select_related("contact")
            .filter(Q(analysis__isnull=True, last_seq__gt=0) | Q(last_seq__gt=F("analysis__analysed_seq")))
            .annotate(read_up_to=F("analysis__analysed_seq"))
            .order_by("last_message_at")
        )
        events: list[str] = []
        processed = 0
        conversations = []
        failed = []
        for conversation in unread[: analysis.BATCH]:
            try:
                outcome = analysis.analyse(conversation)
            except Exception:
                # One conversation the analysis cannot read does not stop the others (as the periodic run).
                logger.exception("Analysis of WhatsApp conversation %s failed", conversation.pk)
                failed.append(str(conversation.pk))
                continue
            events.extend(outcome.events_created)
            processed += conversation.last_seq - (conversation.read_up_to or 0)
            conversations.append(outcome.as_dict())
        return Response(
            {
                "events_created": events,
                "messages_processed": processed,
                "conversations": conversations,
                "failed": failed,
            },
        )
