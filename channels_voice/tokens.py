"""The short-lived token that lets a call's media stream into `WS /api/voice/stream`.

The inbound webhook (signed by Twilio) issues it in the `<Stream>`'s `<Parameter>`s, bound to the call's
CallSid and conversation; Twilio hands it back in the stream's `start` message, and the consumer checks
it before it reads anything else. Signed with django.core.signing under its own salt, with
TALIA_VOICE_WEBHOOK_SECRET as the key (SECRET_KEY when unset), and accepted for
TALIA_VOICE_STREAM_TOKEN_TTL_S after it was issued.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "talia.voice.stream-token"


@dataclass(frozen=True)
class StreamGrant:
    call_sid: str
    conversation_id: str


def _key() -> str:
    return settings.TALIA_VOICE_WEBHOOK_SECRET or settings.SECRET_KEY


def issue(call_sid: str, conversation_id: str) -> str:
    return signing.dumps({"call": call_sid, "conversation": conversation_id}, key=_key(), salt=SALT)


def check(token: str, call_sid: str) -> StreamGrant | None:
    """The grant of a token issued for `call_sid` and not yet expired; None for anything else."""
    if not token or len(token) > 1000:
        return None
    try:
        data = signing.loads(token, key=_key(), salt=SALT, max_age=settings.TALIA_VOICE_STREAM_TOKEN_TTL_S)
    except signing.BadSignature:  # SignatureExpired is one too
        return None
    if not isinstance(data, dict) or data.get("call") != call_sid or not isinstance(data.get("conversation"), str):
        return None
    return StreamGrant(call_sid, data["conversation"])
