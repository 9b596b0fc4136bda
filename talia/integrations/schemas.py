"""JSON Schemas (draft 2020-12) of the published envelope, one per declared event type.

Invariants:
- Every declared event (conversations.events registry) has a schema; every payload key it declares has a
  type in `KEY_TYPES` below, taken from what the `emit()` call sites pass. A new key without a type fails
  `schema()` (and the tests): a new event is typed before it ships.
- `data` requires the declared payload keys except the personal ones (`sinks.personal_keys()`: absent for
  sinks that do not take personal data); optional keys, personal keys and, on events that name a message
  (`message_id`), its `text` are optional properties. No other key is allowed.
- The files under docs/events/ are generated from this module by `manage.py event_schemas`; `--check`
  fails when they are stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conversations.events import EventSpec, events
from talia.integrations.sinks import SCHEMA_VERSION, personal_keys

DRAFT = "https://json-schema.org/draft/2020-12/schema"

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
DATE_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
OPTIONAL_INTEGER: dict[str, Any] = {"type": ["integer", "null"]}
STRINGS: dict[str, Any] = {"type": "array", "items": STRING}
INTEGERS: dict[str, Any] = {"type": "array", "items": INTEGER}

# The type of each payload key, whatever the event (one meaning per name). Ids of rows with integer keys
# (agents, teams, lead cards, offers) are integers; ids of rows with UUID keys are UUID strings.
KEY_TYPES: dict[str, dict[str, Any]] = {
    # messages
    "message_id": UUID,
    "seq": {"type": "integer", "minimum": 1},
    "sender": STRING,
    "text": STRING,
    "channel": STRING,
    # the contact's details (lead_captured; "" when unknown)
    "full_name": STRING,
    "email": STRING,
    "phone": STRING,
    "company": STRING,
    # handoff, assignment, routing, closing
    "requested_by": STRING,
    "reason": STRING,
    "agent_id": INTEGER,
    "agent_ids": INTEGERS,
    "offer_id": INTEGER,
    "expires_at": DATE_TIME,
    "team_id": INTEGER,
    "team": STRING,
    "by": STRING,
    "from_agent_id": OPTIONAL_INTEGER,
    "to_agent_id": OPTIONAL_INTEGER,
    "from_team_id": OPTIONAL_INTEGER,
    "to_team_id": OPTIONAL_INTEGER,
    "note_id": UUID,
    "by_id": OPTIONAL_INTEGER,
    "ended_by": STRING,
    # console edits
    "fields": STRINGS,
    "replaced": STRINGS,
    "added": STRINGS,
    "removed": STRINGS,
    # ratings
    "score": {"type": "integer", "minimum": 1, "maximum": 5},
    "has_comment": BOOLEAN,
    "updated": BOOLEAN,
    # retention
    "days": INTEGER,
    "conversations": INTEGER,
    "contacts": INTEGER,
    "messages": INTEGER,
    "files": INTEGER,
    # web chat
    "session_id": STRING,
    "origin": STRING,
    # leads and meetings
    "card_id": INTEGER,
    "stage": STRING,
    "event_id": UUID,
    "title": STRING,
    "start": DATE_TIME,
    "status": STRING,
    "created_by": STRING,
    "updated_by": STRING,
    # voice
    "call_sid": STRING,
    "from_number": STRING,
    "to_number": STRING,
    "locale": STRING,
    "mode": STRING,
    "duration_s": OPTIONAL_INTEGER,
    "speaker": STRING,
}

PERSONAL_NOTE = "Personal: present only for sinks that take personal data."


class UntypedKey(LookupError):
    """A declared payload key with no entry in KEY_TYPES."""


def data_keys(event: EventSpec) -> tuple[list[str], list[str]]:
    """(required, optional) keys of the envelope's `data`, sorted."""
    personal = personal_keys(event.name)
    required = sorted(event.payload_keys - personal)
    optional = set(event.optional_keys) | (event.payload_keys & personal)
    if "message_id" in event.payload_keys | event.optional_keys:
        optional.add("text")
    return required, sorted(optional - set(required))


def schema(event: EventSpec) -> dict[str, Any]:
    required, optional = data_keys(event)
    properties: dict[str, Any] = {}
    for key in sorted([*required, *optional]):
        if key not in KEY_TYPES:
            raise UntypedKey(f"Event {event.name!r}: payload key {key!r} has no type in talia.integrations.schemas.")
        properties[key] = dict(KEY_TYPES[key])
        if key in personal_keys(event.name):
            properties[key]["description"] = PERSONAL_NOTE
    nullable_uuid = {"type": ["string", "null"], "format": "uuid"}
    return {
        "$schema": DRAFT,
        "title": event.name,
        "description": event.description,
        "type": "object",
        "properties": {
            "id": {"type": "integer", "description": "The event's id: the same on every redelivery."},
            "type": {"const": event.name},
            "version": {"const": SCHEMA_VERSION},
            "occurred_at": DATE_TIME,
            "conversation_id": nullable_uuid,
            "contact_id": nullable_uuid,
            "channel": {"type": ["string", "null"]},
            "data": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
        "required": ["id", "type", "version", "occurred_at", "conversation_id", "contact_id", "channel", "data"],
        "additionalProperties": False,
    }


def render_schema(event: EventSpec) -> str:
    return json.dumps(schema(event), indent=2, ensure_ascii=False) + "\n"


def render_types() -> str:
    """docs/events/types.md: the table of event types."""
    lines = [
        "# Event types",
        "",
        "Generated by `python manage.py event_schemas` from the events the apps declare; do not edit.",
        f"Every event is published as an envelope (version {SCHEMA_VERSION}): `id`, `type`, `version`,",
        "`occurred_at`, `conversation_id`, `contact_id`, `channel` and `data`. The JSON Schema of each type's",
        "envelope is `schemas/<type>.json`. Keys marked `?` may be absent; personal keys are sent only to sinks",
        "that take personal data. Events that name a message (`message_id`) carry its `text` for those sinks.",
        "",
        "| type | description | data keys | personal keys |",
        "|---|---|---|---|",
    ]
    for event in events.all():
        required, optional = data_keys(event)
        keys = [f"`{key}`" for key in required] + [f"`{key}`?" for key in optional]
        personal = [f"`{key}`" for key in [*required, *optional] if key in personal_keys(event.name)]
        lines.append(
            f"| `{event.name}` | {event.description} | {', '.join(keys) or '–'} | {', '.join(personal) or '–'} |"
        )
    return "\n".join(lines) + "\n"


def expected_files() -> dict[str, str]:
    """Path (relative to docs/events/) -> content, for every generated file."""
    files = {f"schemas/{event.name}.json": render_schema(event) for event in events.all()}
    files["types.md"] = render_types()
    return files


def stale_files(directory: Path) -> list[str]:
    """Generated files that are missing, differ, or are left over from an event no longer declared."""
    expected = expected_files()
    stale = [
        name
        for name, content in expected.items()
        if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != content
    ]
    leftover = sorted(
        f"schemas/{path.name}"
        for path in (directory / "schemas").glob("*.json")
        if f"schemas/{path.name}" not in expected
    )
    return sorted(stale) + leftover


def write_files(directory: Path) -> list[str]:
    """Write every generated file and remove leftovers; returns what changed."""
    changed = stale_files(directory)
    expected = expected_files()
    (directory / "schemas").mkdir(parents=True, exist_ok=True)
    for name in changed:
        if name in expected:
            (directory / name).write_text(expected[name], encoding="utf-8")
        else:
            (directory / name).unlink()
    return changed
