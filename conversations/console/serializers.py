"""The console API's response shapes, for its OpenAPI schema (`/api/schema/`, docs/console-api.md).

The views answer with the payload builders the sockets share (`actions.conversation_payload`,
`realtime.message_payload`, `note_payload`, `label_payload`); these serializers only describe them.
`test_api_schema.py` checks that every console operation names one.
"""

from __future__ import annotations

from rest_framework import serializers


class ContactSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    full_name = serializers.CharField(required=False)
    email = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)
    company = serializers.CharField(required=False)

    class Meta:
        ref_name = "ConsoleContact"


class ConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    channel = serializers.CharField()
    status = serializers.ChoiceField(choices=["bot", "queued", "agent", "closed"])
    contact = ContactSerializer()
    agent_name = serializers.CharField(allow_null=True)
    team = serializers.CharField(allow_null=True, help_text="The team whose queue it is or was in.")
    queued_at = serializers.DateTimeField(allow_null=True)
    last_message_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "ConsoleConversation"


class ConversationResponseSerializer(serializers.Serializer):
    conversation = ConversationSerializer()


class ConversationNextResponseSerializer(serializers.Serializer):
    conversation = ConversationSerializer()
    next = serializers.CharField(
        help_text="Where the console goes next (the queue, or an accepted offer's conversation)."
    )


class MessageSerializer(serializers.Serializer):
    """The web chat's message shape (`realtime.message_payload`)."""

    id = serializers.UUIDField()
    conversation_id = serializers.UUIDField()
    seq = serializers.IntegerField()
    direction = serializers.CharField()
    sender = serializers.ChoiceField(choices=["contact", "assistant", "agent", "system"])
    agent_name = serializers.CharField(allow_null=True)
    text = serializers.CharField()
    content_type = serializers.CharField()
    created = serializers.DateTimeField()
    citations = serializers.ListField(child=serializers.DictField())
    attachments = serializers.ListField(child=serializers.DictField(), required=False)
    location = serializers.DictField(required=False)

    class Meta:
        ref_name = "ConsoleMessage"


class MessageResponseSerializer(serializers.Serializer):
    message = MessageSerializer()


class MessagesResponseSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True)


class NoteSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    conversation_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=["note", "whisper"])
    author_name = serializers.CharField(allow_null=True)
    recipient_name = serializers.CharField(allow_null=True)
    text = serializers.CharField()
    created = serializers.DateTimeField()

    class Meta:
        ref_name = "ConsoleNote"


class NoteResponseSerializer(serializers.Serializer):
    note = NoteSerializer()


class NotesResponseSerializer(serializers.Serializer):
    notes = NoteSerializer(many=True)


class LabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    colour = serializers.CharField()

    class Meta:
        ref_name = "ConsoleLabel"


class LabelsResponseSerializer(serializers.Serializer):
    labels = LabelSerializer(many=True)


class ContactEditResponseSerializer(serializers.Serializer):
    contact = ContactSerializer()
    changed = serializers.DictField(child=serializers.CharField(), help_text="Each written field's stored value.")
    previous = serializers.DictField(child=serializers.CharField(), help_text='Its value before ("" when empty).')
    lead_captured = serializers.BooleanField()


class PresenceResponseSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["online", "away", "offline"])


class OfferSerializer(serializers.Serializer):
    """An open auto-assignment offer, as the `offer.made` push carries it."""

    type = serializers.CharField(help_text='Always "offer.made".')
    offer_id = serializers.IntegerField()
    conversation_id = serializers.UUIDField()
    channel = serializers.CharField()
    contact_name = serializers.CharField()
    team_name = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(help_text="Accept before this; after it the offer goes to someone else.")
    timeout_s = serializers.IntegerField(help_text="How long an offer lasts (TALIA_OFFER_TIMEOUT_S).")


class OffersResponseSerializer(serializers.Serializer):
    offers = OfferSerializer(many=True)


class OfferDeclinedResponseSerializer(serializers.Serializer):
    declined = serializers.BooleanField()


class SidebarResponseSerializer(serializers.Serializer):
    """`sidebar.sidebar_data`: what the contact sidebar keeps live."""

    contact = ContactSerializer()
    consent = serializers.ChoiceField(choices=["granted", "declined"], allow_null=True)
    panels = serializers.DictField(
        child=serializers.DictField(),
        help_text="Each contact panel's data by its name (leads: `card` with stage, stage_label and value, or "
        "null; `meetings`, soonest first, each with id, start, start_label, start_input, title, status, "
        "status_label, confirm_url (null unless proposed) and reschedule_url; `back`).",
    )
