"""The integrator API's bodies and answers (docs/api.md); names start with `Api` in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from conversations.models import Contact, Conversation, ConversationStatus, Locale, Message
from leads.models import LeadCard, LeadMovement, ScheduledEvent
from leads.pipeline import StageError, check_stage
from talia.integrations.api.services import MAX_TEXT

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class StrictSerializer(serializers.Serializer):
    """A body that names an unknown field is refused (a typo is not silently ignored)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


# --- Answers -----------------------------------------------------------------------------------------


class ApiContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = [
            "id",
            "display_name",
            "full_name",
            "email",
            "phone",
            "company",
            "locale",
            "consent_given_at",
            "consent_declined_at",
            "consent_text_version",
            "created",
            "updated",
            "anonymised_at",
        ]
        read_only_fields = fields


class ApiConversationSerializer(serializers.ModelSerializer):
    contact_id = serializers.UUIDField(read_only=True)
    assigned_agent_id = serializers.IntegerField(read_only=True, allow_null=True)
    team_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "contact_id",
            "channel",
            "status",
            "assigned_agent_id",
            "team_id",
            "opened_at",
            "closed_at",
            "last_seq",
            "last_message_at",
            "created",
            "updated",
            "anonymised_at",
        ]
        read_only_fields = fields


class ApiMessageSerializer(serializers.ModelSerializer):
    conversation_id = serializers.UUIDField(read_only=True)
    agent_id = serializers.IntegerField(read_only=True, allow_null=True)
    # The same choice set as the console's and the web chat's messages: one `SenderEnum` in the schema.
    sender = serializers.ChoiceField(choices=["contact", "assistant", "agent", "system"], read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "seq",
            "channel",
            "direction",
            "sender",
            "agent_id",
            "text",
            "content_type",
            "delivery_status",
            "created",
        ]
        read_only_fields = fields


class ApiLeadCardSerializer(serializers.ModelSerializer):
    contact_id = serializers.UUIDField(read_only=True)
    source_conversation_id = serializers.UUIDField(read_only=True, allow_null=True)
    owner_id = serializers.IntegerField(read_only=True, allow_null=True)
    value = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True, allow_null=True)

    class Meta:
        model = LeadCard
        fields = [
            "id",
            "contact_id",
            "source_conversation_id",
            "channel",
            "stage",
            "value",
            "owner_id",
            "summary",
            "notes",
            "created",
            "updated",
        ]
        read_only_fields = fields


class ApiLeadMovementSerializer(serializers.ModelSerializer):
    class Meta:
        model = LeadMovement
        fields = ["id", "from_stage", "to_stage", "moved_by", "reason", "created"]
        read_only_fields = fields


class ApiMeetingSerializer(serializers.ModelSerializer):
    contact_id = serializers.UUIDField(read_only=True)
    conversation_id = serializers.UUIDField(read_only=True, allow_null=True)
    attendees = serializers.ListField(child=serializers.JSONField(), read_only=True)
    created_by = serializers.CharField(read_only=True, help_text="Who booked it: assistant, agent, analysis, system.")

    class Meta:
        model = ScheduledEvent
        fields = [
            "id",
            "title",
            "start",
            "duration_minutes",
            "attendees",
            "notes",
            "status",
            "created_by",
            "contact_id",
            "conversation_id",
            "created",
        ]
        read_only_fields = fields


class ApiEnvelopeSerializer(serializers.Serializer):
    """The event envelope webhooks, Redis Streams and Kafka carry (talia.integrations.sinks.Envelope)."""

    id = serializers.IntegerField()
    type = serializers.CharField()
    version = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    conversation_id = serializers.UUIDField(allow_null=True)
    contact_id = serializers.UUIDField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    data = serializers.DictField(help_text="The event's payload (docs/events.md).")  # type: ignore[assignment]


class ApiEventPageSerializer(serializers.Serializer):
    events = ApiEnvelopeSerializer(many=True)
    next = serializers.IntegerField(help_text="Pass as `after` to read on; the same value when nothing was new.")


class ApiMessagePageSerializer(serializers.Serializer):
    messages = ApiMessageSerializer(many=True)
    next_after_seq = serializers.IntegerField(
        allow_null=True, help_text="Pass as `after_seq` for the next page; null when this page is the last."
    )


class ApiMoveResultSerializer(serializers.Serializer):
    card = ApiLeadCardSerializer()
    moved = serializers.BooleanField(help_text="False when the card was already in that stage.")
    movement = ApiLeadMovementSerializer(allow_null=True)


class ApiEraseResultSerializer(serializers.Serializer):
    contact = ApiContactSerializer()
    erased = serializers.DictField(child=serializers.IntegerField(), help_text="What was cleared, counted.")


class ApiContactExportSerializer(serializers.Serializer):
    exported_at = serializers.DateTimeField()
    contact = serializers.DictField(help_text="Every stored column of the contact.")
    identities = serializers.ListField(child=serializers.DictField())
    conversations = serializers.ListField(
        child=serializers.DictField(), help_text="Each conversation's columns and all its `messages`."
    )
    lead_card = serializers.DictField(allow_null=True, help_text="With its `movements`.")
    meetings = serializers.ListField(child=serializers.DictField())
    events = serializers.ListField(child=serializers.DictField())
    records = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()),
        help_text="Every other row about the contact (web sessions, calls, ratings, notes...), by table.",
    )


# --- Requests ----------------------------------------------------------------------------------------


class ApiContactUpdateSerializer(StrictSerializer):
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    company = serializers.CharField(max_length=200, required=False, allow_blank=True)
    locale = serializers.ChoiceField(choices=Locale.choices, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": ["Name at least one field to change."]})
        return attrs


class ApiEraseRequestSerializer(StrictSerializer):
    reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="Kept in the audit log."
    )


class ApiMoveRequestSerializer(StrictSerializer):
    stage = serializers.CharField(max_length=32)
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")

    def validate_stage(self, value: str) -> str:
        try:
            return check_stage(value)
        except StageError as exc:
            raise serializers.ValidationError(str(exc)) from None


class ApiSendMessageSerializer(StrictSerializer):
    conversation_id = serializers.UUIDField()
    text = serializers.CharField(max_length=MAX_TEXT)
    sender = serializers.ChoiceField(choices=["agent", "system"])
    agent_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs["sender"] == "system" and attrs.get("agent_id") is not None:
            raise serializers.ValidationError({"agent_id": ["Only an agent's message names an agent."]})
        return attrs


# --- Query parameters --------------------------------------------------------------------------------


class ContactFilterSerializer(serializers.Serializer):
    search = serializers.CharField(
        max_length=200, required=False, help_text="Part of the name, email or phone (case-insensitive)."
    )
    updated_since = serializers.DateTimeField(required=False, help_text="Changed at or after (ISO 8601).")


class ConversationFilterSerializer(serializers.Serializer):
    channel = serializers.CharField(max_length=16, required=False)
    status = serializers.ChoiceField(choices=ConversationStatus.choices, required=False)
    contact = serializers.UUIDField(required=False, help_text="A contact's id.")
    created_from = serializers.DateTimeField(required=False, help_text="Opened at or after (ISO 8601).")
    created_to = serializers.DateTimeField(required=False, help_text="Opened before (ISO 8601).")


class LeadFilterSerializer(serializers.Serializer):
    stage = serializers.CharField(max_length=32, required=False)
    updated_since = serializers.DateTimeField(required=False)

    def validate_stage(self, value: str) -> str:
        try:
            return check_stage(value)
        except StageError as exc:
            raise serializers.ValidationError(str(exc)) from None


class MeetingFilterSerializer(serializers.Serializer):
    start_from = serializers.DateTimeField(required=False, help_text="Starting at or after (ISO 8601).")
    start_to = serializers.DateTimeField(required=False, help_text="Starting before (ISO 8601).")
    status = serializers.ChoiceField(choices=ScheduledEvent.Status.choices, required=False)


class MessagesQuerySerializer(serializers.Serializer):
    after_seq = serializers.IntegerField(min_value=0, required=False, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False, default=DEFAULT_LIMIT)


class EventsQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, required=False, default=0, help_text="The last event id seen.")
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False, default=DEFAULT_LIMIT)
    type = serializers.CharField(max_length=64, required=False, help_text="Only events of this type.")
    conversation = serializers.UUIDField(required=False, help_text="Only this conversation's events.")
