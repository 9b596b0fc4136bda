"""The leads section of the console's contact sidebar: the card's stage and the contact's meetings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from conversations import inbox, state
from conversations.models import Channel
from leads.models import LeadCard, LeadMovement, ScheduledEvent
from leads.pipeline import card_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(django_user_model):
    user = django_user_model.objects.create_user("ana")
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    return user


@pytest.fixture
def conversation():
    return inbox.receive(Channel.WEB, "panel-session-0001", "Hola", assistant_turn=False).conversation


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def move(client, conversation, stage):
    return client.post(
        f"/console/api/conversations/{conversation.pk}/lead-stage", {"stage": stage}, content_type="application/json"
    )


def test_moving_the_stage_from_the_sidebar_is_a_movement_by_the_agent(conversation, ana, settings):
    card, _ = card_for(conversation.contact, conversation, LeadMovement.MovedBy.ASSISTANT)
    page = signed_in(ana).get(f"/console/conversations/{conversation.pk}/").content.decode()
    assert 'id="lead-stage"' in page and f'<option value="{card.stage}" selected>' in page

    qualified = move(signed_in(ana), conversation, settings.TALIA_LEAD_STAGES[1])
    won = move(signed_in(ana), conversation, settings.TALIA_LEAD_STAGES[-2])  # closing: people only, and she is one

    assert qualified.status_code == 200 and won.status_code == 200
    assert won.json()["card"]["stage"] == settings.TALIA_LEAD_STAGES[-2]
    moves = LeadMovement.objects.filter(card=card).exclude(from_stage="").order_by("created")
    assert [(m.to_stage, m.moved_by, m.user_id) for m in moves] == [
        (settings.TALIA_LEAD_STAGES[1], "agent", ana.pk),
        (settings.TALIA_LEAD_STAGES[-2], "agent", ana.pk),
    ]


def test_a_contact_without_a_card_gets_one_when_the_agent_picks_a_stage(conversation, ana, settings):
    moved = move(signed_in(ana), conversation, settings.TALIA_LEAD_STAGES[1])

    assert moved.status_code == 200
    card = LeadCard.objects.get(contact=conversation.contact)
    assert card.stage == settings.TALIA_LEAD_STAGES[1]
    assert LeadMovement.objects.filter(card=card, moved_by="agent", user=ana).count() == 1


@pytest.mark.parametrize("stage", ["nowhere", ""])
def test_an_unknown_stage_is_refused_and_moves_nothing(conversation, ana, stage):
    refused = move(signed_in(ana), conversation, stage)

    assert refused.status_code == 400 and "stage" in refused.json()["error"]["fields"]
    assert not LeadCard.objects.exists()


def test_an_agent_who_may_not_open_the_conversation_may_not_move_its_lead(conversation, ana, django_user_model):
    bruno = django_user_model.objects.create_user("bruno")
    bruno.groups.add(Group.objects.get_or_create(name="agents")[0])
    state.request_handoff(conversation, requested_by="contact")
    state.claim_conversation(conversation, bruno)

    assert move(signed_in(ana), conversation, "qualified").status_code == 403
    assert not LeadCard.objects.exists()


def test_a_meeting_is_confirmed_from_the_sidebar_and_the_agent_comes_back_to_the_conversation(conversation, ana):
    meeting = ScheduledEvent.objects.create(
        title="Demo",
        start=timezone.now() + timedelta(days=2),
        contact=conversation.contact,
        conversation=conversation,
        created_by=LeadMovement.MovedBy.ASSISTANT,
    )
    back = f"/console/conversations/{conversation.pk}/"
    page = signed_in(ana).get(back).content.decode()
    assert f"/console/meetings/{meeting.pk}/confirm" in page and "Demo" in page

    confirmed = signed_in(ana).post(f"/console/meetings/{meeting.pk}/confirm", {"next": back})
    elsewhere = signed_in(ana).post(f"/console/meetings/{meeting.pk}/confirm", {"next": "https://evil.example/"})

    assert (confirmed.status_code, confirmed["Location"]) == (302, back)
    assert elsewhere["Location"] == "/console/meetings/"
    meeting.refresh_from_db()
    assert meeting.status == ScheduledEvent.Status.CONFIRMED


def test_back_on_the_conversation_the_agent_reads_how_the_meeting_action_went(conversation, ana):
    meeting = ScheduledEvent.objects.create(
        title="Demo",
        start=timezone.now() + timedelta(days=2),
        contact=conversation.contact,
        conversation=conversation,
        created_by=LeadMovement.MovedBy.ASSISTANT,
    )
    client = signed_in(ana)
    back = f"/console/conversations/{conversation.pk}/"

    page = client.post(f"/console/meetings/{meeting.pk}/confirm", {"next": back}, follow=True)

    html = page.content.decode()
    assert page.redirect_chain == [(back, 302)]
    assert 'class="flash"' in html and "Demo" in html.split('class="flash"')[1].split("</ul>")[0]
    assert "Hola" not in html.split('class="flash"')[1].split("</ul>")[0]  # not the conversation's messages
