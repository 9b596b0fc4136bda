"""The channel specs of the test-only app (see the package docstring)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from conversations.models import Message
from conversations.registry import ChannelSpec, channel_specs

FAKE = "fake"


class FakeDeliverer:
    """Records each message it delivers; raises the queued exceptions first, one per attempt."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.failures: list[Exception] = []

    def reset(self) -> None:
        self.sent.clear()
        self.failures.clear()

    def __call__(self, message: Message) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message.text)
        return f"FAKE-{message.seq}"


deliverer = FakeDeliverer()


def register() -> None:
    """Nothing to plug in at start-up any more: every door is a real app now ("voice": channels_voice)."""


def fake_spec(**changes: Any) -> ChannelSpec:
    spec = ChannelSpec(name=FAKE, label="Fake", icon="🧪", delivery="push", deliverer=deliverer)
    return dataclasses.replace(spec, **changes)


@contextlib.contextmanager
def plugged(spec: ChannelSpec) -> Iterator[ChannelSpec]:
    """Register `spec` (in place of one of the same name) for the block, then put the registry back."""
    before = channel_specs.all()
    channel_specs.unregister(spec.name)
    channel_specs.register(spec)
    try:
        yield spec
    finally:
        # Back as it was, in the same order (the order lists channels in the console and the dashboard).
        for registered in channel_specs.all():
            channel_specs.unregister(registered.name)
        for registered in before:
            channel_specs.register(registered)


def swap(name: str, **changes: Any) -> contextlib.AbstractContextManager[ChannelSpec]:
    """`plugged()` with the registered spec `name` changed (e.g. given a deliverer)."""
    base = channel_specs.get(name) or ChannelSpec(name=name, label=name, icon="", delivery="push")
    return plugged(dataclasses.replace(base, **changes))
