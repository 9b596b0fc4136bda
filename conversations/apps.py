from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Conversations")

    def ready(self) -> None:
        import conversations.attachments  # noqa: F401  (deletes a message's files with it)
        import conversations.checks  # noqa: F401  (registers the system checks)
        import conversations.profile  # noqa: F401  (drops the cached profile when it changes)
        from conversations import events, retention
        from conversations.assistant.tools import register_core_tools
        from conversations.console.access import connect_signals

        events.declare(*events.CORE_EVENTS, retention.RETENTION_APPLIED)
        register_core_tools()
        connect_signals()
