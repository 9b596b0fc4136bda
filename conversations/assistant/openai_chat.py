"""The `openai-chat` engine: the same tool loop on Chat Completions, for OpenAI-compatible servers
(vLLM, llama.cpp server, Ollama). Stateless: the recent history is sent on every turn."""

from __future__ import annotations

from typing import Any

import openai
from django.conf import settings

from conversations.assistant import prompts
from conversations.assistant.base import (
    CallTool,
    EngineResult,
    ToolInvocation,
    ToolRoundsExceeded,
    TurnContext,
)
from conversations.assistant.client import openai_client, provider_error
from conversations.registry import Tool


def chat_tool(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            "strict": True,
        },
    }


class ChatEngine:
    name = "openai-chat"
    writes_structured = True

    def __init__(self, client: openai.OpenAI | None = None, model: str | None = None) -> None:
        self.client = client or openai_client()
        self.model = model or settings.TALIA_OPENAI_MODEL

    def run(self, context: TurnContext, call_tool: CallTool) -> EngineResult:
        result = EngineResult(text="", model=self.model)
        messages: list[dict[str, Any]] = [{"role": "system", "content": prompts.instructions(context)}]
        messages += [{"role": item.role, "content": item.text} for item in context.history]
        base: dict[str, Any] = {"model": self.model}
        if context.tools:
            base["tools"] = [chat_tool(tool) for tool in context.tools]
            base["parallel_tool_calls"] = settings.TALIA_PARALLEL_TOOL_CALLS
        while True:
            message = self._create(result, messages=messages, **base).choices[0].message
            if not message.tool_calls:
                result.text = (message.content or "").strip()
                return result
            if result.rounds >= settings.TALIA_MAX_TOOL_ROUNDS:
                raise ToolRoundsExceeded(f"Still calling tools after {result.rounds} rounds")
            result.rounds += 1
            messages.append(
                {
                    "role": "assistant",
                    "content": message.content,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.function.name, "arguments": call.function.arguments},
                        }
                        for call in message.tool_calls
                    ],
                }
            )
            for call in message.tool_calls:
                output = call_tool(ToolInvocation(call.id, call.function.name, call.function.arguments))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": output})

    def structured(self, instructions: str, text: str, name: str, schema: dict[str, Any]) -> str:
        """One call whose answer is JSON text following `schema` (strict structured output)."""
        completion = self._create(
            EngineResult(text=""),
            model=self.model,
            messages=[{"role": "system", "content": instructions}, {"role": "user", "content": text}],
            response_format={"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}},
        )
        return str(completion.choices[0].message.content or "")

    def _create(self, result: EngineResult, **params: Any) -> Any:
        try:
            completion = self.client.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            raise provider_error(exc) from exc
        if completion.usage is not None:
            result.input_tokens += completion.usage.prompt_tokens
            result.output_tokens += completion.usage.completion_tokens
        result.model = completion.model or result.model
        return completion
