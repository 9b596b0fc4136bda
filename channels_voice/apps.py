from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsVoiceConfig(AppConfig):
    name = "channels_voice"
    verbose_name = _("Voice")

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from channels_voice import checks, details, kpis, recordings, retention, services
        from channels_voice.events import EVENTS
        from channels_voice.models import VoiceRecording
        from conversations.events import declare
        from conversations.registry import ChannelSpec, channel_specs

        del checks  # imported for its @register()ed system checks
        post_delete.connect(recordings.remove_file, sender=VoiceRecording, dispatch_uid="voice-recording-file")
        declare(*EVENTS)
        retention.register()
        # Replies are spoken in the TwiML answer to the caller's own request (the gather turn waits for
        # them), so no provider is called to deliver: pulled, like the web chat's REST API.
        channel_specs.register(
            ChannelSpec(
                name=services.CHANNEL,
                label=_("Call"),
                icon="📞",
                delivery="pull",
                renders_links=False,
                renders_markdown=False,
                waits_for_reply=True,
                figures=kpis.figures,
                details=details.call_details,
            )
        )
