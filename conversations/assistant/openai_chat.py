"""The `openai-chat` engine: the same tool loop on Chat Completions, for OpenAI-compatible servers
(vLLM, llama.cpp server, Ollama). Stateless: the recent history is sent on every turn.

Given a TextStream, every call is streamed (`stream_options.include_usage` for the token counts) and its
text written there as it arrives; a completion that ends in tool calls restarts the stream.
"""

from __future__ import annotations

from typing import Any

import openai
from django.conf import settings
from openai.types.chat import ChatCompletion

from conversations.assistant import prompts
from conversations.assistant.base import (
    CallTool,
    EngineResult,
    ProviderError,
    TextStream,
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
    history_messages: int | None = None

    def __init__(self, client: openai.OpenAI | None = None, model: str | None = None) -> None:
        self.client = client or openai_client()
        self.model = model or settings.TALIA_OPENAI_MODEL

    def run(self, context: TurnContext, call_tool: CallTool, stream: TextStream | None = None) -> EngineResult:
        result = EngineResult(text="", model=self.model)
        messages: list[dict[str, Any]] = [{"role": "system", "content": prompts.instructions(context)}]
        messages += [{"role": item.role, "content": item.text} for item in context.history]
        base: dict[str, Any] = {"model": self.model}
        if context.tools:
            base["tools"] = [chat_tool(tool) for tool in context.tools]
            base["parallel_tool_calls"] = settings.TALIA_PARALLEL_TOOL_CALLS
        while True:
            message = self._create(result, stream, messages=messages, **base).choices[0].message
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
            None,
            model=self.model,
            messages=[{"role": "system", "content": instructions}, {"role": "user", "content": text}],
            response_format={"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}},
        )
        return str(completion.choices[0].message.content or "")

    def _create(self, result: EngineResult, stream: TextStream | None, **params: Any) -> Any:
        try:
            if stream is None:
                completion = self.client.chat.completions.create(**params)
            else:
                completion = self._streamed(stream, params)
        except openai.OpenAIError as exc:
            raise provider_error(exc) from exc
        if completion.usage is not None:
            result.input_tokens += completion.usage.prompt_tokens
            result.output_tokens += completion.usage.completion_tokens
        result.model = completion.model or result.model
        return completion

    def _streamed(self, stream: TextStream, params: dict[str, Any]) -> ChatCompletion:
        """The whole completion put together from its chunks, its text written to `stream` as they arrive.

        Tool calls come in pieces under `delta.tool_calls[i]`, joined by `index`. A stream that ends
        before a finish_reason (the connection dropped mid-reply) is a retryable ProviderError.
        """
        content: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finished = False
        completion_id = model = ""
        usage = None
        with self.client.chat.completions.create(
            stream=True, stream_options={"include_usage": True}, **params
        ) as chunks:
            for chunk in chunks:
                completion_id, model = chunk.id or completion_id, chunk.model or model
                usage = chunk.usage or usage
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    if choice.delta.content:
                        content.append(choice.delta.content)
                        stream.write(choice.delta.content)
                    for piece in choice.delta.tool_calls or []:
                        call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                        call["id"] = piece.id or call["id"]
                        if piece.function is not None:
                            # The name comes whole with the call's first piece (some servers repeat it).
                            call["name"] = call["name"] or piece.function.name or ""
                            call["arguments"] += piece.function.arguments or ""
                    finished = finished or choice.finish_reason is not None
        if not finished:
            raise ProviderError("The completion stream ended before the reply was complete.", retryable=True)
        if calls and content:
            stream.restart()  # text before a tool call is not the reply
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
        if calls:
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
                for _, call in sorted(calls.items())
            ]
        return ChatCompletion.model_validate(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": 0,
                "model": model or self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": usage.model_dump() if usage is not None else None,
            }
        )
