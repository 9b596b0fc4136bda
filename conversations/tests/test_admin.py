"""Django admin: every model browsable by staff, conversations with their messages, state via actions."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from conversations import inbox
from conversations.models import Conversation, ConversationStatus, Sender


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "a-long-admin-password")
    client.force_login(user)
    return client


def conversations_models():
    return [model for model in admin.site._registry if model._meta.app_label == "conversations"]


def test_every_conversations_model_is_registered():
    names = {model.__name__ for model in conversations_models()}
    assert names == {
        "Contact", "Conversation", "Message", "HandoffRequest", "AgentAssignment", "EndChatRequest",
        "ConversationSummary", "ConversationRating", "AssistantRun", "ToolCall", "Event", "QuickReply", "InternalNote", "AssistantProfile", "Label", "Team", "AssignmentOffer",
    }  # fmt: skip


def test_every_changelist_renders_with_search_and_filters(staff_client, lucia):
    for model in conversations_models():
        url = reverse(f"admin:conversations_{model._meta.model_name}_changelist")
        assert staff_client.get(url).status_code == 200, url
        assert staff_client.get(url, {"q": "Hola"}).status_code == 200, url


def test_conversation_page_shows_its_messages_escaped(staff_client, lucia):
    inbox.send(lucia.conversation, "<script>alert('x')</script>", sender=Sender.ASSISTANT)

    response = staff_client.get(reverse("admin:conversations_conversation_change", args=[lucia.conversation.pk]))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Hola, ¿tienen planes para empresas?" in body
    assert "<script>alert(" not in body
    assert "&lt;script&gt;alert(" in body


def test_route_to_queue_action_goes_through_the_state_machine(staff_client, lucia):
    url = reverse("admin:conversations_conversation_changelist")

    response = staff_client.post(
        url, {"action": "route_to_queue", "_selected_action": [str(lucia.conversation.pk)]}, follow=True
    )

    assert response.status_code == 200
    assert Conversation.objects.get(pk=lucia.conversation.pk).status == ConversationStatus.QUEUED
    assert lucia.conversation.handoff_requests.get().requested_by == "admin"


def test_admin_requires_login(client, db):
    response = client.get(reverse("admin:conversations_conversation_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
