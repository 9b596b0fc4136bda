"""Redis Streams sink: every event `XADD`ed to TALIA_EVENTS_REDIS_STREAM (default `talia:events`) on the
project's Redis, trimmed to about TALIA_EVENTS_REDIS_STREAM_MAXLEN entries (`MAXLEN ~`).

Each entry's fields: `id` (the envelope id), `type`, `conversation_id` (empty when none) and `envelope`
(its JSON). A batch is one pipeline round trip. Local consumers follow with consumer groups (docs/events.md).
Personal fields are included only with TALIA_EVENTS_REDIS_PERSONAL. An empty stream name turns it off.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.conf import settings

from talia.integrations import sinks
from talia.integrations.sinks import Envelope, Sink
from talia.redis_client import get_redis

KEY = "redis-stream"


def fields(envelope: Envelope) -> dict[str, str | bytes]:
    return {
        "id": str(envelope.id),
        "type": envelope.type,
        "conversation_id": envelope.conversation_id or "",
        "envelope": envelope.to_json(),
    }


class RedisStreamSink(Sink):
    key = KEY

    def __init__(self, stream: str, maxlen: int, personal_data: bool) -> None:
        self.stream = stream
        self.maxlen = maxlen
        self.personal_data = personal_data
        self.label = f"Redis stream {stream}"

    def deliver(self, envelope: Envelope) -> int | None:
        get_redis().xadd(self.stream, fields(envelope), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        return None

    def deliver_many(self, envelopes: Sequence[Envelope]) -> Sequence[Exception | int | None]:
        pipeline = get_redis().pipeline(transaction=False)
        for envelope in envelopes:
            pipeline.xadd(self.stream, fields(envelope), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        try:
            results = pipeline.execute(raise_on_error=False)
        except Exception as error:  # noqa: BLE001 - Redis down: every envelope of the batch failed alike
            return [error] * len(envelopes)
        return [result if isinstance(result, Exception) else None for result in results]


@sinks.provider
def redis_stream_sinks() -> Iterator[Sink]:
    if settings.TALIA_EVENTS_REDIS_STREAM:
        yield RedisStreamSink(
            settings.TALIA_EVENTS_REDIS_STREAM,
            settings.TALIA_EVENTS_REDIS_STREAM_MAXLEN,
            settings.TALIA_EVENTS_REDIS_PERSONAL,
        )
