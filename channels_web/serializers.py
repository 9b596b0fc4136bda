"""Request validation and response shapes of the web chat API (see docs/webchat-api.md)."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from channels_web.files import with_urls
from channels_web.services import MAX_CONTENT, MAX_PAGE, MAX_PAGE_SIZE, PAGE_SIZE, SESSION_ID
from conversations.attachments import MAX_CAPTION
from conversations.inbox import normalise_locale
from conversations.models import ConversationRating, Message
from conversations.realtime import message_payload

SESSION_ID_HELP = "A client-made opaque id: 8 to 128 characters from A-Z, a-z, 0-9, _ and -."


class SessionIdField(serializers.RegexField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", SESSION_ID_HELP)
        super().__init__(SESSION_ID, error_messages={"invalid": SESSION_ID_HELP}, **kwargs)


class LocaleField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            required=False, allow_blank=True, max_length=16, help_text="es or en (es-ES, en-GB… accepted).", **kwargs
        )

    def to_internal_value(self, data: Any) -> str:
        """The two-letter locale, or "" when none was given."""
        value = super().to_internal_value(data)
        if not value:
            return ""
        locale = normalise_locale(value)
        if locale is None:
            raise serializers.ValidationError("Use es or en.")
        return locale


class SessionSerializer(serializers.Serializer):
    session_id = SessionIdField()


class MessageFieldsSerializer(serializers.Serializer):
    """What a visitor's message carries, checked the same way on the REST API and the socket."""

    content = serializers.CharField(max_length=MAX_CONTENT, trim_whitespace=True)
    client_message_id = serializers.RegexField(
        SESSION_ID,
        required=False,
        allow_blank=True,
        help_text="Optional id making a retried message idempotent (same rules as session_id).",
    )
    page = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Optional http(s) address of the page the visitor writes from; shown to agents without its "
        "query and fragment.",
    )

    def validate_page(self, value: str) -> str:
        if value and not re.match(r"^https?://[^\s]+$", value):
            raise serializers.ValidationError("page must be an http:// or https:// address.")
        return re.split(r"[?#]", value, maxsplit=1)[0][:MAX_PAGE]


class AttachmentFieldsSerializer(SessionSerializer):
    """The small fields beside the uploaded `file` (multipart) of POST /api/webchat/attachments."""

    caption = serializers.CharField(max_length=MAX_CAPTION, required=False, allow_blank=True, default="")
    client_message_id = serializers.RegexField(
        SESSION_ID,
        required=False,
        allow_blank=True,
        help_text="Optional id making a retried upload idempotent (same rules as session_id).",
    )
    locale = LocaleField()


class AttachmentResponseSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    status = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="True when client_message_id named an upload already stored.")
    message = serializers.DictField(help_text="The stored message, as in the history (attachments with `url`).")


class PostMessageSerializer(SessionSerializer, MessageFieldsSerializer):
    author = serializers.ChoiceField(choices=["user"], help_text='Always "user": the visitor.')
    locale = LocaleField()


class ResumeSerializer(serializers.Serializer):
    """A socket's `resume` frame: the seq of the last message it saw (the REST history's `after`)."""

    after = serializers.IntegerField(min_value=0, required=False, default=0)


class HistoryQuerySerializer(SessionSerializer):
    after = serializers.IntegerField(min_value=0, required=False, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False, default=PAGE_SIZE)


class CloseSerializer(SessionSerializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ConsentSerializer(SessionSerializer):
    granted = serializers.BooleanField()


class RatingSerializer(SessionSerializer):
    conversation_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="The conversation rated; the session's latest when omitted."
    )
    score = serializers.IntegerField(
        min_value=ConversationRating.MIN_SCORE,
        max_value=ConversationRating.MAX_SCORE,
        help_text="1 (bad) to 5 (great).",
    )
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=ConversationRating.MAX_COMMENT, default="", trim_whitespace=True
    )


class RatingResponseSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    score = serializers.IntegerField()
    comment = serializers.CharField(allow_blank=True)
    updated = serializers.BooleanField(help_text="True when this rating replaced an earlier one.")


class TranscriptSerializer(SessionSerializer):
    conversation_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="The conversation to send; the session's latest when omitted."
    )
    email = serializers.EmailField(
        required=False,
        allow_blank=True,
        max_length=254,
        default="",
        help_text="Where to send it; the contact's known address when omitted.",
    )


class TranscriptResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["queued", "already_queued"],
        help_text="already_queued: the same transcript was just queued for this address (nothing sent twice).",
    )


class ConfigQuerySerializer(serializers.Serializer):
    locale = LocaleField()


class DetailsSerializer(SessionSerializer):
    purpose = serializers.ChoiceField(
        choices=["prechat", "callback"],
        help_text="prechat: the form before the chat; callback: an email or phone left while the team is away.",
    )
    locale = LocaleField()
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")


class DetailsResponseSerializer(serializers.Serializer):
    full_name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()


class CitationSerializer(serializers.Serializer):
    url = serializers.URLField()
    title = serializers.CharField()


class AttachmentSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    content_type = serializers.CharField()
    stored = serializers.BooleanField()
    name = serializers.CharField(required=False)
    size = serializers.IntegerField(required=False)
    url = serializers.CharField(required=False, help_text="A signed download path on TalIA's origin, short-lived.")


class MessageSerializer(serializers.Serializer):
    """The public message shape, shared with the socket's `message.new` (no internal metadata)."""

    id = serializers.UUIDField()
    conversation_id = serializers.UUIDField()
    seq = serializers.IntegerField()
    direction = serializers.CharField()
    sender = serializers.ChoiceField(choices=["contact", "assistant", "agent", "system"])
    agent_name = serializers.CharField(allow_null=True)
    text = serializers.CharField()
    content_type = serializers.CharField()
    created = serializers.DateTimeField()
    citations = CitationSerializer(many=True)
    attachments = AttachmentSerializer(many=True, required=False)

    def to_representation(self, instance: Message) -> dict[str, Any]:
        # Only the visitor's own history uses this shape: their files come with signed download paths.
        return dict(with_urls(message_payload(instance)))


class ReplyMetadataSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    last_message_id = serializers.UUIDField()
    assistant_message_id = serializers.UUIDField(allow_null=True)
    assistant_response_id = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=["bot", "queued", "agent", "closed", "pending"])
    citations = CitationSerializer(many=True, required=False)


class PostMessageResponseSerializer(serializers.Serializer):
    reply = serializers.CharField(allow_null=True)
    metadata = ReplyMetadataSerializer()


class MessagesPageSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    consent = serializers.ChoiceField(
        choices=["granted", "declined"],
        allow_null=True,
        help_text="The visitor's answer to the consent question, in the notice or the chat; null before one.",
    )
    messages = MessageSerializer(many=True)
    has_more = serializers.BooleanField()
    next_after = serializers.IntegerField(allow_null=True)


class HistorySerializer(serializers.Serializer):
    messages = MessageSerializer(many=True)
    consent = serializers.ChoiceField(
        choices=["granted", "declined"],
        allow_null=True,
        help_text="The visitor's answer to the consent question, in the notice or the chat; null before one.",
    )


class LeaveResponseSerializer(serializers.Serializer):
    recorded = serializers.BooleanField(
        help_text="False when nothing was recorded: an unknown session, or one already closed since its last activity."
    )


class CloseResponseSerializer(serializers.Serializer):
    closed = serializers.BooleanField()
    already_closed = serializers.BooleanField()
    end_requested = serializers.BooleanField(help_text="True when the agent was asked to end the chat first.")


class HandoffResponseSerializer(serializers.Serializer):
    status = serializers.CharField(allow_null=True)


class QueuedResponseSerializer(HandoffResponseSerializer):
    agents_online = serializers.IntegerField(
        allow_null=True, help_text="Agents with the console open now; null when unknown. Present while queued."
    )
    queue_timeout_s = serializers.IntegerField(
        allow_null=True, help_text="After this many seconds unclaimed the assistant takes over again (null: never)."
    )
    out_of_hours = serializers.BooleanField(help_text="Queued while the team is out of hours. Present while queued.")
    back_at = serializers.DateTimeField(
        allow_null=True, help_text="When the team is next at work (out of hours); null when open or never."
    )


class ConsentResponseSerializer(serializers.Serializer):
    consent = serializers.ChoiceField(choices=["granted", "declined"])
    version = serializers.CharField()


class ConfigSerializer(serializers.Serializer):
    require_consent = serializers.BooleanField()
    consent_version = serializers.CharField()
    consent_text = serializers.CharField(
        allow_blank=True, help_text="The business's consent notice in the requested locale; '' for the built-in one."
    )
    business_name = serializers.CharField()
    assistant_name = serializers.CharField(help_text="The assistant's own name from the profile; '' when unnamed.")
    open_now = serializers.BooleanField(help_text="Whether the team is within its business hours now.")
    next_opening = serializers.DateTimeField(
        allow_null=True, help_text="When the team is next at work (now when open); null when never."
    )
    time_zone = serializers.CharField(help_text="The business's time zone, to show times as the team counts them.")
    greeting = serializers.CharField(help_text="The business's greeting in the asked locale; '' for the built-in one.")
    reply_minutes = serializers.IntegerField(allow_null=True, help_text="Usual reply time during business hours.")
    offer_choice = serializers.BooleanField(help_text="Ask first whether to talk to the assistant or a person.")
    prechat_fields = serializers.ListField(child=serializers.CharField(), help_text="The pre-chat form's fields.")
    prechat_required = serializers.ListField(child=serializers.CharField(), help_text="Those that must be given.")
    token_required = serializers.BooleanField()
    csat = serializers.BooleanField(help_text="Whether the widget asks for a rating and offers the transcript.")
    whatsapp_url = serializers.URLField(
        allow_null=True, help_text="A wa.me link to the business's WhatsApp, offered by the widget; null when off."
    )
