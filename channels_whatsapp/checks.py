"""System checks of the WhatsApp channel.

channels_whatsapp.W001 (deploy): no Twilio credentials, so replies cannot be sent.
channels_whatsapp.W002 (deploy): no sender (TALIA_TWILIO_WHATSAPP_FROM or a Messaging Service).
channels_whatsapp.W003 (deploy): no Auth Token, so every webhook is refused (signatures cannot be checked).
channels_whatsapp.W004 (deploy): no TALIA_PUBLIC_BASE_URL, so Twilio is not asked for delivery statuses.
TALIA_TWILIO_VALIDATE_SIGNATURES=false without DEBUG is refused by the settings (ImproperlyConfigured).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from channels_whatsapp import twilio_client


@checks.register(checks.Tags.compatibility, deploy=True)
def whatsapp_configured(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    if not twilio_client.configured():
        found.append(
            checks.Warning(
                "WhatsApp is enabled but Twilio has no credentials: replies cannot be sent.",
                hint="Set TALIA_TWILIO_ACCOUNT_SID and TALIA_TWILIO_AUTH_TOKEN (or an API key).",
                id="channels_whatsapp.W001",
            )
        )
    if not (settings.TALIA_TWILIO_WHATSAPP_FROM or settings.TALIA_TWILIO_MESSAGING_SERVICE_SID):
        found.append(
            checks.Warning(
                "WhatsApp has no sender.",
                hint="Set TALIA_TWILIO_WHATSAPP_FROM (whatsapp:+E164) or TALIA_TWILIO_MESSAGING_SERVICE_SID.",
                id="channels_whatsapp.W002",
            )
        )
    if settings.TALIA_TWILIO_VALIDATE_SIGNATURES and not settings.TALIA_TWILIO_AUTH_TOKEN:
        found.append(
            checks.Warning(
                "Without TALIA_TWILIO_AUTH_TOKEN every WhatsApp webhook is refused (its signature cannot be checked).",
                hint="Set the account's Auth Token, also when sending with an API key.",
                id="channels_whatsapp.W003",
            )
        )
    if not settings.TALIA_PUBLIC_BASE_URL:
        found.append(
            checks.Warning(
                "TALIA_PUBLIC_BASE_URL is not set: Twilio will not report delivery statuses of WhatsApp replies.",
                hint="Set it to the public https:// address Twilio reaches TalIA at.",
                id="channels_whatsapp.W004",
            )
        )
    return found
