"""Twilio's REST API for the voice channel: replacing a live call's TwiML (`calls(sid).update(twiml=…)`).

The official SDK's client from `talia.twilio.rest_client()`, the one every channel uses (its settings and
TALIA_TWILIO_API_BASE are described there).
"""

from __future__ import annotations

from talia import twilio


def update_call(call_sid: str, twiml: str) -> None:
    """Make the live call `call_sid` run `twiml` now (ends its media stream). Raises the SDK's errors."""
    twilio.rest_client().calls(call_sid).update(twiml=twiml)
