"""Runs the tool calls an engine asks for and stores each one as a ToolCall."""

from __future__ import annotations

import json
import logging
from typing import Any

from conversations.assistant import statements
from conversations.assistant.base import ToolInvocation
from conversations.assistant.quoting import unquoted
from conversations.assistant.tools import ToolError
from conversations.models import AssistantRun, Conversation, ToolCall
from conversations.registry import ToolRegistry, tools
from talia import metrics

logger = logging.getLogger("talia.assistant")


class ToolExecutor:
    """Callable handed to an engine: one invocation in, the output text for the model out.

    Never raises for a bad call: unknown tools, malformed arguments and refused values all come back as
    `{"ok": false, "error": ...}` so the model can recover. A call id already executed in this run (a
    turn resumed after a crash) returns its stored output instead of acting twice.
    """

    def __init__(self, run: AssistantRun, registry: ToolRegistry = tools, *, first_claim: bool = False) -> None:
        self.run = run
        self.registry = registry
        # The run's first execution: no call of it can be stored yet, so none is looked up.
        self.first_claim = first_claim
        self.outputs: list[dict[str, Any]] = []
        # The conversation as the claim read it, for the first call; later calls read it again, since
        # an earlier call may have changed it.
        self._claimed: Conversation | None = run.conversation if first_claim else None

    def citations(self) -> list[dict[str, str]]:
        """The sources this execution's tools looked up (an output's `citations`), each page once."""
        return citations_of(self.outputs)

    def __call__(self, invocation: ToolInvocation) -> str:
        if not self.first_claim:
            done = ToolCall.objects.filter(run=self.run, call_id=invocation.call_id).first()
            if done is not None:
                if done.status == ToolCall.Status.OK and isinstance(done.output, dict):
                    self.outputs.append(done.output)
                return json.dumps(done.output, ensure_ascii=False)
        arguments, output = self._execute(invocation)
        status = ToolCall.Status.OK if output.get("ok") else ToolCall.Status.ERROR
        metrics.tool_called(invocation.name, invocation.name in self.registry, status)
        statements.insert(  # ToolCall.objects.create() without building its INSERT through the ORM
            ToolCall(
                run=self.run,
                call_id=invocation.call_id,
                name=invocation.name[:100],
                arguments=arguments,
                output=output,
                status=status,
            )
        )
        # A refusal is worth a line; a call that worked is in the ToolCall row (a log line per call cost
        # the offline turn about a twentieth of its CPU, through the area's locking file handler).
        logger.log(
            logging.DEBUG if status == ToolCall.Status.OK else logging.INFO,
            "Tool %s(%s) -> %s",
            invocation.name,
            invocation.call_id,
            status,
        )
        if status == ToolCall.Status.OK:
            self.outputs.append(output)
        return json.dumps(output, ensure_ascii=False)

    def _execute(self, invocation: ToolInvocation) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            arguments = json.loads(invocation.arguments or "{}")
        except json.JSONDecodeError:
            return {"raw": invocation.arguments}, {"ok": False, "error": "The arguments are not valid JSON."}
        if not isinstance(arguments, dict):
            return {"raw": arguments}, {"ok": False, "error": "The arguments must be a JSON object."}
        tool = self.registry.get(invocation.name)
        if tool is None:
            return arguments, {"ok": False, "error": f"There is no tool named {invocation.name!r}."}
        conversation, self._claimed = self._claimed, None
        if conversation is None:
            conversation = Conversation.objects.select_related("contact").get(pk=self.run.conversation_id)
        try:
            output = tool(conversation, **arguments)
        except ToolError as exc:
            return arguments, {"ok": False, "error": str(exc)}
        except TypeError as exc:
            return arguments, {"ok": False, "error": f"Wrong arguments for {tool.name}: {exc}."}
        except Exception:
            logger.exception("Tool %s crashed on run %s", tool.name, self.run.pk)
            return arguments, {"ok": False, "error": "The tool failed; tell the contact and offer a person."}
        return arguments, {"ok": True, **output}


def citations_of(outputs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The pages named in tool outputs' `citations`, each once, in order; titles unquoted for people."""
    pages: dict[str, dict[str, str]] = {}
    for output in outputs:
        for citation in output.get("citations") or [] if isinstance(output, dict) else []:
            if isinstance(citation, dict) and isinstance(citation.get("url"), str):
                title = unquoted(str(citation.get("title") or ""))  # quoted for the model, plain for people
                pages.setdefault(citation["url"], {"url": citation["url"], "title": title})
    return list(pages.values())
