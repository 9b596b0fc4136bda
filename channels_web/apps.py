from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsWebConfig(AppConfig):
    name = "channels_web"
    verbose_name = _("Web chat")

    def ready(self) -> None:
        from channels_web.events import EVENTS
        from conversations.events import declare

        declare(*EVENTS)
