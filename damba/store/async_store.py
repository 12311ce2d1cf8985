"""The store for the ASGI app, on redis.asyncio.

It mirrors ``sync_store`` name for name: the same scripts and encodings
(``damba.store.scripts``) and the same retry policy (``damba.store.policy``),
awaited instead of blocking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from damba.config import Settings
from damba.events import Event
from damba.protocol import Commit, Read, ReadEvents, Snapshot
from damba.store import policy, scripts
from damba.store.policy import STORE_ERRORS


# Connections one event loop keeps open to Redis at most, which is also
# redis-py 8's default pool size.
MAX_CONNECTIONS = 100


def connect(
    settings: Settings, url: str, max_connections: int = MAX_CONNECTIONS
) -> aioredis.Redis:
    """Open an asyncio client whose commands are never retried by redis-py itself.

    redis-py 8 retries a command after a timeout by default, which could
    append one event twice. So retries are off here, as in the blocking
    client, and ``AsyncRedisStore`` follows the policy in ``damba.store.policy``.

    An ASGI worker serves any number of requests at once, so the pool is a
    blocking one: past ``max_connections`` a request waits up to the Redis
    timeout for a free connection. redis-py's default pool raises
    MaxConnectionsError at once instead.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=settings.redis_timeout,
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)


@dataclass(frozen=True)
class _LoopClient:
    """A client, and the scripts registered on it, for one event loop."""

    loop: asyncio.AbstractEventLoop
    client: aioredis.Redis
    commit: object
    read: object
    init: object


class AsyncRedisStore:
    """Carries out protocol requests against one Redis, on asyncio.

    ``open_client`` returns a new client, such as ``lambda: connect(settings,
    url)``. A redis.asyncio connection belongs to the event loop that opened
    it and fails on any other, so the store opens one client, with its own
    connection pool, per event loop. A uvicorn worker runs one loop for its
    whole life and so gets one client. A caller that runs each request on a
    new loop, such as a test that calls ``asyncio.run`` per request, gets a
    fresh client each time. The client of the old loop is dropped unclosed,
    because its connections cannot be closed from another loop.
    """

    def __init__(self, open_client: Callable[[], aioredis.Redis], prefix: str) -> None:
        self.open_client = open_client
        self.prefix = prefix
        self.stream = f"{prefix}:events"
        self._read_retry = Retry(policy.read_backoff(), policy.READ_RETRIES)
        self._bound: _LoopClient | None = None

    def _current(self) -> _LoopClient:
        """Return the client of the running loop, opening it on first use."""
        loop = asyncio.get_running_loop()
        bound = self._bound
        if bound is None or bound.loop is not loop:
            client = self.open_client()
            bound = _LoopClient(
                loop=loop,
                client=client,
                commit=client.register_script(scripts.COMMIT_SCRIPT),
                read=client.register_script(scripts.READ_SCRIPT),
                init=client.register_script(scripts.INIT_SCRIPT),
            )
            self._bound = bound
        return bound

    @property
    def client(self) -> aioredis.Redis:
        """The client of the running event loop."""
        return self._current().client

    async def aclose(self) -> None:
        """Close the running loop's client and its connections."""
        bound = self._bound
        if bound is not None and bound.loop is asyncio.get_running_loop():
            self._bound = None
            await bound.client.aclose()

    async def _retry_read(self, call):
        try:
            return await self._read_retry.call_with_retry(call, _ignore_failure)
        except STORE_ERRORS as error:
            raise policy.read_failed(error) from error

    async def read(self, request: Read) -> Snapshot:
        payload = scripts.encode_read(request)
        script = self._current().read
        reply = await self._retry_read(lambda: script(args=[self.prefix, payload]))
        return scripts.decode_read(request, reply)

    async def commit(self, request: Commit) -> str | None:
        receipt, payload = scripts.encode_commit(request)
        script = self._current().commit
        attempt = 0
        while True:
            try:
                reply = await script(args=[self.prefix, payload])
                break
            except STORE_ERRORS as error:
                pause = policy.resend_pause(attempt, error, receipt, request.event)
            await asyncio.sleep(pause)
            attempt += 1
        stream_id = scripts.decode_commit(reply)
        if stream_id is not None:
            policy.log_appended(stream_id, request.event)
        return stream_id

    async def read_events(self, request: ReadEvents) -> list[Event]:
        if request.block_ms is not None:
            return await self._wait_for_events(request)
        client = self._current().client
        bounds = scripts.range_bounds(request.after, request.reverse)
        if bounds is None:
            return []
        command = client.xrevrange if request.reverse else client.xrange
        call = lambda: command(self.stream, *bounds, request.count)
        entries = await self._retry_read(call)
        return [Event.from_fields(entry_id, fields) for entry_id, fields in entries]

    async def _wait_for_events(self, request: ReadEvents) -> list[Event]:
        """XREAD BLOCK: wait for events after ``request.after``, or return []."""
        client = self._current().client
        reply = await self._retry_read(
            lambda: client.xread(
                {self.stream: request.after}, count=request.count, block=request.block_ms
            )
        )
        # connect() speaks RESP2, whose XREAD reply is [[stream, entries]] or
        # an empty reply once the block time passes with no event.
        return [
            Event.from_fields(entry_id, fields)
            for _stream, entries in reply or []
            for entry_id, fields in entries
        ]

    async def open_stream(self, event: Event) -> str | None:
        """Append ``event`` if the stream is new; return its id, or None."""
        fields = scripts.stream_fields(event)
        script = self._current().init
        return await self._retry_read(lambda: script(keys=[self.stream], args=fields))


async def _ignore_failure(error: Exception) -> None:
    """Go on to the next read attempt; redis-py has closed the failed connection."""
