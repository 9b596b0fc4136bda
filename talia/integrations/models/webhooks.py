"""Webhook endpoints staff configure in the admin; each active one is a sink (talia/integrations/webhooks.py).

The secret follows Standard Webhooks: `whsec_` + base64 of 32 random bytes, generated on creation and
shown in the admin so the receiver can verify signatures. Only http and https URLs are accepted.
"""

from __future__ import annotations

import base64
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations.models import TimeStamped

__all__ = ["WebhookEndpoint", "new_webhook_secret"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _event_names(text: str) -> list[str]:
    return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


class WebhookEndpoint(TimeStamped):
    url = models.URLField(
        _("URL"),
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=_("Where events are POSTed (http or https)."),
    )
    secret = models.CharField(
        _("signing secret"),
        max_length=100,
        default=new_webhook_secret,
        help_text=_("Standard Webhooks secret (whsec_…): the receiver verifies webhook-signature with it."),
    )
    event_types = models.TextField(
        _("event types"),
        blank=True,
        help_text=_("Comma-separated event names to send; empty sends every event."),
    )
    personal_data = models.BooleanField(
        _("personal data"),
        default=False,
        help_text=_("Include names, email, phone and message texts in the events."),
    )
    active = models.BooleanField(_("active"), default=True)
    description = models.CharField(_("description"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url

    @property
    def sink_key(self) -> str:
        return f"webhook:{self.pk}"

    def event_type_list(self) -> list[str]:
        return _event_names(self.event_types)

    def accepts(self, event_type: str) -> bool:
        names = self.event_type_list()
        return not names or event_type in names

    def clean(self) -> None:
        super().clean()
        if not self.secret.startswith(SECRET_PREFIX):
            raise ValidationError({"secret": _("The secret must start with whsec_.")})
        try:
            decoded = base64.b64decode(self.secret[len(SECRET_PREFIX) :], validate=True)
        except ValueError:
            decoded = b""
        if len(decoded) < 24:
            raise ValidationError({"secret": _("The secret must be whsec_ followed by base64 of 24 to 64 bytes.")})
        from conversations.events import events

        known = {spec.name for spec in events.all()}
        unknown = [name for name in self.event_type_list() if name not in known and name != "webhook.test"]
        if unknown:
            raise ValidationError({"event_types": _("Unknown event types: %s") % ", ".join(unknown)})
