"""The capabilities a tool may declare, and the argument shapes the core relies on for each.

A tool declares at most one capability (`Tool.capability`) and the registry holds at most one tool per
capability. Code in the core that acts on its own (the offline engine) finds a tool through
`tools.for_capability(NAME)` or `find_capability(context.tools, NAME)`, never by another app's tool name,
and does without it when no tool declares it (no knowledge app: no knowledge answer; no leads app: the
meeting is only acknowledged, no lead card). A tool that declares a capability must accept exactly the
arguments listed in `ARGUMENTS` (checked at registration) and answer with the output described here.

This module imports nothing: the registry, the engines and every app may import it.
"""

from __future__ import annotations

# Answer a question from the business's own content.
# Arguments: query (str, the contact's question in their words).
# Output: {"ok": bool, "results": [{"snippet": str, "url": str, "title": str}, ...]} best first; a tool may
# also return "citations": [{"url", "title"}], which a reply shows as its sources.
SEARCH_KNOWLEDGE = "search_knowledge"

# Propose a meeting the contact asked for.
# Arguments: title (str), start (str, ISO 8601 date and time, local when no offset),
# duration_minutes (int | None), notes (str | None). Output: {"ok": bool, ...}.
BOOK_MEETING = "book_meeting"

# Change the meeting proposed last in the conversation: give it its topic, confirm it or cancel it.
# Arguments: title (str | None, the topic), decision ("confirm" | "cancel" | None). Output: {"ok": bool,
# "title": str, "start": str, "status": "proposed" | "confirmed" | "cancelled", ...}.
UPDATE_MEETING = "update_meeting"

# Record the lead for the team once the contact's data is known.
# Arguments: summary (str), stage (str | None), value (number | None). Output: {"ok": bool, ...}.
CLOSE_LEAD = "close_lead"

# The core's own tools (conversations/assistant/tools.py). Output of each: {"ok": bool, "error"?: str}.
RECORD_CONSENT = "record_consent"  # granted (bool)
SET_FULL_NAME = "set_full_name"  # full_name (str)
SET_EMAIL = "set_email"  # email (str)
SET_PHONE = "set_phone"  # phone_number (str)
SET_COMPANY = "set_company"  # company (str)
REQUEST_HUMAN = "request_human"  # reason (str); output also has "agents_online": int

# The arguments (the schema's property names) a tool declaring each capability must take.
ARGUMENTS: dict[str, frozenset[str]] = {
    SEARCH_KNOWLEDGE: frozenset({"query"}),
    BOOK_MEETING: frozenset({"title", "start", "duration_minutes", "notes"}),
    UPDATE_MEETING: frozenset({"title", "decision"}),
    CLOSE_LEAD: frozenset({"summary", "stage", "value"}),
    RECORD_CONSENT: frozenset({"granted"}),
    SET_FULL_NAME: frozenset({"full_name"}),
    SET_EMAIL: frozenset({"email"}),
    SET_PHONE: frozenset({"phone_number"}),
    SET_COMPANY: frozenset({"company"}),
    REQUEST_HUMAN: frozenset({"reason"}),
}
