from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsWhatsappConfig(AppConfig):
    name = "channels_whatsapp"
    verbose_name = _("WhatsApp")
