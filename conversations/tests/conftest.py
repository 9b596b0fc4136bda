"""Small named personas for the conversation tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from conversations import inbox
from conversations.console import presence
from conversations.models import Channel, Message, Team
from talia.testing.fake_channels.channels import swap

User = get_user_model()


@pytest.fixture
def make_agent(db: None) -> Callable[..., Any]:
    def make(username: str = "ana", **extra: Any) -> Any:
        user = User.objects.create_user(username=username, **extra)  # no password: no slow hashing
        user.groups.add(Group.objects.get_or_create(name="agents")[0])
        return user

    return make


@pytest.fixture
def agent(make_agent: Callable[..., Any]) -> Any:
    return make_agent("ana", first_name="Ana", last_name="García")


@pytest.fixture
def lucia(db: None) -> inbox.Received:
    """A web visitor who has just said hello: a bot conversation with one message."""
    return inbox.receive(Channel.WEB, "session-lucia-0001", "Hola, ¿tienen planes para empresas?", locale="es")


@pytest.fixture
def people(make_agent: Callable[..., Any], django_user_model: Any) -> dict[str, Any]:
    """One of each for authorisation matrices: nobody signed in, a user who is not an agent, an agent, staff."""
    return {
        "anonymous": None,
        "visitor": django_user_model.objects.create_user("customer"),
        "agent": make_agent("ana", first_name="Ana"),
        "staff": django_user_model.objects.create_user("boss", first_name="Berta", is_staff=True),
    }


class RecordingDeliverer:
    """A push channel's deliverer, registered the way a channel app does, recording what it sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, message: Message) -> str:
        self.sent.append(message.text)
        return f"SM-{message.seq}"


@pytest.fixture
def whatsapp() -> Iterator[RecordingDeliverer]:
    """`whatsapp` as a push channel whose deliverer records each message (the registry is restored after)."""
    deliverer = RecordingDeliverer()
    with swap("whatsapp", delivery="push", deliverer=deliverer):
        yield deliverer


@pytest.fixture
def online() -> Iterator[Callable[..., None]]:
    """Mark agents as having a console socket open (the presence set the console keeps), cleaned up after."""
    marked: list[tuple[int, str]] = []

    def mark(*users: Any) -> None:
        for user in users:
            marked.append((user.pk, f"test-socket-{user.pk}"))
            presence.touch(user.pk, f"test-socket-{user.pk}")

    yield mark
    for user_id, channel in marked:
        presence.leave(user_id, channel)
        presence.set_state(user_id, "online")


@pytest.fixture
def desk(people: dict[str, Any], make_agent: Callable[..., Any]) -> dict[str, Any]:
    """Two teams without auto-assignment (Ventas: "precio"; Soporte: "factura", "avería"), Ana in Ventas,
    Bruno in Soporte, and Berta (`boss`), a supervisor in neither."""
    sales = Team.objects.create(name="Ventas", keywords="precio", auto_assign=False, capacity=3)
    support = Team.objects.create(name="Soporte", keywords="factura, avería", auto_assign=False, capacity=4)
    ana = people["agent"]
    bruno = make_agent("bruno", first_name="Bruno")
    sales.members.add(ana)
    support.members.add(bruno)
    return {"sales": sales, "support": support, "ana": ana, "bruno": bruno, "boss": people["staff"]}
