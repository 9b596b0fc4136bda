"""Runs the tool calls an engine asks for and stores each one as a ToolCall."""

from __future__ import annotations

import json
import logging
from typing import Any

from conversations.assistant.base import ToolInvocation
from conversations.assistant.tools import ToolError
from conversations.models import AssistantRun, Conversation, ToolCall
from conversations.registry import ToolRegistry, tools

logger = logging.getLogger("talia.assistant")


class ToolExecutor:
    """Callable handed to an engine: one invocation in, the output text for the model out.

    Never raises for a bad call: unknown tools, malformed arguments and refused values all come back as
    `{"ok": false, "error": ...}` so the model can recover. A call id already executed in this run (a
    turn resumed after a crash) returns its stored output instead of acting twice.
    """

    def __init__(self, run: AssistantRun, registry: ToolRegistry = tools) -> None:
        self.run = run
        self.registry = registry

    def __call__(self, invocation: ToolInvocation) -> str:
        done = ToolCall.objects.filter(run=self.run, call_id=invocation.call_id).first()
        if done is not None:
            return json.dumps(done.output, ensure_ascii=False)
        arguments, output = self._execute(invocation)
        status = ToolCall.Status.OK if output.get("ok") else ToolCall.Status.ERROR
        ToolCall.objects.create(
            run=self.run,
            call_id=invocation.call_id,
            name=invocation.name[:100],
            arguments=arguments,
            output=output,
            status=status,
        )
        logger.info("Tool %s(%s) -> %s", invocation.name, invocation.call_id, status)
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
