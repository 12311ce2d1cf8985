"""The store for the WSGI app and the command line, on the blocking redis client."""

from __future__ import annotations

import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from damba.config import Settings
from damba.events import Event
from damba.protocol import Commit, Read, ReadEvents, Snapshot
from damba.store import policy, scripts
from damba.store.policy import (  # noqa: F401 - also importable from here
    COMMIT_RESENDS,
    STORE_ERRORS,
    never_sent,
    outcome_unknown,
    unavailable,
)


def connect(settings: Settings, url: str) -> redis.Redis:
    """Open a client whose commands are never retried by redis-py itself.

    redis-py 8 retries a command after a timeout by default. For the commit
    script that could append one event twice, so retries are turned off here
    and ``RedisStore`` retries deliberately, following ``damba.store.policy``:
    reads after a connection error or timeout, commits only with the same
    receipt id, for which the script returns the first result instead of
    applying the commit again.
    """
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


class RedisStore:
    """Carries out protocol requests against one Redis, synchronously."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.stream = f"{prefix}:events"
        self._commit = client.register_script(scripts.COMMIT_SCRIPT)
        self._read = client.register_script(scripts.READ_SCRIPT)
        self._init = client.register_script(scripts.INIT_SCRIPT)
        self._read_retry = Retry(policy.read_backoff(), policy.READ_RETRIES)

    def _retry_read(self, call):
        try:
            return self._read_retry.call_with_retry(call, lambda error: None)
        except STORE_ERRORS as error:
            raise policy.read_failed(error) from error

    def read(self, request: Read) -> Snapshot:
        payload = scripts.encode_read(request)
        reply = self._retry_read(lambda: self._read(args=[self.prefix, payload]))
        return scripts.decode_read(request, reply)

    def commit(self, request: Commit) -> str | None:
        receipt, payload = scripts.encode_commit(request)
        attempt = 0
        while True:
            try:
                reply = self._commit(args=[self.prefix, payload])
                break
            except STORE_ERRORS as error:
                pause = policy.resend_pause(attempt, error, receipt, request.event)
            time.sleep(pause)
            attempt += 1
        stream_id = scripts.decode_commit(reply)
        if stream_id is not None:
            policy.log_appended(stream_id, request.event)
        return stream_id

    def read_events(self, request: ReadEvents) -> list[Event]:
        if request.block_ms is not None:
            return self._wait_for_events(request)
        bounds = scripts.range_bounds(request.after, request.reverse)
        if bounds is None:
            return []
        command = self.client.xrevrange if request.reverse else self.client.xrange
        call = lambda: command(self.stream, *bounds, request.count)
        entries = self._retry_read(call)
        return [Event.from_fields(entry_id, fields) for entry_id, fields in entries]

    def _wait_for_events(self, request: ReadEvents) -> list[Event]:
        """XREAD BLOCK: wait for events after ``request.after``, or return []."""
        reply = self._retry_read(
            lambda: self.client.xread(
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

    def open_stream(self, event: Event) -> str | None:
        """Append ``event`` if the stream is new; return its id, or None."""
        fields = scripts.stream_fields(event)
        return self._retry_read(lambda: self._init(keys=[self.stream], args=fields))

