"""The contact sidebar of a conversation's console page: who the contact is, everywhere they have written.

`sidebar_data` is the part that changes while the page is open, as data (the page keeps it live).

The page and browser are those of the contact's latest message that carries them (a web door stores both
on each message). Read-only here; the edits it offers go through their owners (contact fields: `leadfields.write_lead_fields`
via the console API; the lead card and meetings: the panels the leads app registers in
`registry.contact_panels`). Past conversations link to their transcript only when the agent may open them
(`can_watch`); otherwise the summary line is shown alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

from conversations.console.visibility import can_watch
from conversations.leadfields import LEAD_FIELDS, lead_details
from conversations.models import Contact, Conversation, ConversationStatus, Message, Sender
from conversations.registry import channel_specs, contact_panels
from conversations.templatetags.console_tags import phone_address

PAST_LIMIT = 20
MINE_LIMIT = 100

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def browser_name(user_agent: str) -> str:
    """ "Firefox on Windows" from a User-Agent header; "" when it names neither."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "")
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    if browser and system:
        return f"{browser} · {system}"
    return browser or system


@dataclass(frozen=True)
class PastConversation:
    conversation: Conversation
    summary: str
    openable: bool


def _place(metadata: dict[str, Any]) -> str:
    found = metadata.get("geolocation")
    if not isinstance(found, dict):
        return ""
    parts = [str(found.get(key) or "").strip() for key in ("city", "regionName", "region", "country")]
    return ", ".join(dict.fromkeys(part[:60] for part in parts if part))


def _latest(contact: Contact, key: str) -> dict[str, Any]:
    """The metadata of the contact's latest message that carries `key` (a web door's `page`, `user_agent`)."""
    found = (
        Message.objects.filter(conversation__contact=contact, sender=Sender.CONTACT, metadata__has_key=key)
        .order_by("-created")
        .values_list("metadata", flat=True)
        .first()
    )
    return found if isinstance(found, dict) else {}


def my_other_conversations(user: Any, conversation: Conversation) -> list[str]:
    """The ids of the agent's other open conversations: the conversation page follows them for unread
    counts and alerts (console.js `myMessages`)."""
    mine = Conversation.objects.filter(status=ConversationStatus.AGENT, assigned_agent_id=user.pk)
    return [str(pk) for pk in mine.exclude(pk=conversation.pk).values_list("pk", flat=True)[:MINE_LIMIT]]


def _identity(value: str) -> str:
    """A number as +E.164; anything else (a web session id, which lets its holder resume the chat) only by
    its last characters."""
    return phone_address(value) or f"…{value[-4:]}"


def contact_sidebar(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    """What the sidebar shows about the conversation's contact (template: conversations/_contact_sidebar.html)."""
    contact = conversation.contact
    metadata = contact.metadata if isinstance(contact.metadata, dict) else {}
    page = str(_latest(contact, "page").get("page") or "")
    user_agent = str(_latest(contact, "user_agent").get("user_agent") or "")
    past = (
        Conversation.objects.filter(contact=contact)
        .exclude(pk=conversation.pk)
        .select_related("summary")
        .order_by("-created")[:PAST_LIMIT]
    )
    panels: list[SafeString] = []
    for panel in contact_panels.all():
        html = panel.render(request, conversation)
        if html:
            panels.append(mark_safe(html))  # noqa: S308 - rendered by the panel's own (escaping) template
    return {
        "contact": contact,
        "fields": [(name, value) for name, value in lead_details(contact).items() if name in LEAD_FIELDS],
        "identities": [
            (channel_specs.label(identity.channel), _identity(identity.value))
            for identity in contact.identities.order_by("created")
        ],
        "consent": contact.consent_state,
        "page": page if re.match(r"^https?://", page) else "",
        "browser": browser_name(user_agent),
        "user_agent": user_agent,
        "place": _place(metadata),
        "past": [
            PastConversation(
                item,
                item.summary.summary if hasattr(item, "summary") else "",
                can_watch(request.user, item),
            )
            for item in past
        ],
        "panels": panels,
    }


def sidebar_data(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    """What the sidebar shows that the assistant (or anyone) may change while it is open, as data: the
    contact's lead fields and best name, the consent, and each panel's data (those that provide it). The
    page fetches it on `contact.changed` and sets it as text (console.js `liveSidebar`)."""
    contact = conversation.contact
    panels = {panel.name: panel.data(request, conversation) for panel in contact_panels.all() if panel.data}
    return {
        "contact": {"id": str(contact.pk), "name": str(contact), **lead_details(contact)},
        "consent": contact.consent_state,
        "panels": panels,
    }
