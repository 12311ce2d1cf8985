"""The event stream as server-sent events: a catch-up subscription over HTTP.

A client names the last stream id it has seen (the ``Last-Event-ID`` header
that browsers resend on reconnect, or an ``after`` query parameter) and
receives every later event, each with its stream id as the SSE id. Every
response ends after a bounded time, so a long-lived client reconnects now
and then and misses nothing.

The framing and the loop here take the store read as a function, so they
perform no I/O of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import orjson

from damba.errors import DambaError
from damba.queries import check_stream_id

log = logging.getLogger("damba.web")

# The path under /api/v1.
STREAM_PATH = "/events/stream"
# Seconds without an event before the server sends a comment line. Proxies
# then keep the connection open, and a write to a client that has gone
# fails, which is the only way a WSGI app notices it and frees its thread.
HEARTBEAT_SECONDS = 5
# Milliseconds a browser waits before it reconnects after the stream ends.
RETRY_MS = 2000
# Events read per XREAD, and the longest an XREAD waits for one, in ms.
PAGE = 100
BLOCK_MS = 1000
# Seconds a client that met a busy server should wait before retrying.
BUSY_RETRY_SECONDS = 5


def format_event(event: dict[str, Any]) -> bytes:
    """Frame one event as an SSE message whose id is its stream id."""
    return b"id: %s\ndata: %s\n\n" % (event["id"].encode(), orjson.dumps(event))


def format_comment(text: str) -> bytes:
    """Frame a comment line, which clients ignore; ``text`` must be one line."""
    return b": %s\n\n" % text.encode()


def format_error(error: DambaError) -> bytes:
    """Frame an error as an SSE message of type ``stream-error``."""
    return b"event: stream-error\ndata: %s\n\n" % orjson.dumps(error.to_body())


def start_id(last_event_id: str | None, after: str | None) -> str | None:
    """Choose where a subscription starts: Last-Event-ID wins over ``after``.

    Returns None when neither is given, which means: from the newest event
    on. A malformed id raises DambaError.
    """
    if last_event_id:
        check_stream_id("Last-Event-ID", last_event_id.strip())
        return last_event_id.strip()
    if after is not None:
        if after == "-":
            return "0-0"
        check_stream_id("after", after)
        return after
    return None


async def never() -> None:
    """Wait forever, as the disconnect signal of a server that cannot report one."""
    await asyncio.get_running_loop().create_future()


def block_ms(redis_timeout: float) -> int:
    """Return how long one XREAD BLOCK of a stream waits, in milliseconds.

    The wait ends well before the Redis client's socket timeout (seconds),
    and often enough for the loop to notice a client that has gone.
    """
    return max(100, min(BLOCK_MS, int(redis_timeout * 500)))


def streams_busy(limit: int) -> DambaError:
    """Log and return the error for a stream past the worker's ``limit`` of streams."""
    log.warning("event stream rejected: %d streams already open", limit)
    return DambaError(
        "streams_busy",
        f"This worker already serves {limit} event streams, the "
        f"limit set by DAMBA_STREAM_CLIENTS; retry in {BUSY_RETRY_SECONDS} s.",
    )


class Subscription:
    """The state of one event-stream response, and the frames it sends.

    The WSGI body drives it with blocking reads and the ASGI body with
    awaited ones. Each sends the frames returned here, so the two apps send
    the same bytes. ``clock`` returns seconds.
    """

    def __init__(
        self, after: str, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.after = after
        self.seconds = seconds
        self.clock = clock
        self.deadline = clock() + seconds
        self.quiet_since = clock()

    def opening(self) -> list[bytes]:
        """Start the clock and return the frames that open the response."""
        self.deadline = self.clock() + self.seconds
        self.quiet_since = self.clock()
        return [
            b"retry: %d\n\n" % RETRY_MS,
            format_comment(f"following the event stream after {self.after}"),
        ]

    def running(self) -> bool:
        """Tell whether the response has time left before it closes."""
        return self.clock() < self.deadline

    def receive(self, reply: dict[str, Any]) -> list[bytes]:
        """Advance past a follow_events reply and frame its events, or a heartbeat."""
        frames = [format_event(event) for event in reply["events"]]
        self.after = reply["last_id"]
        if frames:
            self.quiet_since = self.clock()
        elif self.clock() - self.quiet_since >= HEARTBEAT_SECONDS:
            frames.append(format_comment("heartbeat"))
            self.quiet_since = self.clock()
        return frames

    def fail(self, error: DambaError) -> bytes:
        """Log a failed read and return the frame that ends the response with it."""
        log.error("event stream after %s failed: %s", self.after, error.message)
        return format_error(error)

    def closing(self) -> bytes:
        """Return the comment that ends a response whose time is up."""
        return format_comment(
            f"closing after {self.seconds:g} s; reconnect with Last-Event-ID {self.after}"
        )


class EventStream:
    """The body of one WSGI event-stream response, as an iterable of byte chunks.

    ``follow(after)`` waits briefly for events after a stream id and returns
    a reply of ``queries.follow_events``. ``release`` runs once when the
    server closes the response, whether the client stayed to the end or not.
    ``client_gone()`` returns whether the client has closed its connection,
    so the stream ends without waiting for a write to fail.
    """

    def __init__(
        self,
        follow: Callable[[str], dict[str, Any]],
        after: str,
        seconds: float,
        release: Callable[[], None] = lambda: None,
        client_gone: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.follow = follow
        self.subscription = Subscription(after, seconds, clock)
        self.client_gone = client_gone
        self._release = release
        self._released = False

    def __iter__(self) -> Iterator[bytes]:
        subscription = self.subscription
        yield from subscription.opening()
        while subscription.running():
            if self.client_gone():
                return
            try:
                reply = self.follow(subscription.after)
            except DambaError as error:
                yield subscription.fail(error)
                return
            yield from subscription.receive(reply)
        yield subscription.closing()

    def close(self) -> None:
        """Release the stream's slot; the WSGI server calls this when the response ends."""
        if not self._released:
            self._released = True
            self._release()


class AsyncEventStream:
    """The body of one ASGI event-stream response, as an async iterable of byte chunks.

    ``follow(after)`` is a coroutine function like EventStream's ``follow``.
    ``disconnected()`` is a coroutine that returns once the client has
    closed its connection. The stream ends at that moment, and a read that
    is waiting in XREAD BLOCK is cancelled, so its Redis connection is freed
    at once. ``release`` runs once, from ``close``, which falcon.asgi awaits
    when the response ends.
    """

    def __init__(
        self,
        follow: Callable[[str], Awaitable[dict[str, Any]]],
        after: str,
        seconds: float,
        release: Callable[[], None] = lambda: None,
        disconnected: Callable[[], Awaitable[Any]] = never,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.follow = follow
        self.subscription = Subscription(after, seconds, clock)
        self.disconnected = disconnected
        self._release = release
        self._released = False
        self._frames: AsyncGenerator[bytes, None] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._frames = self._generate()
        return self._frames

    async def _generate(self) -> AsyncGenerator[bytes, None]:
        subscription = self.subscription
        for frame in subscription.opening():
            yield frame
        watcher = asyncio.ensure_future(self.disconnected())
        read: asyncio.Future | None = None
        try:
            while subscription.running():
                read = asyncio.ensure_future(self.follow(subscription.after))
                await asyncio.wait((read, watcher), return_when=asyncio.FIRST_COMPLETED)
                if not read.done():
                    # The client has gone while the read was waiting.
                    read.cancel()
                    await asyncio.wait((read,))
                    return
                try:
                    reply = read.result()
                except DambaError as error:
                    yield subscription.fail(error)
                    return
                for frame in subscription.receive(reply):
                    yield frame
                if watcher.done():
                    return
            yield subscription.closing()
        finally:
            watcher.cancel()
            if read is not None:
                read.cancel()

    async def close(self) -> None:
        """Stop the frames and release the stream's slot, once."""
        if self._frames is not None:
            await self._frames.aclose()
        if not self._released:
            self._released = True
            self._release()


def openapi_path_item() -> dict[str, Any]:
    """Describe the event-stream endpoint for the OpenAPI document."""
    return {
        "get": {
            "summary": "Follow the event stream live, as server-sent events.",
            "description": (
                "Sends every event after the given stream id, each with its stream "
                "id as the SSE id, and a comment line after "
                f"{HEARTBEAT_SECONDS} quiet seconds. The response ends after "
                "DAMBA_STREAM_SECONDS; reconnect with Last-Event-ID to resume. "
                "Without an id it starts after the newest event."
            ),
            "operationId": "get_events_stream",
            "parameters": [
                {
                    "name": "after",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Send events after this stream id; 0 or - "
                    "for the whole stream.",
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "The last stream id received; wins over after.",
                },
            ],
            "responses": {
                "200": {
                    "description": "An endless text/event-stream, ended by the server.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "default": {
                    "description": "An error, with a stable code",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/Error"}
                        }
                    },
                },
            },
        }
    }
