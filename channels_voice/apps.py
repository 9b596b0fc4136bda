from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsVoiceConfig(AppConfig):
    name = "channels_voice"
    verbose_name = _("Voice")
