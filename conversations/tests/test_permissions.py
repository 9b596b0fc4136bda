"""Who is an agent and who is a supervisor is decided in one place (conversations/console/permissions.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group

from conversations.console.permissions import AGENTS_GROUP_NAME, is_agent, is_supervisor

User = get_user_model()
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("talia", "conversations", "channels_web", "channels_whatsapp", "channels_voice", "leads", "rag")


@pytest.mark.django_db
def test_the_rules():
    agents = Group.objects.create(name=AGENTS_GROUP_NAME)
    agent = User.objects.create_user("ana")
    agent.groups.add(agents)
    boss = User.objects.create_user("boss", is_staff=True)
    nobody = User.objects.create_user("nobody")
    gone = User.objects.create_user("gone", is_active=False)
    gone.groups.add(agents)
    gone_boss = User.objects.create_user("gone-boss", is_staff=True, is_active=False)

    assert [is_agent(u) for u in (agent, boss, nobody, gone, gone_boss, AnonymousUser())] == [
        True, True, False, False, False, False,
    ]  # fmt: skip
    assert [is_supervisor(u) for u in (agent, boss, nobody, gone, gone_boss, AnonymousUser(), None)] == [
        False, True, False, False, False, False, False,
    ]  # fmt: skip

    agents.name = "former agents"
    agents.save()
    assert not is_agent(User.objects.get(pk=agent.pk))


def test_nothing_else_reads_the_staff_flag_or_names_the_group():
    """A second definition would drift: rights are asked of conversations/console/permissions.py only."""
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if {"tests", "testing", "migrations"} & set(path.parts) or path.name == "permissions.py":
                continue
            source = path.read_text()
            if re.search(r"\.is_staff\b", source) or re.search(r"name=[\"']agents[\"']", source):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
