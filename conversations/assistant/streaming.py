"""The assistant's reply shown while the model writes it, on the doors that can show it.

A door says it can (ChannelSpec.streams_text: the web widget's socket) and TALIA_STREAM_REPLIES leaves it
on; the turn then hands a ReplyStream to the model engine, which writes the reply's text into it as it
arrives. The stream publishes `message.delta` events to the conversation's group: the id the reply will
be stored under (`stream`), a `seq` counting from 1, and the new text.

Invariants:
- Deltas are a preview, never stored. The reply is stored whole, exactly as without streaming, and its
  `message.new` (published after commit, so after every delta of this process) is the truth: a client
  that missed a delta, or got one late, waits for it.
- What the deltas add up to since the last `reset` is the reply's text: leading and trailing whitespace
  (which the turn strips before storing) is held back, and text the model wrote before calling tools is
  withdrawn with a `reset`.
- A turn that ends without this reply (a provider failure, its retry, the fallback message) withdraws
  what was shown with an empty `reset`, so nothing half-written stays on screen.
- Pieces are coalesced, at most one publish per PUBLISH_INTERVAL_S (the first at once): a reply of a
  thousand tokens is a few dozen pushes on Redis, not a thousand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

from django.conf import settings

from conversations import realtime
from conversations.models import Conversation
from conversations.registry import channel_specs

PUBLISH_INTERVAL_S = 0.05


def streams_replies(conversation: Conversation) -> bool:
    """Whether the assistant's replies in `conversation` are streamed to the contact as they are written."""
    spec = channel_specs.get(conversation.channel)
    return bool(settings.TALIA_STREAM_REPLIES and spec is not None and spec.streams_text)


class ReplyStream:
    """The TextStream (assistant.base) a turn hands to its engine; see the module docstring."""

    def __init__(
        self,
        conversation: Conversation,
        reply_id: UUID,
        *,
        interval: float = PUBLISH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conversation = conversation
        self.reply_id = reply_id
        self.interval = interval
        self.clock = clock
        self.seq = 0
        self.pending = ""  # written, not published yet (trailing whitespace waits here for what follows)
        self.shown = False  # the client shows some text of this stream now
        self.reset = False  # the next publish drops what was shown
        self.last_publish = float("-inf")

    def write(self, text: str) -> None:
        if not self.shown and not self.pending:
            text = text.lstrip()  # the stored reply is stripped
        self.pending += text
        if self.clock() - self.last_publish >= self.interval:
            self._flush()

    def restart(self) -> None:
        """What was written is not the reply (the model went on to call tools): withdraw it."""
        self.pending = ""
        if self.shown:
            self.shown, self.reset = False, True

    def finish(self, *, kept: bool) -> None:
        """The turn is over: show the rest of the reply when it is `kept` (stored next), else withdraw it."""
        if kept:
            self._flush()
        else:
            self.restart()
            if self.reset:
                self._publish("")

    def _flush(self) -> None:
        text = self.pending.rstrip()
        if text:
            self.pending = self.pending[len(text) :]
            self._publish(text)

    def _publish(self, text: str) -> None:
        self.seq += 1
        event = realtime.message_delta(self.conversation.pk, self.reply_id, self.seq, text, self.reset)
        realtime.publish([self.conversation.group_name], event)
        self.shown = bool(text) or (self.shown and not self.reset)
        self.reset = False
        self.last_publish = self.clock()
