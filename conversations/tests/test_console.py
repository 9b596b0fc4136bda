"""The console page: agents only, the queue oldest first with a preview, user text escaped."""

from __future__ import annotations

from django.urls import reverse

from conversations import inbox, state


def test_anonymous_visitor_is_sent_to_login(client, db):
    response = client.get(reverse("console"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_signed_in_non_agent_is_forbidden(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("customer"))

    assert client.get(reverse("console")).status_code == 403


def test_queue_lists_waiting_conversations_oldest_first_with_preview(client, agent, django_assert_max_num_queries):
    first = inbox.receive("web", "session-first-0001", "Necesito ayuda <b>urgente</b>", display_name="Primera")
    state.request_handoff(first.conversation, requested_by="contact")
    second = inbox.receive("whatsapp", "+34600123456", "Hola", display_name="Segunda")
    state.request_handoff(second.conversation, requested_by="contact")
    client.force_login(agent)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("console"))

    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("Primera") < body.index("Segunda")
    assert "Necesito ayuda &lt;b&gt;urgente&lt;/b&gt;" in body
    assert "<b>urgente</b>" not in body


def test_empty_console_says_nobody_is_waiting(client, agent):
    client.force_login(agent)

    body = client.get(reverse("console"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Nobody is waiting." in body


def test_console_speaks_spanish_by_default(client, agent):
    client.force_login(agent)

    body = client.get(reverse("console")).content.decode()

    assert "No hay nadie esperando." in body
    assert "Consola de agentes" in body
