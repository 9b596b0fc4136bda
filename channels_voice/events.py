"""The voice channel's events, declared in ChannelsVoiceConfig.ready() (registry: conversations/events.py)."""

from __future__ import annotations

from conversations.events import spec

CALL_STARTED = spec("call_started", "Call started", "call_sid", "from_number", "to_number", "locale", "mode")
CALL_COMPLETED = spec("call_completed", "Call completed", "call_sid", "status", "duration_s")

# One finished piece of what was said on a realtime call (speaker caller|assistant), stored as message_id.
TRANSCRIPT_SEGMENT = spec("transcript_segment", "Transcript segment", "call_sid", "speaker", "message_id", "seq")

EVENTS = (CALL_STARTED, CALL_COMPLETED, TRANSCRIPT_SEGMENT)
