"""System checks of the voice channel.

channels_voice.E001: TALIA_VOICE_TRANSFER_NUMBER is set but is not a phone number in E.164 form.
channels_voice.E002: TALIA_VOICE_RECORD is on without a valid TALIA_RECORDING_KEY (nothing would be
recorded, and the recordings could not be kept encrypted); or a key is set that is not a Fernet key.
channels_voice.W001 (deploy): no Auth Token, so every Voice webhook is refused (signatures cannot be checked).
channels_voice.W002 (deploy): realtime mode without Twilio REST credentials, so a failed bridge or a
transfer cannot replace the call's TwiML (the call still goes on in speech turns after the stream).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError

from conversations.models import validate_e164


@checks.register(checks.Tags.compatibility)
def transfer_number_valid(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    number = settings.TALIA_VOICE_TRANSFER_NUMBER
    if not number:
        return []
    try:
        validate_e164(number)
    except ValidationError:
        return [
            checks.Error(
                f"TALIA_VOICE_TRANSFER_NUMBER {number!r} is not a phone number in international format.",
                hint="Use E.164, like +34910111222, or leave it unset to promise a call back instead.",
                id="channels_voice.E001",
            )
        ]
    return []


@checks.register(checks.Tags.compatibility, deploy=True)
def voice_webhooks_verifiable(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.TALIA_TWILIO_VALIDATE_SIGNATURES and not settings.TALIA_TWILIO_AUTH_TOKEN:
        return [
            checks.Warning(
                "Without TALIA_TWILIO_AUTH_TOKEN every Voice webhook is refused (its signature cannot be checked).",
                hint="Set the Twilio account's Auth Token.",
                id="channels_voice.W001",
            )
        ]
    return []


@checks.register(checks.Tags.security)
def recording_key_valid(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from channels_voice.recordings import key_problem

    problem = key_problem()
    if problem is None or not (settings.TALIA_VOICE_RECORD or settings.TALIA_RECORDING_KEY.strip()):
        return []
    return [
        checks.Error(
            f"Call recordings need a valid encryption key: {problem}",
            hint='Generate one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"; or turn TALIA_VOICE_RECORD off.',
            id="channels_voice.E002",
        )
    ]


@checks.register(checks.Tags.compatibility, deploy=True)
def realtime_can_redirect_calls(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    has_secret = settings.TALIA_TWILIO_AUTH_TOKEN or (
        settings.TALIA_TWILIO_API_KEY_SID and settings.TALIA_TWILIO_API_KEY_SECRET
    )
    if settings.TALIA_VOICE_MODE == "realtime" and not (settings.TALIA_TWILIO_ACCOUNT_SID and has_secret):
        return [
            checks.Warning(
                "Realtime calls cannot be redirected over Twilio's REST API (fallback to speech turns, transfers).",
                hint="Set TALIA_TWILIO_ACCOUNT_SID and TALIA_TWILIO_AUTH_TOKEN (or an API key).",
                id="channels_voice.W002",
            )
        ]
    return []
