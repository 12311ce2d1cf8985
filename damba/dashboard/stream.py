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

import logging
import time
from collections.abc import Callable, Iterator
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
    if after:
        if after == "-":
            return "0-0"
        check_stream_id("after", after)
        return after
    return None


class EventStream:
    """The body of one event-stream response, as an iterable of byte chunks.

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
        self.after = after
        self.seconds = seconds
        self.client_gone = client_gone
        self.clock = clock
        self._release = release
        self._released = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"retry: %d\n\n" % RETRY_MS
        yield format_comment(f"following the event stream after {self.after}")
        deadline = self.clock() + self.seconds
        quiet_since = self.clock()
        while self.clock() < deadline:
            if self.client_gone():
                return
            try:
                reply = self.follow(self.after)
            except DambaError as error:
                log.error("event stream after %s failed: %s", self.after, error.message)
                yield format_error(error)
                return
            for event in reply["events"]:
                yield format_event(event)
            self.after = reply["last_id"]
            if reply["events"]:
                quiet_since = self.clock()
            elif self.clock() - quiet_since >= HEARTBEAT_SECONDS:
                yield format_comment("heartbeat")
                quiet_since = self.clock()
        yield format_comment(
            f"closing after {self.seconds:g} s; reconnect with Last-Event-ID {self.after}"
        )

    def close(self) -> None:
        """Release the stream's slot; the WSGI server calls this when the response ends."""
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
