from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsWhatsappConfig(AppConfig):
    name = "channels_whatsapp"
    verbose_name = _("WhatsApp")

    def ready(self) -> None:
        from channels_whatsapp import checks, services
        from conversations.registry import ChannelSpec, channel_specs

        del checks  # imported for its @register()ed system checks
        # Replies are pushed through Twilio, one message per part of at most 1,600 characters, free-form
        # only within 24 hours of the contact's last message.
        channel_specs.register(
            ChannelSpec(
                name=services.CHANNEL,
                label=_("WhatsApp"),
                icon="🟢",
                delivery="push",
                deliverer=services.deliver,
                reply_window=services.REPLY_WINDOW,
                max_length=services.MAX_LENGTH,
                split=services.split_sentences,
                renders_links=True,
                renders_markdown=False,
            )
        )
