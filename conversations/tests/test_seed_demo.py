from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from channels_web.services import SESSION_ID
from conversations.management.commands.seed_demo import LEGACY_DEMO_IDENTITY
from conversations.models import Channel, ContactIdentity, Conversation, ConversationStatus, Message


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


def demo_session_ids() -> list[str]:
    return list(ContactIdentity.objects.filter(channel=Channel.WEB).values_list("value", flat=True))


def test_the_demo_visitor_has_a_random_session_id_that_opens_nothing_else(db, capsys):
    call_command("seed_demo")
    [session_id] = demo_session_ids()

    assert SESSION_ID.match(session_id) and session_id != LEGACY_DEMO_IDENTITY
    assert len(session_id) >= 32
    assert Client().get(f"/api/webchat/history/{LEGACY_DEMO_IDENTITY}").json()["messages"] == []
    assert len(Client().get(f"/api/webchat/history/{session_id}").json()["messages"]) == 3


def test_each_database_gets_its_own_demo_session_id(db, capsys):
    call_command("seed_demo")
    first = demo_session_ids()
    Conversation.objects.all().delete()
    ContactIdentity.objects.all().delete()
    Message.objects.all().delete()
    call_command("seed_demo")

    assert first != demo_session_ids() and len(demo_session_ids()) == 1


def test_a_demo_seeded_with_the_old_fixed_id_gets_a_random_one(db, capsys):
    call_command("seed_demo")
    ContactIdentity.objects.filter(channel=Channel.WEB).update(value=LEGACY_DEMO_IDENTITY)

    call_command("seed_demo")

    [session_id] = demo_session_ids()
    assert session_id != LEGACY_DEMO_IDENTITY and SESSION_ID.match(session_id)
    assert Conversation.objects.count() == 1


def test_the_demo_assistant_speaks_for_the_demo_business_and_a_changed_profile_stays(db, capsys):
    from conversations import profile
    from conversations.models import AssistantProfile

    call_command("seed_demo")
    demo = profile.current()
    assert (demo.business_name, demo.assistant_name, demo.time_zone) == ("Clínica Sonrisas", "Sofía", "Europe/Madrid")
    AssistantProfile.objects.update(assistant_name="Lucía")

    call_command("seed_demo")

    assert AssistantProfile.objects.get().assistant_name == "Lucía"
