from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RagConfig(AppConfig):
    name = "rag"
    verbose_name = _("Knowledge base")

    def ready(self) -> None:
        from conversations.registry import tools
        from rag import checks  # noqa: F401 (registers the system checks)
        from rag.tools import SEARCH_KNOWLEDGE

        tools.register(SEARCH_KNOWLEDGE)
