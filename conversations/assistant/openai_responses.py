"""The `openai` engine: the Responses API with function tools, chained by previous_response_id.

Given a TextStream, every call is streamed and its text written there as it arrives; a response that
ends in tool calls restarts the stream, so what remains written is the final reply's text.
"""

from __future__ import annotations

import logging
from typing import Any

import openai
from django.conf import settings

from conversations.assistant import prompts
from conversations.assistant.base import (
    CallTool,
    EngineResult,
    HistoryItem,
    ProviderError,
    TextStream,
    ToolInvocation,
    ToolRoundsExceeded,
    TurnContext,
)
from conversations.assistant.client import lost_previous_response, openai_client, provider_error
from conversations.registry import Tool

logger = logging.getLogger("talia.assistant")


def function_tool(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": True,
    }


def message_items(history: list[HistoryItem]) -> list[dict[str, Any]]:
    return [{"role": item.role, "content": item.text} for item in history]


class ResponsesEngine:
    name = "openai"
    writes_structured = True
    history_messages: int | None = None

    def __init__(self, client: openai.OpenAI | None = None, model: str | None = None) -> None:
        self.client = client or openai_client()
        self.model = model or settings.TALIA_OPENAI_MODEL

    def run(self, context: TurnContext, call_tool: CallTool, stream: TextStream | None = None) -> EngineResult:
        result = EngineResult(text="", model=self.model)
        base: dict[str, Any] = {"model": self.model, "instructions": prompts.instructions(context), "store": True}
        if context.tools:
            base["tools"] = [function_tool(tool) for tool in context.tools]
            base["parallel_tool_calls"] = settings.TALIA_PARALLEL_TOOL_CALLS
        response = None
        if context.previous_response_id:
            try:
                response = self._create(
                    result,
                    stream,
                    input=message_items(context.unseen),
                    previous_response_id=context.previous_response_id,
                    **base,
                )
            except ProviderError as exc:
                if not lost_previous_response(exc):
                    raise
                logger.info(
                    "Response %s is gone; rebuilding the turn from stored messages", context.previous_response_id
                )
        if response is None:
            response = self._create(result, stream, input=message_items(context.history), **base)

        while calls := [item for item in response.output if item.type == "function_call"]:
            if result.rounds >= settings.TALIA_MAX_TOOL_ROUNDS:
                raise ToolRoundsExceeded(f"Still calling tools after {result.rounds} rounds")
            result.rounds += 1
            outputs = [
                {
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": call_tool(ToolInvocation(call.call_id, call.name, call.arguments)),
                }
                for call in calls
            ]
            response = self._create(result, stream, input=outputs, previous_response_id=response.id, **base)

        result.text = response.output_text.strip()
        result.response_id = response.id
        result.model = response.model or self.model
        return result

    def structured(self, instructions: str, text: str, name: str, schema: dict[str, Any]) -> str:
        """One stateless call whose answer is JSON text following `schema` (strict structured output)."""
        response = self._create(
            EngineResult(text=""),
            None,
            model=self.model,
            instructions=instructions,
            input=text,
            store=False,
            text={"format": {"type": "json_schema", "name": name, "schema": schema, "strict": True}},
        )
        return str(response.output_text)

    def _create(self, result: EngineResult, stream: TextStream | None, **params: Any) -> Any:
        try:
            response = self.client.responses.create(**params) if stream is None else self._streamed(stream, params)
        except openai.OpenAIError as exc:
            raise provider_error(exc) from exc
        if response.usage is not None:
            result.input_tokens += response.usage.input_tokens
            result.output_tokens += response.usage.output_tokens
        return response

    def _streamed(self, stream: TextStream, params: dict[str, Any]) -> Any:
        """The finished response, its text written to `stream` as the events arrive.

        A stream that ends without its final event (the connection dropped mid-reply) is a retryable
        ProviderError, never a partial response.
        """
        final = None
        wrote = False
        with self.client.responses.create(stream=True, **params) as events:
            for event in events:
                if event.type == "response.output_text.delta":
                    stream.write(event.delta)
                    wrote = True
                elif event.type in ("response.completed", "response.incomplete"):
                    final = event.response
                elif event.type == "response.failed":
                    failure = event.response.error
                    raise ProviderError(
                        f"OpenAI response failed: {failure.message if failure else 'no reason given'}",
                        retryable=True,
                        code=failure.code if failure else "",
                    )
                elif event.type == "error":
                    raise ProviderError(f"OpenAI stream error: {event.message}", retryable=True, code=event.code or "")
        if final is None:
            raise ProviderError("The response stream ended before the response was complete.", retryable=True)
        if wrote and any(item.type == "function_call" for item in final.output):
            stream.restart()  # text before a tool call is not the reply
        return final
