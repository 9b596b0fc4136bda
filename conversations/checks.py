"""System checks of the channel registry (run by `manage.py check`, migrate, runserver and the tests).

conversations.E001: a channel whose replies are pushed through a provider ("push") but that registered
no deliverer. Its outbound messages could never leave; inbox.send stores them as failed with the reason.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from conversations.registry import channel_specs


@checks.register()
def channels_can_deliver(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            f"The channel {spec.name!r} delivers through a provider (delivery='push') but has no deliverer.",
            hint="Give its ChannelSpec a deliverer, or declare delivery='pull' if the visitor fetches replies.",
            obj=f"channel {spec.name}",
            id="conversations.E001",
        )
        for spec in channel_specs.all()
        if spec.delivery == "push" and spec.deliverer is None
    ]
