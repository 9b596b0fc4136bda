"""System checks of the channel registry (run by `manage.py check`, migrate, runserver and the tests).

conversations.E001: a channel whose replies are pushed through a provider ("push") but that registered
no deliverer. Its outbound messages could never leave; inbox.send stores them as failed with the reason.
conversations.W001 (deploy): outgoing email (transcripts) goes to the console backend, i.e. the log, with
DEBUG off: EMAIL_HOST is unset.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
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


@checks.register(checks.Tags.compatibility, deploy=True)
def email_is_sent(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.DEBUG or not settings.EMAIL_BACKEND.endswith(".console.EmailBackend"):
        return []
    return [
        checks.Warning(
            "EMAIL_HOST is unset: transcript emails are written to the log instead of being sent.",
            hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, DEFAULT_FROM_EMAIL).",
            id="conversations.W001",
        )
    ]
