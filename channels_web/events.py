"""The web chat's events, declared in ChannelsWebConfig.ready() (registry: conversations/events.py)."""

from __future__ import annotations

from conversations.events import spec

WEBCHAT_STARTED = spec("webchat_started", "Web chat started", "session_id", "origin")

EVENTS = (WEBCHAT_STARTED,)
