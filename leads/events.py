"""The leads app's events, declared in LeadsConfig.ready() (registry: conversations/events.py).

`lead_captured` is the core's (conversations.events): the core's contact tools record it too, once the
contact's details are complete. `lead_created` is recorded once per card, when the pipeline creates it,
with the channel the lead came from (web, whatsapp, voice).
"""

from __future__ import annotations

from conversations.events import spec

LEAD_CREATED = spec("lead_created", "Lead card created", "card_id", "channel", "stage")
LEAD_CLOSED = spec("lead_closed", "Lead closed", "card_id", "stage")
MEETING_SCHEDULED = spec("meeting_scheduled", "Meeting scheduled", "event_id", "start", "created_by")
MEETING_UPDATED = spec("meeting_updated", "Meeting updated", "event_id", "title", "start", "status", "updated_by")

EVENTS = (LEAD_CREATED, LEAD_CLOSED, MEETING_SCHEDULED, MEETING_UPDATED)
