"""The store for the WSGI app and the command line, on the blocking redis client."""

from __future__ import annotations

import logging
import time

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

from damba.config import Settings
from damba.errors import DambaError
from damba.events import Event
from damba.protocol import Commit, Read, ReadEvents, Snapshot
from damba.store import scripts

log = logging.getLogger("damba.store")

# Times a commit is resent, with the same receipt id, after its reply was lost.
COMMIT_RESENDS = 3

STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def unavailable(error: Exception) -> DambaError:
    return DambaError(
        "store_unavailable",
        f"The event store is unreachable ({type(error).__name__}); "
        f"nothing was recorded, retry in a moment.",
    )


def outcome_unknown(error: Exception) -> DambaError:
    return DambaError(
        "outcome_unknown",
        f"The event store did not confirm the write ({type(error).__name__}), so "
        f"it may or may not have been applied; check with /info before retrying.",
    )


def connect(settings: Settings, url: str) -> redis.Redis:
    """Open a client whose commands are never retried by redis-py itself.

    redis-py 8 retries a command after a timeout by default. For the commit
    script that could append one event twice, so retries are turned off here
    and ``RedisStore`` retries deliberately: reads freely, commits only with
    the same receipt id, which the script uses to answer a resend with the
    first result instead of applying it again.
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
        self._read_retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3)

    def _retry_read(self, call):
        try:
            return self._read_retry.call_with_retry(call, lambda error: None)
        except STORE_ERRORS as error:
            log.error("store read failed after retries: %s", error)
            raise unavailable(error) from error

    def read(self, request: Read) -> Snapshot:
        payload = scripts.encode_read(request)
        reply = self._retry_read(lambda: self._read(args=[self.prefix, payload]))
        return scripts.decode_read(request, reply)

    def commit(self, request: Commit) -> str | None:
        receipt, payload = scripts.encode_commit(request)
        for attempt in range(COMMIT_RESENDS + 1):
            try:
                reply = self._commit(args=[self.prefix, payload])
                break
            except STORE_ERRORS as error:
                if attempt == 0 and never_sent(error):
                    raise unavailable(error) from error
                last_error = error
            log.warning(
                "commit %s of %s event got no reply (%s); resending it",
                receipt, request.event.event, last_error,
            )
            time.sleep(0.05 * (attempt + 1))
        else:
            log.error(
                "commit %s of %s event unconfirmed after %d resends",
                receipt, request.event.event, COMMIT_RESENDS,
            )
            raise outcome_unknown(last_error)
        stream_id = scripts.decode_commit(reply)
        if stream_id is not None:
            log.info(
                "event %s %s %s uid=%s rid=%s sid=%s code=%s",
                stream_id, request.event.event, request.event.result,
                request.event.uid[:8], request.event.rid, request.event.sid,
                request.event.code or "-",
            )
        return stream_id

    def read_events(self, request: ReadEvents) -> list[Event]:
        if request.block_ms is not None:
            return self._wait_for_events(request)
        if request.reverse:
            high = "+" if request.after in ("-", "+") else f"({request.after}"
            call = lambda: self.client.xrevrange(self.stream, high, "-", request.count)
        else:
            low = "-" if request.after == "-" else f"({request.after}"
            call = lambda: self.client.xrange(self.stream, low, "+", request.count)
        if scripts.nothing_beyond(request.after, request.reverse):
            return []
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


def never_sent(error: Exception) -> bool:
    """Tell whether a store error happened before the command left the client."""
    # redis-py 8.1 words every failure to open a connection "... connecting to
    # <host>"; any other failure may have come after the command was sent.
    return "connecting to" in str(error)
