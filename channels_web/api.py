"""The web chat REST API (contract: docs/webchat-api.md).

Async views (adrf), so waiting for the assistant's reply holds no thread; database work runs through
sync_to_async in the request's thread-sensitive context. Every request is checked for the public token,
its origin and the rate limits before anything else; every error is `{"error": {...}}`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adrf.views import APIView
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from channels_web import files, ratelimit, security, services
from channels_web.serializers import (
    AttachmentFieldsSerializer,
    AttachmentResponseSerializer,
    CloseResponseSerializer,
    CloseSerializer,
    ConfigQuerySerializer,
    ConfigSerializer,
    ConsentResponseSerializer,
    ConsentSerializer,
    DetailsResponseSerializer,
    DetailsSerializer,
    HandoffResponseSerializer,
    HistoryQuerySerializer,
    HistorySerializer,
    LeaveResponseSerializer,
    MessageSerializer,
    MessagesPageSerializer,
    PostMessageResponseSerializer,
    PostMessageSerializer,
    QueuedResponseSerializer,
    RatingResponseSerializer,
    RatingSerializer,
    SessionIdField,
    SessionSerializer,
    TranscriptResponseSerializer,
    TranscriptSerializer,
)
from conversations import attachments, csat, inbox, profile
from conversations.handoff import queue_outlook
from conversations.leadfields import ConsentRequired
from conversations.models import AssistantRun, Contact, Conversation, ConversationStatus, HandoffRequest, Message
from conversations.realtime import MessagePayload, message_payload
from conversations.waiting import ReplyListener
from talia.api import ApiError
from talia.parsers import UploadParser

ERRORS = {
    400: OpenApiResponse(description="Invalid fields or malformed JSON."),
    401: OpenApiResponse(description="Missing or wrong widget token."),
    403: OpenApiResponse(description="Origin not allowed."),
    413: OpenApiResponse(description="Body larger than TALIA_JSON_MAX_BYTES."),
    429: OpenApiResponse(description="Rate limited; see Retry-After."),
}


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class WebchatView(APIView):
    """Token, origin and rate limits for every web chat endpoint (CORS headers: channels_web.security)."""

    authentication_classes: list[Any] = []  # visitors are anonymous; no CSRF dance for the widget
    permission_classes = [AllowAny]
    # A beacon (navigator.sendBeacon) cannot send headers: such an endpoint takes `?token=` too.
    token_in_query = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not security.origin_allowed(request.headers.get("Origin"), request.get_host()):
            raise ApiError(403, "origin_not_allowed", "This site may not use the chat: its origin is not allowed.")
        if request.method == "OPTIONS":
            return
        given = request.headers.get("X-TalIA-Token")
        if given is None and self.token_in_query:
            given = request.query_params.get("token")
        if not security.token_ok(given):
            raise ApiError(401, "invalid_token", "A valid widget token is required (X-TalIA-Token header).")
        wait = ratelimit.check_visitor(self._session_hint(request, kwargs), self.client_ip(request))
        if wait is not None:
            raise exceptions.Throttled(wait=wait)

    async def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Preflights from allowed origins are answered by the CORS middleware; this is a bare OPTIONS.
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _session_hint(request: Request, kwargs: dict[str, Any]) -> str | None:
        """The session id to rate-limit on, taken before validation (only when well formed)."""
        candidate = kwargs.get("session_id") or request.query_params.get("session_id")
        if candidate is None and isinstance(request.data, dict):
            candidate = request.data.get("session_id")
        return candidate if isinstance(candidate, str) and services.SESSION_ID.match(candidate) else None

    @staticmethod
    def client_ip(request: Request | HttpRequest) -> str:
        headers = {"x-forwarded-for": request.headers.get("X-Forwarded-For", "")}
        return security.client_ip(request.META.get("REMOTE_ADDR"), headers)

    def visitor(self, request: Request, session_id: str, locale: str | None = None) -> services.Visitor:
        return services.Visitor(
            session_id=session_id,
            ip=self.client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            origin=request.headers.get("Origin", ""),
            locale=locale,
        )


class MessagesView(WebchatView):
    # adrf runs initial() in one thread hop: the checks, the validation and the message stored all run
    # there (the message path's one hop for its database work), and the reply is then awaited on the loop.
    received: inbox.Received
    listener: ReplyListener

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            data = validated(PostMessageSerializer, request.data)
            visitor = self.visitor(request, data["session_id"], data.get("locale") or None)
            self.listener = ReplyListener(settings.TALIA_REPLY_WAIT_S)
            self.received = services.post_message(
                visitor,
                data["content"],
                data.get("client_message_id", ""),
                data.get("page", ""),
                on_stored=self.listener.on_stored,
            )

    @extend_schema(
        summary="Send the visitor's message and get the assistant's reply",
        request=PostMessageSerializer,
        responses={
            200: PostMessageResponseSerializer,
            202: OpenApiResponse(PostMessageResponseSerializer, description="Stored; the reply comes on the socket."),
            **ERRORS,
        },
    )
    async def post(self, request: Request) -> Response:
        conversation, message = self.received.conversation, self.received.message
        if conversation.status != ConversationStatus.BOT:
            return Response(self._body(None, conversation, message, conversation.status))
        reply = await self.listener.reply(str(conversation.id), conversation.group_name, message.seq)
        if reply is None:
            return Response(self._body(None, conversation, message, "pending"), status=status.HTTP_202_ACCEPTED)
        # The conversation's status once the reply was stored and, when the assistant answered, its model
        # response's id: as the reply's push said them, else (the database answered) one query through the
        # run that stored the reply.
        if "status" in (pushed := self.listener.pushed):
            return Response(self._body(reply, conversation, message, pushed["status"], pushed.get("response_id", "")))
        found = await (
            AssistantRun.objects.filter(reply_message_id=UUID(reply["id"]))
            .values_list("conversation__status", "response_id")
            .afirst()
        )
        if found is None:  # an agent's reply
            current = await Conversation.objects.filter(pk=conversation.pk).values_list("status", flat=True).afirst()
            found = (current or conversation.status, "")
        return Response(self._body(reply, conversation, message, *found))

    @staticmethod
    def _body(
        reply: MessagePayload | None,
        conversation: Conversation,
        message: Message,
        status_: str,
        response_id: str = "",
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "conversation_id": str(conversation.id),
            "last_message_id": str(message.id),
            "assistant_message_id": reply["id"] if reply else None,
            "status": status_,
        }
        if reply is not None:
            if response_id:
                metadata["assistant_response_id"] = response_id
            metadata["citations"] = reply["citations"]
        return {"reply": reply["text"] if reply else None, "metadata": metadata}

    @extend_schema(
        summary="The latest conversation's messages, oldest first, paginated by seq",
        parameters=[HistoryQuerySerializer],
        responses={200: MessagesPageSerializer, **ERRORS},
    )
    async def get(self, request: Request) -> Response:
        query = validated(HistoryQuerySerializer, request.query_params)
        conversation, messages, has_more = await sync_to_async(services.messages_page)(
            query["session_id"], query["after"], query["limit"]
        )
        return Response(
            {
                "conversation_id": str(conversation.id) if conversation else None,
                "status": conversation.status if conversation else None,
                "consent": conversation.contact.consent_state if conversation else None,
                "messages": MessageSerializer(messages, many=True).data,
                "has_more": has_more,
                "next_after": messages[-1].seq if messages and has_more else None,
            }
        )


class HistoryView(WebchatView):
    @extend_schema(
        summary="Every message of every conversation of the session, oldest first",
        parameters=[OpenApiParameter("session_id", str, OpenApiParameter.PATH, description="The widget's session id.")],
        responses={200: HistorySerializer, **ERRORS},
    )
    async def get(self, request: Request, session_id: str) -> Response:
        SessionIdField().run_validation(session_id)
        messages = await sync_to_async(services.full_history)(session_id)
        consent = await sync_to_async(services.consent_of)(session_id)
        return Response({"messages": MessageSerializer(messages, many=True).data, "consent": consent})


class CloseView(WebchatView):
    @extend_schema(
        summary="The visitor ends the chat (idempotent; asks the agent first when one has it)",
        request=CloseSerializer,
        responses={200: CloseResponseSerializer, **ERRORS},
    )
    async def post(self, request: Request) -> Response:
        data = validated(CloseSerializer, request.data)
        closing = await sync_to_async(services.close_session)(self.visitor(request, data["session_id"]), data["reason"])
        return Response(
            {"closed": closing.closed, "already_closed": closing.already_closed, "end_requested": closing.end_requested}
        )


class LeaveView(WebchatView):
    token_in_query = True

    @extend_schema(
        summary="The visitor left the page (the widget's beacon): records a session closure, nothing else",
        parameters=[
            OpenApiParameter("session_id", str, required=True),
            OpenApiParameter("token", str, required=False, description="The widget token, when one is configured."),
        ],
        request=None,
        responses={202: LeaveResponseSerializer, **ERRORS},
    )
    async def post(self, request: Request) -> Response:
        data = validated(SessionSerializer, {"session_id": request.query_params.get("session_id")})
        recorded = await sync_to_async(services.page_left)(data["session_id"])
        return Response({"recorded": recorded}, status=status.HTTP_202_ACCEPTED)


class HandoffView(WebchatView):
    @extend_schema(
        summary="The visitor asks for a person",
        request=SessionSerializer,
        responses={200: QueuedResponseSerializer, **ERRORS},
    )
    async def post(self, request: Request) -> Response:
        data = validated(SessionSerializer, request.data)
        conversation = await sync_to_async(services.request_person)(self.visitor(request, data["session_id"]))
        if conversation.status != ConversationStatus.QUEUED:
            return Response({"status": conversation.status})
        # Honest expectations: the widget says so when nobody is online to answer, or when the team is away.
        return Response({"status": conversation.status, **await sync_to_async(self._outlook)(conversation)})

    @staticmethod
    def _outlook(conversation: Conversation) -> dict[str, Any]:
        away = (
            HandoffRequest.objects.filter(conversation=conversation)
            .order_by("-created")
            .values_list("out_of_hours", flat=True)
            .first()
        )
        opening = profile.current().next_opening() if away else None
        return {**queue_outlook(), "out_of_hours": bool(away), "back_at": opening}


class HandoffCancelView(WebchatView):
    @extend_schema(
        summary="The visitor stops waiting for a person (back to the assistant; idempotent)",
        request=SessionSerializer,
        responses={200: HandoffResponseSerializer, **ERRORS},
    )
    async def post(self, request: Request) -> Response:
        data = validated(SessionSerializer, request.data)
        conversation = await sync_to_async(services.stop_waiting)(self.visitor(request, data["session_id"]))
        return Response({"status": conversation.status if conversation else None})


class ConsentView(WebchatView):
    @extend_schema(
        summary="Record the visitor's answer to the consent notice",
        request=ConsentSerializer,
        responses={200: ConsentResponseSerializer, **ERRORS},
    )
    async def post(self, request: Request) -> Response:
        data = validated(ConsentSerializer, request.data)
        contact = await sync_to_async(services.record_consent)(
            self.visitor(request, data["session_id"]), data["granted"]
        )
        return Response(
            {
                # The contact's one state: a yes given earlier (in the dialogue) stands against a later no.
                "consent": contact.consent_state,
                "version": contact.consent_text_version or settings.TALIA_CONSENT_VERSION,
            }
        )


class ConfigView(WebchatView):
    @extend_schema(
        summary="What the widget needs to know before the first message", responses={200: ConfigSerializer, **ERRORS}
    )
    async def get(self, request: Request) -> Response:
        locale = validated(ConfigQuerySerializer, request.query_params).get("locale") or settings.LANGUAGE_CODE[:2]
        business = await sync_to_async(profile.current, thread_sensitive=False)()
        open_now = business.is_open()
        return Response(
            {
                "require_consent": settings.TALIA_REQUIRE_CONSENT,
                "consent_version": business.consent_text_version,
                # The business's own notice in `locale`; "" for the widget's built-in one.
                "consent_text": business.consent_texts.get(locale, ""),
                "business_name": business.business_name,
                "assistant_name": business.assistant_name,
                "open_now": open_now,
                "next_opening": business.next_opening(),
                "time_zone": business.zone.key,
                "greeting": business.greetings.get(locale, ""),
                "reply_minutes": business.reply_minutes,
                "offer_choice": business.offer_choice,
                "prechat_fields": list(business.prechat_fields),
                "prechat_required": list(business.prechat_required),
                "token_required": bool(settings.TALIA_WEBCHAT_PUBLIC_TOKEN),
                "csat": settings.TALIA_WEBCHAT_CSAT,
                "whatsapp_url": (
                    f"https://wa.me/{settings.TALIA_WEBCHAT_WHATSAPP_NUMBER.lstrip('+')}"
                    if settings.TALIA_WEBCHAT_WHATSAPP_NUMBER and business.offer_whatsapp
                    else None
                ),
            }
        )


def not_found() -> ApiError:
    return ApiError(404, "conversation_not_found", "This session has no such conversation.")


class RatingView(WebchatView):
    @extend_schema(
        summary="The visitor rates their conversation once it has ended (1-5 and a comment; again replaces it)",
        request=RatingSerializer,
        responses={
            200: RatingResponseSerializer,
            403: OpenApiResponse(description="Origin not allowed, or ratings are off (TALIA_WEBCHAT_CSAT)."),
            404: OpenApiResponse(description="The session has no such conversation."),
            409: OpenApiResponse(description="The conversation has not ended yet."),
            **{code: error for code, error in ERRORS.items() if code != 403},
        },
    )
    async def post(self, request: Request) -> Response:
        if not settings.TALIA_WEBCHAT_CSAT:
            raise ApiError(403, "csat_disabled", "Ratings are turned off on this site.")
        data = validated(RatingSerializer, request.data)
        try:
            rated = await sync_to_async(services.rate)(
                data["session_id"], data.get("conversation_id"), data["score"], data["comment"]
            )
        except services.NoConversationError:
            raise not_found() from None
        except csat.NotEndedError:
            raise ApiError(409, "conversation_open", "The conversation can be rated once it has ended.") from None
        rating = rated.rating
        return Response(
            {
                "conversation_id": str(rating.conversation_id),
                "score": rating.score,
                "comment": rating.comment,
                "updated": rated.updated,
            }
        )


class TranscriptView(WebchatView):
    @extend_schema(
        summary="Email the visitor the transcript of their conversation (sent in the background)",
        request=TranscriptSerializer,
        responses={
            202: TranscriptResponseSerializer,
            200: OpenApiResponse(TranscriptResponseSerializer, description="Already queued just now: not sent again."),
            404: OpenApiResponse(description="The session has no such conversation."),
            422: OpenApiResponse(description="No email given and none known for the visitor."),
            **ERRORS,
        },
    )
    async def post(self, request: Request) -> Response:
        data = validated(TranscriptSerializer, request.data)
        wait = await sync_to_async(ratelimit.hit)("transcript", data["session_id"], services.TRANSCRIPT_LIMIT)
        if wait is not None:
            raise exceptions.Throttled(wait=wait)
        try:
            queued = await sync_to_async(services.email_transcript)(
                data["session_id"], data["email"], data.get("conversation_id")
            )
        except services.NoConversationError:
            raise not_found() from None
        except services.NoEmailError:
            raise ApiError(422, "email_required", "Tell us the email address to send the transcript to.") from None
        if queued:
            return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)
        return Response({"status": "already_queued"})


class AttachmentsView(WebchatView):
    """The visitor sends a file (multipart); it becomes their next message, like a text one."""

    parser_classes = [UploadParser]

    @extend_schema(
        summary="Send an image or PDF (multipart: session_id, file, optional caption and client_message_id)",
        request={"multipart/form-data": AttachmentFieldsSerializer},
        responses={
            201: AttachmentResponseSerializer,
            200: OpenApiResponse(AttachmentResponseSerializer, description="A retry of an upload already stored."),
            413: OpenApiResponse(description="The file is larger than TALIA_ATTACHMENT_MAX_BYTES (file_too_large)."),
            415: OpenApiResponse(
                description="Not a JPEG, PNG, WebP, GIF or PDF by its content (unsupported_file_type)."
            ),
            **{code: response for code, response in ERRORS.items() if code != 413},
        },
    )
    async def post(self, request: Request) -> Response:
        data = validated(AttachmentFieldsSerializer, request.data)
        wait = await sync_to_async(ratelimit.hit)(
            "attachment", data["session_id"], settings.TALIA_ATTACHMENT_RATE_PER_SESSION
        )
        if wait is not None:
            raise exceptions.Throttled(wait=wait)
        visitor = self.visitor(request, data["session_id"], data.get("locale") or None)
        try:
            received = await sync_to_async(files.post_attachment)(
                visitor, request.FILES.get("file"), data["caption"], data.get("client_message_id", "")
            )
        except attachments.AttachmentError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        except inbox.InboxError as exc:
            raise ApiError(400, "invalid", str(exc)) from None
        current = (
            await Conversation.objects.filter(pk=received.conversation.pk).values_list("status", flat=True).afirst()
        )
        return Response(
            {
                "conversation_id": str(received.conversation.pk),
                "status": current or received.conversation.status,
                "duplicate": received.duplicate,
                "message": files.with_urls(message_payload(received.message)),
            },
            status=status.HTTP_200_OK if received.duplicate else status.HTTP_201_CREATED,
        )


class DetailsView(WebchatView):
    @extend_schema(
        summary="The visitor leaves their name, email or phone (pre-chat form, or a callback out of hours)",
        request=DetailsSerializer,
        responses={
            200: DetailsResponseSerializer,
            409: OpenApiResponse(description="consent_required: the visitor has not consented to storing details."),
            **ERRORS,
        },
    )
    async def post(self, request: Request) -> Response:
        data = validated(DetailsSerializer, request.data)
        visitor = self.visitor(request, data["session_id"], data.get("locale") or None)
        values = {name: data[name] for name in ("full_name", "email", "phone")}
        try:
            contact = await sync_to_async(self._leave)(visitor, data["purpose"], values)
        except services.DetailsError as exc:
            raise serializers.ValidationError(exc.fields) from None
        except ConsentRequired:
            raise ApiError(
                409, "consent_required", "The visitor has not consented to storing contact details."
            ) from None
        return Response({"full_name": contact.full_name, "email": contact.email, "phone": contact.phone})

    @staticmethod
    def _leave(visitor: services.Visitor, purpose: str, values: dict[str, str]) -> Contact:
        with translation.override(visitor.locale or settings.LANGUAGE_CODE[:2]):
            return services.leave_details(visitor, purpose, values)
