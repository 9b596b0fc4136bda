"""Every declared event, recorded through the real code paths of the apps that declare it.

`events.emit()` checks each payload against its declaration as it stores it; this test makes sure every
declaration is exercised (a declared event nothing records, or one whose recorder disagrees with its
declaration, fails here) and checks the stored rows once more.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from channels_voice import services as voice
from channels_voice import streaming
from channels_web import services as web
from conversations import assignment, events, inbox, labels, retention, state
from conversations.assistant.tools import record_consent, set_email, set_full_name
from conversations.console import presence
from conversations.leadfields import write_lead_fields
from conversations.models import AssignmentOffer, Event, Label, Sender, Team
from leads import pipeline
from leads.models import LeadMovement
from leads.tools import schedule_meeting, update_meeting
from talia.integrations.api.services import erase_contact


def test_every_declared_event_is_recorded_by_its_app_with_the_declared_payload(db, django_user_model):
    agent = django_user_model.objects.create_user("ana-events", is_staff=True)
    received = web.post_message(web.Visitor(session_id="events-flow-0001", origin="https://example.com"), "Hola")
    conversation = received.conversation
    inbox.send(conversation, "¡Hola! ¿En qué te ayudo?", sender=Sender.ASSISTANT)

    record_consent(conversation, True)
    set_full_name(conversation, "Lucía Pérez")
    set_email(conversation, "lucia@example.com")
    write_lead_fields(conversation, {"company": "Textiles Gómez"}, agent=agent)  # an agent's edit

    state.request_handoff(conversation, requested_by="contact", reason="quiere una persona")
    state.cancel_handoff(conversation)
    state.request_handoff(conversation, requested_by="contact", reason="otra vez")
    state.expire_handoff(conversation)
    state.request_handoff(conversation, requested_by="contact", reason="y otra")
    state.claim_conversation(conversation, agent)
    state.hand_back_to_assistant(conversation)
    state.take_over(conversation, agent)
    state.hand_back_to_assistant(conversation)
    labels.set_labels(conversation, [Label.objects.create(name="VIP").pk], by=agent)
    sales = Team.objects.create(name="Ventas", keywords="precio", auto_assign=False)
    state.request_handoff(conversation, requested_by="assistant", reason="Pregunta por el precio")  # routed
    state.claim_conversation(conversation, agent)
    colleague = django_user_model.objects.create_user("berta-events", is_staff=True)
    state.transfer_to_agent(conversation, colleague, by=agent, note="Te lo paso")
    state.transfer_to_team(conversation, sales, by=colleague, note="Para ventas")
    state.claim_conversation(conversation, agent)
    state.hand_back_to_assistant(conversation)
    # Auto-assignment: offered, declined, offered to the other member, expired; then claimed by hand.
    support = Team.objects.create(name="Soporte", keywords="avería")
    support.members.add(agent, colleague)
    for member in (agent, colleague):
        presence.touch(member.pk, "events-socket")
    state.request_handoff(conversation, requested_by="assistant", reason="Una avería")
    first = assignment.auto_assign(conversation.pk)
    assignment.decline_offer(first, AssignmentOffer.objects.get(status="pending").pk)
    assert assignment.auto_assign(conversation.pk) not in (None, first)
    AssignmentOffer.objects.filter(status="pending").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert len(assignment.expire_offers()) == 1
    for member in (agent, colleague):
        presence.leave(member.pk, "events-socket")
    state.claim_conversation(conversation, agent)
    state.hand_back_to_assistant(conversation)

    friday = (timezone.now() + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    schedule_meeting(conversation, "Reunión", friday.isoformat(), None, None)
    update_meeting(conversation, "Demo del producto", "confirm")
    card, _ = pipeline.card_for(conversation.contact, conversation, LeadMovement.MovedBy.ASSISTANT)
    pipeline.move_card(card, "won", moved_by=LeadMovement.MovedBy.AGENT, user=agent)
    state.close_conversation(conversation, ended_by="agent", reason="hecho")
    web.rate("events-flow-0001", conversation.pk, 5, "Muy bien")
    assert web.page_left("events-flow-0001")  # the widget's beacon: a session closure

    call = {"CallSid": "CA-events-0001", "From": "+34600000009", "To": "+34910000000"}
    started = voice.start_call(call)
    live = streaming.LiveCall(started.call.call_sid, str(started.conversation.pk), "es", call["From"])
    streaming.store_segment(live, streaming.CALLER, "Hola, llamo por una cita", "item_events_1", {})
    voice.apply_status(
        voice.parse_status({**call, "CallStatus": "completed", "SequenceNumber": "1", "CallDuration": "3"})
    )

    # An integrator erases the caller's personal data (GDPR, talia.integrations.api).
    erase_contact(started.conversation.contact, by="talia_events")

    # Long after, the retention policy anonymises it all and says so (counts only).
    retention.apply_retention(days=1, now=timezone.now() + timedelta(days=400))

    stored = list(Event.objects.all())
    assert {event.name for event in stored} == {declared.name for declared in events.events.all()}
    for event in stored:
        declared = events.events.get(event.name)
        assert declared.payload_keys <= set(event.payload) <= declared.payload_keys | declared.optional_keys
