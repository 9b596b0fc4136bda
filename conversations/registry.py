"""The two registries other apps plug into: assistant tools and outbound channel deliverers.

`conversations` defines them and imports no other app; each app fills them in its AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from conversations.models import Conversation, Message

ToolFunction = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Tool:
    """A function the assistant may call: a name, a strict JSON schema and `(conversation, **args) -> dict`."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: ToolFunction

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


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> Tool:
        if tool.name in self._tools and self._tools[tool.name] is not tool:
            raise ImproperlyConfigured(f"A tool named {tool.name!r} is already registered.")
        check_strict_schema(tool.name, tool.parameters)
        self._tools[tool.name] = tool
        return tool

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


# Sends one stored outbound message through its channel; returns the provider's id for it, if any.
Deliverer = Callable[[Message], "str | None"]


class ChannelRegistry:
    def __init__(self) -> None:
        self._deliverers: dict[str, Deliverer] = {}

    def register(self, channel: str, deliverer: Deliverer) -> None:
        if channel in self._deliverers and self._deliverers[channel] is not deliverer:
            raise ImproperlyConfigured(f"A deliverer for channel {channel!r} is already registered.")
        self._deliverers[channel] = deliverer

    def unregister(self, channel: str) -> None:
        self._deliverers.pop(channel, None)

    def deliverer_for(self, channel: str) -> Deliverer | None:
        return self._deliverers.get(channel)


tools = ToolRegistry()
channels = ChannelRegistry()
