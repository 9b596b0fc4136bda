from django.contrib.auth import get_user_model
from django.core.management import call_command

from conversations.models import Conversation, ConversationStatus


def test_seed_creates_accounts_once_and_a_queued_demo_conversation(db, capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out

    users = get_user_model().objects
    assert users.get(username="admin").is_superuser
    agent = users.get(username="agent")
    assert agent.groups.filter(name="agents").exists()
    password = first.split("agent")[1].split()[0]
    assert agent.check_password(password)
    assert "shown only once" in first
    assert password not in second and "already present" in second
    conversation = Conversation.objects.get()
    assert conversation.status == ConversationStatus.QUEUED
    assert conversation.messages.count() == 3
