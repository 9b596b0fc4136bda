from __future__ import annotations

from django.apps import AppConfig


class FakeChannelsConfig(AppConfig):
    name = "talia.testing.fake_channels"
    label = "fake_channels"

    def ready(self) -> None:
        from talia.testing.fake_channels.channels import register

        register()
