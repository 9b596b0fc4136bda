"""The voice channel's events, declared in ChannelsVoiceConfig.ready() (registry: conversations/events.py)."""

from __future__ import annotations

from conversations.events import spec

CALL_STARTED = spec("call_started", "Call started", "call_sid", "from_number", "to_number", "locale", "mode")
CALL_COMPLETED = spec("call_completed", "Call completed", "call_sid", "status", "duration_s")

EVENTS = (CALL_STARTED, CALL_COMPLETED)
