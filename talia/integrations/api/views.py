"""The integrator API's views: parse, call one service, answer (docs/api.md, services.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from conversations.models import Contact, Conversation, Event, Message
from leads.models import LeadCard, ScheduledEvent
from talia.integrations import envelopes
from talia.integrations.api import serializers as shapes
from talia.integrations.api import services
from talia.integrations.api.authentication import ApiTokenAuthentication
from talia.integrations.api.permissions import HasApiToken
from talia.integrations.models import ApiToken

INVALID = OpenApiResponse(description="`invalid`: a malformed body or query; `fields` names each bad one.")
NOT_FOUND = OpenApiResponse(description="`not_found`: no such object.")


class Pages(LimitOffsetPagination):
    """`?limit=&offset=` on every list; a malformed value is a 400, not a silent default."""

    default_limit = shapes.DEFAULT_LIMIT
    max_limit = shapes.MAX_LIMIT

    def get_limit(self, request: Request) -> int | None:
        return self._number(request, self.limit_query_param, 1, self.max_limit, self.default_limit)

    def get_offset(self, request: Request) -> int:
        return self._number(request, self.offset_query_param, 0, None, 0)

    @staticmethod
    def _number(request: Request, name: str, minimum: int, maximum: int | None, default: int) -> int:
        field = (
            serializers.IntegerField(min_value=minimum)
            if maximum is None
            else serializers.IntegerField(min_value=minimum, max_value=maximum)
        )
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            return int(field.run_validation(raw))
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({name: exc.detail}) from None


class ApiView(generics.GenericAPIView):
    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [HasApiToken]
    pagination_class = Pages

    @property
    def token(self) -> ApiToken:
        """The caller's token (HasApiToken let no request without one through)."""
        token = self.request.auth
        assert isinstance(token, ApiToken)
        return token

    def query(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        params = serializer_class(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return dict(params.validated_data)

    def audited(self, object_type: str, object_id: Any, action: str, summary: str = "") -> Any:
        return services.audited(self.token, self.request, object_type, object_id, action, summary)

    def body(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        data = self.request.data
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        body = serializer_class(data=data)
        body.is_valid(raise_exception=True)
        return dict(body.validated_data)


class ApiListView(ApiView, generics.ListAPIView):
    filter_serializer: type[serializers.Serializer]

    def get_queryset(self) -> QuerySet[Any]:
        return self.filtered(self.query(self.filter_serializer))

    def filtered(self, filters: dict[str, Any]) -> QuerySet[Any]:
        raise NotImplementedError


# --- Contacts ----------------------------------------------------------------------------------------


@extend_schema(
    summary="List contacts (search by name, email or phone; changed since)",
    parameters=[shapes.ContactFilterSerializer],
    responses={200: shapes.ApiContactSerializer(many=True), 400: INVALID},
)
class ContactList(ApiListView):
    serializer_class = shapes.ApiContactSerializer
    filter_serializer = shapes.ContactFilterSerializer

    def filtered(self, filters: dict[str, Any]) -> QuerySet[Contact]:
        contacts = Contact.objects.order_by("-updated", "pk")
        if search := filters.get("search"):
            contacts = contacts.filter(
                Q(full_name__icontains=search)
                | Q(display_name__icontains=search)
                | Q(email__icontains=search)
                | Q(phone__icontains=search)
            )
        if "updated_since" in filters:
            contacts = contacts.filter(updated__gte=filters["updated_since"])
        return contacts


class ContactDetail(ApiView):
    serializer_class = shapes.ApiContactSerializer

    @extend_schema(summary="A contact", responses={200: shapes.ApiContactSerializer, 404: NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        return Response(shapes.ApiContactSerializer(get_object_or_404(Contact, pk=pk)).data)

    @extend_schema(
        summary="Change a contact's details (name, email, phone, company, locale)",
        request=shapes.ApiContactUpdateSerializer,
        responses={200: shapes.ApiContactSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    def patch(self, request: Request, pk: str) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        values = self.body(shapes.ApiContactUpdateSerializer)
        with self.audited("contact", contact.pk, "update", f"fields: {', '.join(sorted(values))}"):
            services.update_contact(contact, values)
        return Response(shapes.ApiContactSerializer(contact).data)


class ContactExport(ApiView):
    serializer_class = shapes.ApiContactExportSerializer

    @extend_schema(
        summary="Export everything TalIA holds about a contact (GDPR access)",
        responses={200: shapes.ApiContactExportSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(services.export_contact(get_object_or_404(Contact, pk=pk)))


class ContactErase(ApiView):
    serializer_class = shapes.ApiEraseResultSerializer

    @extend_schema(
        summary="Erase a contact's personal data (GDPR erasure); conversation counts and times are kept",
        request=shapes.ApiEraseRequestSerializer,
        responses={200: shapes.ApiEraseResultSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    def post(self, request: Request, pk: str) -> Response:
        contact = get_object_or_404(Contact, pk=pk)
        body = self.body(shapes.ApiEraseRequestSerializer)
        with self.audited("contact", contact.pk, "erase", body["reason"]):
            erased = services.erase_contact(contact, by=self.token.prefix)
        contact.refresh_from_db()
        return Response({"contact": shapes.ApiContactSerializer(contact).data, "erased": erased})


# --- Conversations -----------------------------------------------------------------------------------


@extend_schema(
    summary="List conversations (filter by channel, status, contact, opening date)",
    parameters=[shapes.ConversationFilterSerializer],
    responses={200: shapes.ApiConversationSerializer(many=True), 400: INVALID},
)
class ConversationList(ApiListView):
    serializer_class = shapes.ApiConversationSerializer
    filter_serializer = shapes.ConversationFilterSerializer

    def filtered(self, filters: dict[str, Any]) -> QuerySet[Conversation]:
        conversations = Conversation.objects.order_by("-opened_at", "pk")
        for name, lookup in (
            ("channel", "channel"),
            ("status", "status"),
            ("contact", "contact_id"),
            ("created_from", "opened_at__gte"),
            ("created_to", "opened_at__lt"),
        ):
            if name in filters:
                conversations = conversations.filter(**{lookup: filters[name]})
        return conversations


class ConversationDetail(ApiView):
    serializer_class = shapes.ApiConversationSerializer

    @extend_schema(summary="A conversation", responses={200: shapes.ApiConversationSerializer, 404: NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        return Response(shapes.ApiConversationSerializer(get_object_or_404(Conversation, pk=pk)).data)


class ConversationMessages(ApiView):
    serializer_class = shapes.ApiMessagePageSerializer

    @extend_schema(
        summary="A conversation's messages, in order, a page at a time (`after_seq`, `limit`)",
        parameters=[shapes.MessagesQuerySerializer],
        responses={200: shapes.ApiMessagePageSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    def get(self, request: Request, pk: str) -> Response:
        conversation = get_object_or_404(Conversation, pk=pk)
        query = self.query(shapes.MessagesQuerySerializer)
        page = list(
            Message.objects.filter(conversation=conversation, seq__gt=query["after_seq"]).order_by("seq")[
                : query["limit"] + 1
            ]
        )
        more = len(page) > query["limit"]
        page = page[: query["limit"]]
        return Response(
            {
                "messages": shapes.ApiMessageSerializer(page, many=True).data,
                "next_after_seq": page[-1].seq if more else None,
            }
        )


# --- Leads and meetings ------------------------------------------------------------------------------


@extend_schema(
    summary="List lead cards (filter by stage, changed since)",
    parameters=[shapes.LeadFilterSerializer],
    responses={200: shapes.ApiLeadCardSerializer(many=True), 400: INVALID},
)
class LeadList(ApiListView):
    serializer_class = shapes.ApiLeadCardSerializer
    filter_serializer = shapes.LeadFilterSerializer

    def filtered(self, filters: dict[str, Any]) -> QuerySet[LeadCard]:
        cards = LeadCard.objects.order_by("-updated", "pk")
        if "stage" in filters:
            cards = cards.filter(stage=filters["stage"])
        if "updated_since" in filters:
            cards = cards.filter(updated__gte=filters["updated_since"])
        return cards


class LeadDetail(ApiView):
    serializer_class = shapes.ApiLeadCardSerializer

    @extend_schema(summary="A lead card", responses={200: shapes.ApiLeadCardSerializer, 404: NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(shapes.ApiLeadCardSerializer(get_object_or_404(LeadCard, pk=pk)).data)


class LeadMove(ApiView):
    serializer_class = shapes.ApiMoveResultSerializer

    @extend_schema(
        summary="Move a lead card to another stage, with a reason (recorded as a movement)",
        request=shapes.ApiMoveRequestSerializer,
        responses={
            200: shapes.ApiMoveResultSerializer,
            400: INVALID,
            404: NOT_FOUND,
            409: OpenApiResponse(description="`stage_refused`: only a person may close or reopen a lead."),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        card = get_object_or_404(LeadCard, pk=pk)
        body = self.body(shapes.ApiMoveRequestSerializer)
        with self.audited("lead_card", card.pk, "move", f"{card.stage} -> {body['stage']}"):
            movement = services.move_lead(card, body["stage"], body["reason"])
        card.refresh_from_db()
        return Response(
            {
                "card": shapes.ApiLeadCardSerializer(card).data,
                "moved": movement is not None,
                "movement": shapes.ApiLeadMovementSerializer(movement).data if movement else None,
            }
        )


@extend_schema(
    summary="List meetings (filter by start, status)",
    parameters=[shapes.MeetingFilterSerializer],
    responses={200: shapes.ApiMeetingSerializer(many=True), 400: INVALID},
)
class MeetingList(ApiListView):
    serializer_class = shapes.ApiMeetingSerializer
    filter_serializer = shapes.MeetingFilterSerializer

    def filtered(self, filters: dict[str, Any]) -> QuerySet[ScheduledEvent]:
        meetings = ScheduledEvent.objects.order_by("start", "pk")
        if "start_from" in filters:
            meetings = meetings.filter(start__gte=filters["start_from"])
        if "start_to" in filters:
            meetings = meetings.filter(start__lt=filters["start_to"])
        if "status" in filters:
            meetings = meetings.filter(status=filters["status"])
        return meetings


class MeetingDetail(ApiView):
    serializer_class = shapes.ApiMeetingSerializer

    @extend_schema(summary="A meeting", responses={200: shapes.ApiMeetingSerializer, 404: NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        return Response(shapes.ApiMeetingSerializer(get_object_or_404(ScheduledEvent, pk=pk)).data)


# --- Events and messages -----------------------------------------------------------------------------


class EventFeed(ApiView):
    serializer_class = shapes.ApiEventPageSerializer

    @extend_schema(
        summary="The event feed, by id ascending (`after` = the last id seen); each item an event envelope",
        parameters=[shapes.EventsQuerySerializer],
        responses={200: shapes.ApiEventPageSerializer, 400: INVALID},
    )
    def get(self, request: Request) -> Response:
        query = self.query(shapes.EventsQuerySerializer)
        # Ids are taken when a row is written, rows become visible when their transaction commits: an event
        # younger than the delay is held back, so a poller never passes a smaller id still being committed.
        settled = timezone.now() - timedelta(seconds=settings.TALIA_API_EVENTS_DELAY_S)
        rows = Event.objects.filter(pk__gt=query["after"], created__lte=settled)
        if "type" in query:
            rows = rows.filter(name=query["type"])
        if "conversation" in query:
            rows = rows.filter(conversation_id=query["conversation"])
        page = list(envelopes.with_channel(rows).order_by("pk")[: query["limit"]])
        items = envelopes.build(page, personal_data=self.token.personal_data)
        return Response({"events": [item.as_dict() for item in items], "next": page[-1].pk if page else query["after"]})


class SendMessage(ApiView):
    serializer_class = shapes.ApiMessageSerializer

    @extend_schema(
        summary="Send an agent's or system message into an open conversation, on its channel",
        request=shapes.ApiSendMessageSerializer,
        responses={
            201: shapes.ApiMessageSerializer,
            400: INVALID,
            404: NOT_FOUND,
            409: OpenApiResponse(description="`conversation_closed`: the conversation is closed."),
        },
    )
    def post(self, request: Request) -> Response:
        body = self.body(shapes.ApiSendMessageSerializer)
        agent = services.agent_for(body["agent_id"])
        conversation_id = body["conversation_id"]
        with self.audited("conversation", conversation_id, "send_message", f"sender: {body['sender']}"):
            message = services.send_message(conversation_id, body["text"], body["sender"], agent)
        return Response(shapes.ApiMessageSerializer(message).data, status=status.HTTP_201_CREATED)
