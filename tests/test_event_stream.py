"""The event stream as server-sent events, from real `damba serve` processes of both apps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import orjson
import pytest
import requests
from tests.servers import running_server

from damba.client.sse import Message, parse
from damba.dashboard.stream import AsyncEventStream, EventStream, format_event, start_id
from damba.driver import run, run_async
from damba.errors import DambaError
from damba.queries import follow_events

STREAM = "/api/v1/events/stream"
# Seconds a test waits for one expected event before it fails.
READ_TIMEOUT = 30


@pytest.fixture
def server(app_kind, redis_url, key_prefix, tmp_path):
    with running_server(redis_url, key_prefix, tmp_path, kind=app_kind) as server:
        yield server


def _register(server, name: str) -> str:
    reply = requests.post(f"{server.url}/api/v1/user/addme", params={"name": name}, timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()["uid"]


def _open(server, **options) -> requests.Response:
    return requests.get(server.url + STREAM, stream=True, timeout=(5, READ_TIMEOUT), **options)


def _messages(response: requests.Response) -> Iterator[Message]:
    return parse(response.iter_lines(chunk_size=None, decode_unicode=True))


def _events(response: requests.Response, count: int) -> list[Message]:
    """Read messages until ``count`` events have arrived."""
    received = []
    for message in _messages(response):
        if message.data:
            received.append(message)
        if len(received) == count:
            return received
    raise AssertionError(f"the stream ended after {len(received)} of {count} events")


def _all_ids(server) -> list[str]:
    reply = requests.get(f"{server.url}/api/v1/info/events", params={"count": 1000}, timeout=10)
    return [event["id"] for event in reply.json()["events"]]


def test_stream_catch_up(server):
    """A client that names a stream id gets every later event, each with its id as SSE id."""
    _register(server, "alice")
    _register(server, "bob")
    ids = _all_ids(server)
    with _open(server, params={"after": ids[0]}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = _events(response, len(ids) - 1)
        assert [message.id for message in messages] == ids[1:]
        bodies = [orjson.loads(message.data) for message in messages]
        assert [body["id"] for body in bodies] == ids[1:]
        assert [body["event"] for body in bodies] == ["adduser", "adduser"]
        assert bodies[1]["data"] == {"name": "bob"}


def test_stream_live_events(server):
    """Events appended while a client is connected reach it as they happen."""
    with _open(server) as response:
        assert response.status_code == 200
        _register(server, "carol")
        (message,) = _events(response, 1)
    body = orjson.loads(message.data)
    assert body["event"] == "adduser"
    assert body["data"] == {"name": "carol"}


def test_stream_from_start(server):
    """after=0 replays the stream from its first event, the init event."""
    with _open(server, params={"after": "0"}) as response:
        (message,) = _events(response, 1)
    assert orjson.loads(message.data)["event"] == "init"


def test_stream_last_event_id_wins(server):
    """A reconnecting browser's Last-Event-ID wins over the after in its URL."""
    for name in ("a", "b", "c"):
        _register(server, name)
    ids = _all_ids(server)
    headers = {"Last-Event-ID": ids[2]}
    with _open(server, params={"after": "0"}, headers=headers) as response:
        (message,) = _events(response, 1)
    assert message.id == ids[3]


def test_stream_never_sends_keys(server):
    """The access keys of new participants never appear in the stream."""
    with _open(server, params={"after": "0"}) as response:
        key = _register(server, "dora")
        messages = _events(response, 2)
    assert all(key not in message.data for message in messages)


def test_stream_ends_and_heartbeats(app_kind, redis_url, key_prefix, tmp_path):
    """A quiet stream sends heartbeat comments and ends after DAMBA_STREAM_SECONDS."""
    env = {"DAMBA_STREAM_SECONDS": "7"}
    with running_server(redis_url, key_prefix, tmp_path, env, kind=app_kind) as server:
        with _open(server) as response:
            lines = list(response.iter_lines(chunk_size=None, decode_unicode=True))
    assert lines[0] == "retry: 2000"
    assert ": heartbeat" in lines
    assert lines[-2].startswith(": closing after 7 s; reconnect with Last-Event-ID ")


def test_stream_busy(app_kind, redis_url, key_prefix, tmp_path):
    """Past DAMBA_STREAM_CLIENTS open streams a worker returns 503 with Retry-After.

    A closed stream frees its place at once, so the wait below ends long
    before the stream's own DAMBA_STREAM_SECONDS would.
    """
    env = {"DAMBA_STREAM_CLIENTS": "1", "DAMBA_STREAM_SECONDS": "120"}
    with running_server(redis_url, key_prefix, tmp_path, env, kind=app_kind) as server:
        first = _open(server)
        assert first.status_code == 200
        second = requests.get(server.url + STREAM, timeout=10)
        assert second.status_code == 503
        assert second.json()["code"] == "streams_busy"
        assert second.headers["Retry-After"] == "5"
        first.close()
        # The worker notices the closed connection within a second or so.
        deadline = time.monotonic() + 20
        while True:
            third = _open(server)
            if third.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert third.status_code == 200
        third.close()


def test_stream_single_thread(redis_url, key_prefix, tmp_path):
    """A server with single-threaded workers rejects streams with streams_unsupported."""
    with running_server(redis_url, key_prefix, tmp_path, threads=1) as server:
        reply = requests.get(server.url + STREAM, timeout=10)
    assert reply.status_code == 503
    assert reply.json()["code"] == "streams_unsupported"


def test_event_stream_loop(store, key_prefix, redis_client):
    """The response body frames events from the store and ends after its time."""
    init = redis_client.xadd(store.stream, {"event": "init", "dt": "2026-01-01T00:00:00Z"})
    later = redis_client.xadd(store.stream, {"event": "adduser", "dt": "2026-01-01T00:00:01Z"})
    released = []
    stream = EventStream(
        lambda after: run(store, follow_events(after, 100, 100)),
        init, seconds=0.5, release=lambda: released.append(True),
    )
    chunks = list(stream)
    stream.close()
    stream.close()
    assert chunks[0] == b"retry: 2000\n\n"
    assert chunks[2].startswith(b"id: %s\ndata: {" % later.encode())
    assert chunks[-1].startswith(b": closing after 0.5 s; reconnect with Last-Event-ID ")
    assert later.encode() in chunks[-1]
    assert released == [True]


def test_event_stream_error_frame(store):
    """A store failure during the stream ends it with a stream-error message."""

    def fail(after):
        raise DambaError("store_unavailable", "The event store is unreachable.")

    chunks = list(EventStream(fail, "0-0", seconds=5))
    assert chunks[-1].startswith(b"event: stream-error\ndata: ")
    assert b"store_unavailable" in chunks[-1]


def _collect(stream: AsyncEventStream) -> list[bytes]:
    """Read an async stream to its end as falcon.asgi does, then close it."""

    async def read() -> list[bytes]:
        chunks = [chunk async for chunk in stream]
        await stream.close()
        await stream.close()
        return chunks

    return asyncio.run(read())


def _async_follow(settings, block_ms: int):
    """Return a follow function on a new async store, closed after each read."""
    from damba.store import async_store

    store = async_store.AsyncRedisStore(
        lambda: async_store.connect(settings, settings.redis_url), settings.key_prefix
    )

    async def follow(after: str) -> dict:
        try:
            return await run_async(store, follow_events(after, 100, block_ms))
        finally:
            await store.aclose()

    return follow


def test_async_stream_loop(settings, redis_client, key_prefix):
    """The ASGI body frames events from the async store and ends after its time."""
    stream_key = f"{key_prefix}:events"
    init = redis_client.xadd(stream_key, {"event": "init", "dt": "2026-01-01T00:00:00Z"})
    later = redis_client.xadd(stream_key, {"event": "adduser", "dt": "2026-01-01T00:00:01Z"})
    released = []
    stream = AsyncEventStream(
        _async_follow(settings, 100), init, seconds=0.5,
        release=lambda: released.append(True),
    )
    chunks = _collect(stream)
    assert chunks[0] == b"retry: 2000\n\n"
    assert chunks[2].startswith(b"id: %s\ndata: {" % later.encode())
    assert chunks[-1].startswith(b": closing after 0.5 s; reconnect with Last-Event-ID ")
    assert later.encode() in chunks[-1]
    assert released == [True]


def test_async_stream_same_frames(store, settings, redis_client, key_prefix):
    """The WSGI and the ASGI bodies send the same frames for the same events."""
    stream_key = f"{key_prefix}:events"
    init = redis_client.xadd(stream_key, {"event": "init", "dt": "2026-01-01T00:00:00Z"})
    for second in range(1, 4):
        redis_client.xadd(stream_key, {"event": "adduser", "dt": f"2026-01-01T00:00:0{second}Z"})
    sync_chunks = list(
        EventStream(lambda after: run(store, follow_events(after, 100, 100)), init, 0.3)
    )
    async_chunks = _collect(AsyncEventStream(_async_follow(settings, 100), init, 0.3))
    assert len(sync_chunks) == 6
    assert async_chunks == sync_chunks


def test_async_stream_disconnect(settings, key_prefix):
    """A client that disconnects ends the ASGI body while its read waits in XREAD BLOCK."""
    released = []

    async def scenario() -> list[bytes]:
        gone = asyncio.Event()
        stream = AsyncEventStream(
            _async_follow(settings, 4000), "0-0", seconds=60,
            release=lambda: released.append(True), disconnected=gone.wait,
        )
        chunks = []
        async for chunk in stream:
            chunks.append(chunk)
            if len(chunks) == 2:
                # The next read blocks on an empty stream until the client goes.
                asyncio.get_running_loop().call_later(0.2, gone.set)
        await stream.close()
        return chunks

    chunks = asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    assert len(chunks) == 2
    assert chunks[1].startswith(b": following the event stream after 0-0")
    assert released == [True]


def test_async_stream_error_frame():
    """A store failure during the ASGI body ends it with a stream-error message."""

    async def fail(after):
        raise DambaError("store_unavailable", "The event store is unreachable.")

    chunks = _collect(AsyncEventStream(fail, "0-0", seconds=5))
    assert chunks[-1].startswith(b"event: stream-error\ndata: ")
    assert b"store_unavailable" in chunks[-1]


def test_start_id_choice():
    """Last-Event-ID wins, '-' means the whole stream, and nothing means the newest."""
    assert start_id("5-1", "3-0") == "5-1"
    assert start_id(None, "3-0") == "3-0"
    assert start_id(None, "-") == "0-0"
    assert start_id(None, None) is None
    with pytest.raises(DambaError):
        start_id(None, "$")


def test_format_event_one_message():
    """An event frames as one SSE message whose data is one line of JSON."""
    frame = format_event({"id": "1-0", "what": "two\nlines"})
    assert frame.count(b"\n\n") == 1
    assert frame.endswith(b"\n\n")
    (message,) = parse(frame.decode().split("\n"))
    assert message.id == "1-0"
    assert orjson.loads(message.data)["what"] == "two\nlines"


def test_sse_parser_fields():
    """The parser joins data lines, keeps ids and retry, and skips comments."""
    lines = [": hello", "retry: 1500", "", "id: 7-0", "event: x", "data: a", "data:b", "",
             "data: no id", ""]
    messages = list(parse(lines))
    assert messages[0].retry == 1500
    assert messages[1] == Message("x", "a\nb", "7-0", None)
    assert messages[2] == Message("message", "no id", None, None)
