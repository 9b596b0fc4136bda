"""The two registries other apps plug into: assistant tools and channel specs.

`conversations` defines them and imports no other app; each app fills them in its AppConfig.ready().
A channel (web chat, WhatsApp, voice) is a `ChannelSpec` registered in `channel_specs` (not called
`channels`, which is Django Channels): the core validates a conversation's channel against it, takes
the console's label and icon from it and hands outbound messages to its deliverer; a channel may add
its own key figures to the staff dashboard (`figures`) and facts about a conversation to the console
(`details`). Adding a channel needs no edit and no migration in `conversations`.

A tool may declare a capability (conversations/assistant/capabilities.py): the core finds the tool for a
job by it, never by another app's tool name, and the registry holds at most one tool per capability.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import ImproperlyConfigured

from conversations.assistant.capabilities import ARGUMENTS

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise

    from conversations.models import Conversation, Message

ToolFunction = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Tool:
    """A function the assistant may call: a name, a strict JSON schema and `(conversation, **args) -> dict`."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: ToolFunction
    # What job the tool does, one of capabilities.ARGUMENTS' keys; None for a tool only models call.
    capability: str | None = None

    def __call__(self, conversation: Conversation, **arguments: Any) -> dict[str, Any]:
        return self.function(conversation, **arguments)


def check_strict_schema(name: str, schema: dict[str, Any]) -> None:
    """Strict function schemas: an object, no extra properties, every property required (recursively)."""
    if schema.get("type") != "object":
        raise ImproperlyConfigured(f"Tool {name}: parameters must be a JSON schema of type 'object'.")
    properties = schema.get("properties", {})
    if schema.get("additionalProperties") is not False:
        raise ImproperlyConfigured(f"Tool {name}: strict schemas need additionalProperties: false.")
    if sorted(schema.get("required", [])) != sorted(properties):
        raise ImproperlyConfigured(f"Tool {name}: strict schemas must list every property as required.")
    for prop_name, prop in properties.items():
        if prop.get("type") == "object" or (isinstance(prop.get("type"), list) and "object" in prop["type"]):
            check_strict_schema(f"{name}.{prop_name}", prop)


def check_capability(tool: Tool) -> None:
    """A declared capability is a known one, and the tool takes exactly the arguments the core sends for it."""
    if tool.capability is None:
        return
    expected = ARGUMENTS.get(tool.capability)
    if expected is None:
        raise ImproperlyConfigured(f"Tool {tool.name}: unknown capability {tool.capability!r}.")
    if set(tool.parameters.get("properties", {})) != expected:
        raise ImproperlyConfigured(
            f"Tool {tool.name}: capability {tool.capability!r} needs the arguments {sorted(expected)}."
        )


def find_capability(candidates: Iterable[Tool], capability: str) -> Tool | None:
    """The tool among `candidates` that declares `capability`, or None."""
    return next((tool for tool in candidates if tool.capability == capability), None)


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> Tool:
        if tool.name in self._tools and self._tools[tool.name] is not tool:
            raise ImproperlyConfigured(f"A tool named {tool.name!r} is already registered.")
        check_strict_schema(tool.name, tool.parameters)
        check_capability(tool)
        holder = self.for_capability(tool.capability) if tool.capability else None
        if holder is not None and holder.name != tool.name:
            raise ImproperlyConfigured(
                f"Tool {tool.name}: capability {tool.capability!r} is already declared by {holder.name!r}."
            )
        self._tools[tool.name] = tool
        return tool

    def unregister(self, name: str) -> Tool | None:
        """Remove a tool (tests, an app switched off); returns it so it can be registered again."""
        return self._tools.pop(name, None)

    def for_capability(self, capability: str) -> Tool | None:
        """The one registered tool that declares `capability`, or None when no installed app provides it."""
        return find_capability(self._tools.values(), capability)

    def tool(self, name: str, description: str, parameters: dict[str, Any]) -> Callable[[ToolFunction], Tool]:
        """Decorator form: `@tools.tool("set_email", "...", {...})`."""

        def decorate(function: ToolFunction) -> Tool:
            return self.register(Tool(name, description, parameters, function))

        return decorate

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def all(self) -> list[Tool]:
        return list(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools


class DeliveryError(Exception):
    """An outbound channel could not deliver a message. `permanent` says whether a retry can help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Figure:
    """One key figure a channel adds to the staff dashboard; `value` None when there is nothing to measure.

    unit: "count" (a whole number), "decimal" (one decimal, e.g. an average per day), "seconds" (a
    duration) or "rate" (a share between 0 and 1).
    """

    label: _StrOrPromise
    value: float | None
    unit: Literal["count", "decimal", "seconds", "rate"]


# A channel's own key figures for what happened in [since, until), counted by the database.
FigureSource = Callable[[datetime, datetime], list[Figure]]
# What a channel knows about one conversation that the console shows beside it (a call's status,
# duration): (label, value) pairs, already formatted for people.
DetailSource = Callable[["Conversation"], list[tuple["_StrOrPromise", str]]]

# Sends one stored outbound message through its channel; returns the provider's id for it, if any.
Deliverer = Callable[["Message"], "str | None"]
# Cuts a text into parts of at most `max_length` characters, in order.
Splitter = Callable[[str, int], list[str]]


def split_words(text: str, max_length: int) -> list[str]:
    """Parts of at most `max_length` characters, cut between words (a longer word is cut inside)."""
    if len(text) <= max_length:
        return [text]
    return textwrap.wrap(text, max_length, break_long_words=True, replace_whitespace=False) or [text[:max_length]]


@dataclass(frozen=True)
class ChannelSpec:
    """What the core needs to know about one channel ("door").

    delivery: "pull" when the visitor's own client fetches replies or gets them over TalIA's socket (web
    chat: the realtime push is the delivery, no deliverer); "push" when a provider must be called to
    deliver each outbound message (WhatsApp, voice), through `deliverer`.
    """

    name: str
    label: _StrOrPromise
    icon: str
    delivery: Literal["pull", "push"]
    deliverer: Deliverer | None = None
    # How long after the contact's last message the provider lets us write (WhatsApp: 24 h); None: always.
    reply_window: timedelta | None = None
    # The longest text one provider message may carry; longer replies are cut by `split`.
    max_length: int | None = None
    split: Splitter = split_words
    renders_links: bool = True
    renders_markdown: bool = False
    # The door shows a message's citations as source links under it (the widget), so the text need not
    # carry their addresses.
    shows_citations: bool = False
    # The door holds its request open for the assistant's reply (web REST API, voice gather).
    waits_for_reply: bool = False
    # The door can show the assistant's reply growing as the model writes it (`message.delta` pushes on
    # the conversation's group, conversations.assistant.streaming), before the stored message.
    streams_text: bool = False

    # The door can carry a file an agent attaches (conversations.attachments) to the contact.
    sends_files: bool = False
    # The channel's own figures on the staff dashboard, and its facts about a conversation in the console.
    figures: FigureSource | None = None
    details: DetailSource | None = None

    def parts(self, text: str) -> list[str]:
        """`text` cut to this channel's maximum message length (one part when it has none)."""
        return [text] if self.max_length is None else self.split(text, self.max_length)


class ChannelSpecRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, ChannelSpec] = {}

    def register(self, spec: ChannelSpec) -> ChannelSpec:
        if spec.name in self._specs and self._specs[spec.name] != spec:
            raise ImproperlyConfigured(f"A channel named {spec.name!r} is already registered.")
        if len(spec.name) > 16 or not spec.name:
            raise ImproperlyConfigured(f"Channel name {spec.name!r} must be 1 to 16 characters.")
        self._specs[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        self._specs.pop(name, None)

    def get(self, name: str) -> ChannelSpec | None:
        return self._specs.get(name)

    def all(self) -> list[ChannelSpec]:
        return list(self._specs.values())

    def names(self) -> list[str]:
        return list(self._specs)

    def choices(self) -> list[tuple[str, _StrOrPromise]]:
        return [(spec.name, spec.label) for spec in self._specs.values()]

    def label(self, name: str) -> _StrOrPromise:
        """The console's label for `name`; the raw name for a channel no longer registered."""
        spec = self._specs.get(name)
        return spec.label if spec else name

    def deliverer_for(self, name: str) -> Deliverer | None:
        spec = self._specs.get(name)
        return spec.deliverer if spec else None

    def __contains__(self, name: object) -> bool:
        return name in self._specs


@dataclass(frozen=True)
class ContactPanel:
    """A section of the console's contact sidebar that another app provides (leads: the card and meetings).

    `render(request, conversation)` returns the section's HTML (rendered from that app's own template), or
    "" to show nothing; the core never names the app. `data(request, conversation)`, when given, returns
    the same section as JSON-ready data: the console API serves it (under the panel's name) to the page,
    which updates the section live when the contact changes (`contact.changed`).
    """

    name: str
    render: Callable[[Any, Any], str]
    data: Callable[[Any, Any], dict[str, Any]] | None = None


class ContactPanelRegistry:
    def __init__(self) -> None:
        self._panels: dict[str, ContactPanel] = {}

    def register(self, panel: ContactPanel) -> ContactPanel:
        self._panels[panel.name] = panel
        return panel

    def all(self) -> list[ContactPanel]:
        return list(self._panels.values())


tools = ToolRegistry()
channel_specs = ChannelSpecRegistry()
contact_panels = ContactPanelRegistry()
