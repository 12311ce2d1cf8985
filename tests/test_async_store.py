"""The asyncio store and driver, and the cases both stores share.

The sync store's own cases, on the commit and read scripts, are in
test_store.py.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import redis
from tests.helpers import stream_events
from tests.proxy import ReplyDroppingProxy

from damba import commands
from damba.config import Limits, Settings
from damba.driver import run, run_async
from damba.errors import DambaError
from damba.events import Event, now_iso
from damba.protocol import Backoff, Commit, Read, ReadEvents
from damba.store import async_store, scripts
from damba.store.policy import COMMIT_RESENDS, never_sent
from damba.store.sync_store import RedisStore, connect
from damba.state import USERS

COMMIT_SHA = hashlib.sha1(scripts.COMMIT_SCRIPT.encode()).hexdigest().encode()


def open_async_store(settings: Settings, url: str) -> async_store.AsyncRedisStore:
    return async_store.AsyncRedisStore(
        lambda: async_store.connect(settings, url), settings.key_prefix
    )


async def run_and_close(store: async_store.AsyncRedisStore, operation):
    """Drive ``operation`` on a new loop and close the loop's client after it."""
    try:
        return await run_async(store, operation)
    finally:
        await store.aclose()


def run_on(kind: str, settings: Settings, url: str, operation):
    """Drive ``operation`` through the sync or the async store on Redis at ``url``."""
    if kind == "sync":
        client = connect(settings, url)
        try:
            return run(RedisStore(client, settings.key_prefix), operation)
        finally:
            client.close()
    return asyncio.run(run_and_close(open_async_store(settings, url), operation))


def test_add_user_round_trip(settings, redis_client):
    """A command run through the async store appends its event and projection."""
    reply = asyncio.run(
        run_and_close(
            open_async_store(settings, settings.redis_url),
            commands.add_user(Limits(), "ann"),
        )
    )
    assert reply["name"] == "ann"
    events = stream_events(redis_client, settings.key_prefix)
    assert [event["event"] for event in events] == ["adduser"]
    assert redis_client.scard(f"{settings.key_prefix}:{USERS}") == 1


def test_store_new_loop_new_client(settings):
    """Each event loop gets its own client, so a store outlives a closed loop."""
    store = open_async_store(settings, settings.redis_url)

    async def add(name):
        await run_async(store, commands.add_user(Limits(), name))
        client = store.client
        # Close the connections without the store's help, so that it still
        # holds this loop's client when the next loop asks for one.
        await client.aclose()
        return client

    first = asyncio.run(add("one"))
    second = asyncio.run(add("two"))
    assert first is not second


def test_store_same_loop_same_client(settings):
    """Requests on one event loop share one client and its connection pool."""
    store = open_async_store(settings, settings.redis_url)

    async def twice():
        await run_async(store, commands.add_user(Limits(), "one"))
        first = store.client
        await run_async(store, commands.add_user(Limits(), "two"))
        same = store.client is first
        await store.aclose()
        return same

    assert asyncio.run(twice())


def test_read_events_both_orders(settings):
    """read_events pages forwards and backwards like the sync store."""
    store = open_async_store(settings, settings.redis_url)

    async def scenario():
        for name in ("a", "b", "c"):
            await run_async(store, commands.add_user(Limits(), name))
        forwards = await store.read_events(ReadEvents(count=2))
        backwards = await store.read_events(ReadEvents(count=2, reverse=True))
        after = await store.read_events(ReadEvents(after=forwards[0].id, count=10))
        await store.aclose()
        return forwards, backwards, after

    forwards, backwards, after = asyncio.run(scenario())
    assert [event.data["name"] for event in forwards] == ["a", "b"]
    assert [event.data["name"] for event in backwards] == ["c", "b"]
    assert [event.data["name"] for event in after] == ["b", "c"]


def test_read_events_blocking(settings):
    """With block_ms, read_events waits for a new event, and returns [] after the wait."""
    store = open_async_store(settings, settings.redis_url)

    async def scenario():
        empty = await store.read_events(ReadEvents(after="0-0", count=10, block_ms=100))
        waiting = asyncio.ensure_future(
            store.read_events(ReadEvents(after="0-0", count=10, block_ms=4000))
        )
        await run_async(store, commands.add_user(Limits(), "late"))
        arrived = await waiting
        await store.aclose()
        return empty, arrived

    empty, arrived = asyncio.run(scenario())
    assert empty == []
    assert [event.event for event in arrived] == ["adduser"]
    assert arrived[0].data["name"] == "late"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_open_stream_once(kind, settings, redis_client):
    """open_stream appends the init event to a new stream only."""
    event = commands.init("test", Limits())
    if kind == "sync":
        store = RedisStore(redis_client, settings.key_prefix)
        first, second = store.open_stream(event), store.open_stream(event)
    else:
        store = open_async_store(settings, settings.redis_url)

        async def twice():
            first = await store.open_stream(event)
            second = await store.open_stream(event)
            await store.aclose()
            return first, second

        first, second = asyncio.run(twice())
    assert first
    assert second is None
    assert redis_client.xlen(f"{settings.key_prefix}:events") == 1


def test_redis_retries_off(settings):
    """The asyncio client never retries a command by itself."""
    client = async_store.connect(settings, settings.redis_url)
    assert client.get_retry().get_retries() == 0


def test_pool_waits_for_connection(settings, redis_client):
    """Commits beyond the pool's connections wait for one instead of failing."""
    store = async_store.AsyncRedisStore(
        lambda: async_store.connect(settings, settings.redis_url, max_connections=2),
        settings.key_prefix,
    )

    async def commit_many():
        commits = [
            store.commit(Commit(event=Event("init", now_iso()), changes=[], checks=[]))
            for _ in range(20)
        ]
        stream_ids = await asyncio.gather(*commits)
        await store.aclose()
        return stream_ids

    stream_ids = asyncio.run(commit_many())
    assert len(set(stream_ids)) == 20
    assert len(stream_events(redis_client, settings.key_prefix)) == 20


@pytest.mark.parametrize(
    "error",
    [
        redis.ConnectionError(
            "Error 111 connecting to 127.0.0.1:1. Connection refused."
        ),
        redis.exceptions.MaxConnectionsError("Too many connections"),
        redis.ConnectionError("No connection available."),
    ],
)
def test_never_sent_errors(error):
    """Failures to get a connection count as commands never sent."""
    assert never_sent(error)


def test_sent_error_may_have_applied():
    """A connection lost while waiting for the reply may have applied the command."""
    assert not never_sent(redis.ConnectionError("Connection closed by server."))


def test_unreachable_store():
    """A store on a port where nothing listens raises store_unavailable."""
    settings = Settings(key_prefix="unreachable", redis_timeout=1.0)
    store = open_async_store(settings, "redis://127.0.0.1:1")
    with pytest.raises(DambaError) as caught:
        asyncio.run(run_and_close(store, commands.add_user(Limits(), "x")))
    assert caught.value.code == "store_unavailable"


def test_commit_never_sent():
    """A commit that could not connect fails at once as store_unavailable."""
    settings = Settings(key_prefix="unreachable", redis_timeout=1.0)
    store = open_async_store(settings, "redis://127.0.0.1:1")
    commit = Commit(event=Event("init", now_iso()), changes=[], checks=[])
    with pytest.raises(DambaError) as caught:
        asyncio.run(store.commit(commit))
    assert caught.value.code == "store_unavailable"


# ---------------------------------------------------------------- lost replies


@pytest.fixture
def proxy(redis_url, redis_client):
    """A reply-dropping proxy in front of the test Redis, the commit script loaded."""
    redis_client.script_load(scripts.COMMIT_SCRIPT)
    proxy = ReplyDroppingProxy(redis_url)
    yield proxy
    proxy.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_lost_reply_resent_once(kind, settings, redis_client, proxy):
    """A commit whose reply is lost is resent and still appends one event."""
    proxy.drop_replies(COMMIT_SHA, count=1)
    reply = run_on(kind, settings, proxy.url, commands.add_user(Limits(), "ann"))
    assert reply["name"] == "ann"
    assert proxy.dropped == 1
    events = stream_events(redis_client, settings.key_prefix)
    assert [event["event"] for event in events] == ["adduser"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_lost_replies_outcome_unknown(kind, settings, redis_client, proxy):
    """When every resend loses its reply too, the error is outcome_unknown."""
    proxy.drop_replies(COMMIT_SHA, count=COMMIT_RESENDS + 1)
    with pytest.raises(DambaError) as caught:
        run_on(kind, settings, proxy.url, commands.add_user(Limits(), "ann"))
    assert caught.value.code == "outcome_unknown"
    assert proxy.dropped == COMMIT_RESENDS + 1
    events = stream_events(redis_client, settings.key_prefix)
    assert [event["event"] for event in events] == ["adduser"]


# ---------------------------------------------------------------- driver


def test_run_async_each_request(settings):
    """run_async sends each request to the store and its result back in."""

    def operation():
        stream_id = yield Commit(event=Event("init", now_iso()), changes=[], checks=[])
        snapshot = yield Read(stream_length=True)
        waited = yield Backoff(0)
        events = yield ReadEvents()
        return {
            "id": stream_id,
            "length": snapshot.stream_length,
            "waited": waited,
            "events": [event.id for event in events],
        }

    store = open_async_store(settings, settings.redis_url)
    result = asyncio.run(run_and_close(store, operation()))
    assert result["length"] == 1
    assert result["waited"] is None
    assert result["events"] == [result["id"]]


def test_run_async_unknown_request(settings):
    """run_async rejects a request type it does not know."""

    def operation():
        yield "not a request"
        return {}

    store = open_async_store(settings, settings.redis_url)
    with pytest.raises(TypeError):
        asyncio.run(run_and_close(store, operation()))
