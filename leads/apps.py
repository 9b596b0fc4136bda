from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = _("Leads")

    def ready(self) -> None:
        from conversations.events import declare
        from conversations.registry import contact_panels, tools
        from leads import retention
        from leads.events import EVENTS
        from leads.sidebar import PANEL
        from leads.tools import CLOSE_LEAD, SCHEDULE_MEETING, UPDATE_MEETING

        tools.register(CLOSE_LEAD)
        tools.register(SCHEDULE_MEETING)
        tools.register(UPDATE_MEETING)
        declare(*EVENTS)
        retention.register()
        contact_panels.register(PANEL)
