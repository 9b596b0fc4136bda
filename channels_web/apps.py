from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsWebConfig(AppConfig):
    name = "channels_web"
    verbose_name = _("Web chat")

    def ready(self) -> None:
        from channels_web import retention
        from channels_web.events import EVENTS
        from conversations.events import declare

        declare(*EVENTS)
        retention.register()

        from corsheaders.signals import check_request_enabled

        from channels_web.security import cors_origin_allowed

        check_request_enabled.connect(cors_origin_allowed, dispatch_uid="channels_web.cors_origin_allowed")

        from channels_web import kpis
        from conversations.registry import ChannelSpec, channel_specs

        # Replies are pulled: the widget gets them over TalIA's socket or the REST API, no provider involved.
        channel_specs.register(
            ChannelSpec(
                name="web",
                label=_("Web chat"),
                icon="💬",
                delivery="pull",
                renders_links=True,
                renders_markdown=False,
                shows_citations=True,
                waits_for_reply=True,
                streams_text=True,
                sends_files=True,
                figures=kpis.figures,
            )
        )
