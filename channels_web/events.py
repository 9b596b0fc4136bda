"""The web chat's events, declared in ChannelsWebConfig.ready() (registry: conversations/events.py)."""

from __future__ import annotations

from conversations.events import spec

WEBCHAT_STARTED = spec("webchat_started", "Web chat started", "session_id", "origin")

# Every closure of a visitor's session, not only the first per browser: `reason` is "visitor" (the widget's
# end button), "page_left" (the page was left: a beacon, the conversation goes on) or "inactivity" (nothing
# from the visitor for TALIA_WEBCHAT_SESSION_IDLE_MIN minutes). An agent's closing is the core's
# `conversation_closed` with `ended_by: agent`. See channels_web.services.record_closure.
SESSION_CLOSED = spec("session_closed", "Web chat session closed", "session_id", "reason")

EVENTS = (WEBCHAT_STARTED, SESSION_CLOSED)
