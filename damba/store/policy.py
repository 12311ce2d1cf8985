"""The Redis failure policy of both stores: retries, resends, errors and log lines.

redis-py's own retries are turned off in both clients (see ``connect`` in
``sync_store`` and ``async_store``), so this module is the whole retry
policy. A read is retried after a connection error or a timeout, since it
changes nothing. A commit is resent only with its receipt id, and the
commit script returns the first result to a resend whose receipt id it has
seen, instead of appending the event twice. Nothing here performs I/O, so
the blocking and the asyncio store follow the same rules.
"""

from __future__ import annotations

import logging

import redis
from redis.backoff import ExponentialWithJitterBackoff

from damba.errors import DambaError
from damba.events import Event

log = logging.getLogger("damba.store")

# Times a commit is resent, with the same receipt id, after its reply was lost.
COMMIT_RESENDS = 3

# Times a read is retried after a connection error or a timeout.
READ_RETRIES = 3

STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def read_backoff() -> ExponentialWithJitterBackoff:
    """Return the backoff between read retries: jittered, 50 ms doubling to 1 s."""
    return ExponentialWithJitterBackoff(base=0.05, cap=1.0)


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


def never_sent(error: Exception) -> bool:
    """Tell whether a store error happened before the command left the client."""
    # redis-py 8.1 words every failure to open a connection "... connecting to
    # <host>", in the blocking and the asyncio client alike. A pool with no
    # free connection raises MaxConnectionsError, or in the blocking pool
    # "No connection available.", before it sends anything. Any other
    # failure may have come after the command was sent.
    if isinstance(error, redis.exceptions.MaxConnectionsError):
        return True
    message = str(error)
    return "connecting to" in message or "No connection available" in message


def read_failed(error: Exception) -> DambaError:
    """Log a read that failed after its retries and return the error to raise."""
    log.error("store read failed after retries: %s", error)
    return unavailable(error)


def resend_pause(attempt: int, error: Exception, receipt: str, event: Event) -> float:
    """Return the seconds to wait before resending a commit whose send failed.

    ``attempt`` counts the sends so far, from 0 for the first.

    Raises store_unavailable when the first send never left the client, so
    nothing can have been applied, and outcome_unknown once the last resend
    has failed too.
    """
    if attempt == 0 and never_sent(error):
        raise unavailable(error) from error
    if attempt >= COMMIT_RESENDS:
        log.error(
            "commit %s of %s event unconfirmed after %d resends: %s",
            receipt,
            event.event,
            COMMIT_RESENDS,
            error,
        )
        raise outcome_unknown(error) from error
    log.warning(
        "commit %s of %s event got no reply (%s); resending it",
        receipt,
        event.event,
        error,
    )
    return 0.05 * (attempt + 1)


def log_appended(stream_id: str, event: Event) -> None:
    """Log an appended event; the participant appears as 8 digits of the key's hash."""
    log.info(
        "event %s %s %s uid=%s rid=%s sid=%s code=%s",
        stream_id,
        event.event,
        event.result,
        event.uid[:8],
        event.rid,
        event.sid,
        event.code or "-",
    )
