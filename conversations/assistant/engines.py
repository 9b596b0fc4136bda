"""Which engine answers: chosen by TALIA_LLM_ENGINE, never by `if test:`."""

from __future__ import annotations

from django.conf import settings

from conversations.assistant.base import Engine


def engine_class(name: str | None = None) -> type[Engine]:
    """The configured engine's class: what it can do (`writes_structured`) without building a client."""
    name = name or settings.TALIA_LLM_ENGINE
    if name == "openai":
        from conversations.assistant.openai_responses import ResponsesEngine

        return ResponsesEngine
    if name == "openai-chat":
        from conversations.assistant.openai_chat import ChatEngine

        return ChatEngine
    if name == "offline":
        from conversations.assistant.offline import OfflineEngine

        return OfflineEngine
    raise ValueError(f"Unknown assistant engine {name!r}")


def get_engine(name: str | None = None) -> Engine:
    return engine_class(name)()
