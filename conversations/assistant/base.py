"""What every engine receives and returns, and the one error type provider clients raise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from conversations.models import Contact, Conversation, Message
from conversations.registry import Tool


@dataclass(frozen=True)
class HistoryItem:
    """One earlier message as the model sees it: the contact is the user, everyone else the assistant."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class TurnContext:
    conversation: Conversation
    contact: Contact
    message: Message  # the inbound message this turn answers
    locale: str
    history: list[HistoryItem]  # the last messages, oldest first, ending with `message`
    # What the model has not seen yet when it continues from `previous_response_id`: every message after
    # its last reply (other contact messages, agent messages), ending with `message`.
    unseen: list[HistoryItem]
    previous_response_id: str
    tools: list[Tool]
    # Metadata of the assistant's previous reply in this conversation (the offline engine keeps its
    # dialogue state there), empty if there is none.
    last_reply_metadata: dict[str, Any]


@dataclass(frozen=True)
class ToolInvocation:
    call_id: str
    name: str
    arguments: str  # the raw JSON text the model produced


# Runs one tool call and returns the output text handed back to the model (JSON).
CallTool = Callable[[ToolInvocation], str]


class TextStream(Protocol):
    """Where a model engine writes the reply's text as the model produces it (see assistant.streaming).

    The text written since the last `restart()` is the reply, in order; `restart()` says that what was
    written so far was not (the model went on to call tools). Engines without a model ignore it.
    """

    def write(self, text: str) -> None: ...

    def restart(self) -> None: ...


@dataclass
class EngineResult:
    text: str
    model: str = ""
    response_id: str = ""
    rounds: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    # Stored on the reply message (citations, what the offline engine asked for...).
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """A conversation summed up for the agent or the record: a few sentences and a few topics."""

    text: str
    topics: list[str]
    engine: str  # the engine that wrote it, "extractive" when no model did


class Engine(Protocol):
    name: str  # recorded on runs and summaries; callers never branch on it
    # Whether `structured()` can work (a model behind it); callers use their rule-based fallback when not.
    writes_structured: bool
    # How many of the conversation's last messages the turn reads into `TurnContext.history`; None:
    # TALIA_HISTORY_MESSAGES (a model reads them all; the offline engine needs only the last few).
    history_messages: int | None

    def run(self, context: TurnContext, call_tool: CallTool, stream: TextStream | None = None) -> EngineResult: ...

    def structured(self, instructions: str, text: str, name: str, schema: dict[str, Any]) -> str:
        """JSON text following `schema` for `text` (model engines; the offline engine has no model and
        raises ProviderError). Raises ProviderError."""
        ...


class ProviderError(Exception):
    """A language-model provider failed. `retryable` says whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
        code: str = "",
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status  # the HTTP status, when the provider answered
        self.code = code  # the provider's error code, if any


class ToolRoundsExceeded(Exception):
    """The model kept calling tools past TALIA_MAX_TOOL_ROUNDS."""
