from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "talia.integrations"
    label = "integrations"
    verbose_name = _("Integrations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Each sink module registers its provider (talia.integrations.sinks.provider) when imported.
        from conversations import events
        from talia.integrations import calendars, kafka, redis_stream, webhooks  # noqa: F401
        from talia.integrations.api.events import CONTACT_ERASED

        # The integrator API's GDPR erasure (talia/integrations/api/services.py).
        events.declare(CONTACT_ERASED)
