"""Tool capabilities: the registry finds a tool by the job it declares, and the core names no other app's tool.

The offline engine is run through the real turn with the global registry; tests that take an app's tools
away unregister them for the test only and register them again after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from conversations.assistant import capabilities
from conversations.assistant.tools import CORE_TOOLS
from conversations.models import Conversation, ToolCall
from conversations.registry import Tool, ToolRegistry, tools
from conversations.tests.test_offline_engine import Visitor, says
from leads.models import ScheduledEvent

QUERY = {
    "type": "object",
    "properties": {"query": {"type": "string"}},
    "required": ["query"],
    "additionalProperties": False,
}


def knowledge_tool(name: str, results: list[dict[str, str]] | None = None) -> Tool:
    def search(conversation: Conversation, query: str) -> dict[str, Any]:
        return {"ok": True, "results": results or []}

    return Tool(name, "Search.", QUERY, search, capability=capabilities.SEARCH_KNOWLEDGE)


# --- The registry ---------------------------------------------------------------------------------------


def test_a_tool_is_found_by_its_capability():
    registry = ToolRegistry()
    tool = registry.register(knowledge_tool("ask_docs"))
    registry.register(Tool("plain", "No capability.", QUERY, lambda conversation, **kw: {}))

    assert registry.for_capability(capabilities.SEARCH_KNOWLEDGE) is tool
    assert registry.for_capability(capabilities.BOOK_MEETING) is None

    assert registry.unregister("ask_docs") is tool
    assert registry.for_capability(capabilities.SEARCH_KNOWLEDGE) is None


def test_two_tools_with_the_same_capability_are_refused():
    registry = ToolRegistry()
    first = registry.register(knowledge_tool("ask_docs"))
    registry.register(first)  # the same tool again (a second ready()) is fine

    with pytest.raises(ImproperlyConfigured, match="already declared by 'ask_docs'"):
        registry.register(knowledge_tool("search_web"))
    assert registry.get("search_web") is None


def test_a_capability_must_be_known_and_take_its_documented_arguments():
    with pytest.raises(ImproperlyConfigured, match="unknown capability"):
        ToolRegistry().register(Tool("x", "", QUERY, lambda conversation, **kw: {}, capability="read_minds"))
    with pytest.raises(ImproperlyConfigured, match="needs the arguments"):
        ToolRegistry().register(Tool("x", "", QUERY, lambda conversation, **kw: {}, capability=capabilities.CLOSE_LEAD))


def test_the_installed_apps_provide_every_capability():
    for capability in capabilities.ARGUMENTS:
        assert tools.for_capability(capability) is not None, capability
    search = tools.for_capability(capabilities.SEARCH_KNOWLEDGE)
    booking = tools.for_capability(capabilities.BOOK_MEETING)
    closing = tools.for_capability(capabilities.CLOSE_LEAD)
    assert search is not None and search.function.__module__ == "rag.tools"
    assert booking is not None and booking.function.__module__ == "leads.tools"
    assert closing is not None and closing.function.__module__ == "leads.tools"


def test_the_core_names_no_tool_of_another_app():
    """conversations' code and prompts find other apps' tools by capability only."""
    core_names = {tool.name for tool in CORE_TOOLS}
    foreign = {tool.name for tool in tools.all()} - core_names
    assert {"search_knowledge", "schedule_meeting", "close_lead"} <= foreign
    root = Path(__file__).resolve().parents[1]
    # capabilities.py spells the capabilities, two of which share their value with the tool providing them.
    sources = [
        path
        for path in root.rglob("*.py")
        if "tests" not in path.relative_to(root).parts and path != root / "assistant" / "capabilities.py"
    ]
    assert root / "assistant" / "offline" / "__init__.py" in sources
    sources += sorted((root / "assistant" / "prompts").glob("*.md"))
    for path in sources:
        text = path.read_text()
        for name in foreign:
            assert not re.search(rf"[\"'`]{re.escape(name)}[\"'`]", text), f"{path} names {name}"


# --- The offline engine ---------------------------------------------------------------------------------


@pytest.fixture
def without(request: pytest.FixtureRequest) -> Iterator[None]:
    """Take the tools declaring the given capabilities out of the global registry for one test."""
    removed: list[Tool] = []
    try:
        for capability in request.param:
            tool = tools.for_capability(capability)
            assert tool is not None
            tools.unregister(tool.name)
            removed.append(tool)
        yield
    finally:
        for tool in removed:
            tools.register(tool)


FOREIGN_CAPABILITIES = (capabilities.SEARCH_KNOWLEDGE, capabilities.BOOK_MEETING, capabilities.CLOSE_LEAD)


@pytest.mark.parametrize("without", [FOREIGN_CAPABILITIES], indirect=True)
def test_without_the_knowledge_and_leads_tools_the_engine_still_answers_politely(db, without):
    assert all(tools.for_capability(capability) is None for capability in FOREIGN_CAPABILITIES)
    ana = Visitor("session-capab-es-1", "es")
    says(ana, "Hola")
    says(ana, "Sí, de acuerdo")
    says(ana, "Ana Pérez")
    says(ana, "ana.perez@example.com")
    says(ana, "600 123 456")

    reply = says(ana, "Acme")  # the lead is complete: no lead card to close, thanks all the same
    assert reply.text.startswith("¡Gracias, Ana! Ya tengo todo lo que necesito")

    reply = says(ana, "¿Tenéis integración con SAP?")  # no knowledge base: say so, offer a person
    assert reply.text == "Lo siento, no tengo esa información. ¿Quieres que te pase con una persona del equipo?"

    reply = says(ana, "No, gracias. ¿Podemos hacer una reunión el martes a las 10?")  # no booking: noted
    assert "Apunto que te viene bien el martes " in reply.text
    assert "a las 10:00. El equipo te confirmará la cita." in reply.text

    called = set(ToolCall.objects.filter(run__conversation=ana.conversation).values_list("name", flat=True))
    assert called == {"record_consent", "set_full_name", "set_email", "set_phone_number", "set_company_name"}
    assert not ToolCall.objects.filter(run__conversation=ana.conversation, status=ToolCall.Status.ERROR).exists()
    assert not ScheduledEvent.objects.filter(contact=ana.contact).exists()


def test_the_engine_uses_whatever_tool_declares_the_capability(db):
    source = {"url": "https://example.com/sap", "title": "SAP", "snippet": "Sí: conectamos con SAP Business One."}
    ana = Visitor("session-capab-es-2", "es", knowledge_tool("ask_docs", [source]))

    reply = says(ana, "¿Tenéis integración con SAP?")

    assert "Esto es lo que he encontrado: Sí: conectamos con SAP Business One." in reply.text
    assert reply.metadata["citations"] == [{"url": "https://example.com/sap", "title": "SAP"}]
    assert [call.name for call in ana.tool_calls()] == ["ask_docs"]


@pytest.mark.parametrize("without", [[capabilities.SEARCH_KNOWLEDGE]], indirect=True)
@pytest.mark.parametrize("locale", ["es", "en"])
def test_the_model_prompt_names_whatever_tool_declares_the_capability(without, locale):
    from conversations.assistant.prompts import prompt_text

    assert "`search_knowledge`" in prompt_text(locale)  # nobody provides it: the capability's own name
    tools.register(knowledge_tool("ask_docs"))
    try:
        text = prompt_text(locale)
    finally:
        tools.unregister("ask_docs")

    assert "`ask_docs`" in text and "search_knowledge" not in text
    assert "{tool:" not in text
    assert "`schedule_meeting`" in text  # leads' tool for book_meeting, by its registered name


# --- Engines --------------------------------------------------------------------------------------------


def test_engines_declare_whether_they_write_structured_output():
    from conversations.assistant.offline import OfflineEngine
    from conversations.assistant.openai_chat import ChatEngine
    from conversations.assistant.openai_responses import ResponsesEngine

    assert OfflineEngine.writes_structured is False
    assert ChatEngine.writes_structured is True
    assert ResponsesEngine.writes_structured is True


def test_no_code_branches_on_an_engine_name():
    """What an engine can do comes from the engine protocol, not from comparing its name."""
    root = Path(__file__).resolve().parents[2]
    for app in ("conversations", "leads", "rag"):
        for path in (root / app).rglob("*.py"):
            if "tests" in path.relative_to(root / app).parts:
                continue
            source = path.read_text()
            assert not re.search(r"engine\.name\s*[!=]=", source), f"{path} branches on an engine's name"
            # The setting names the engine; only engines.py reads it to choose one.
            if path.name != "engines.py":
                assert not re.search(r"TALIA_LLM_ENGINE\s*[!=]=", source), f"{path} branches on the engine setting"
