"""The read, decide, commit loop that every command runs.

A command reads what its rules need, decides on one event, and requests that the
store append that event and apply its projection in one atomic script,
on the condition that nothing it read has changed since (optimistic
concurrency). If something has changed, the whole attempt runs again on
fresh data. A rejected action appends an ``error`` event under the same
checks, so the stream records each rejection against the state that caused
it, then raises the DambaError for the HTTP layer to return.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any

from damba import events as ev
from damba.errors import DambaError
from damba.events import Event, now_iso
from damba.protocol import Backoff, Commit, Read, Snapshot
from projections import project

# Attempts before a command gives up on a key that keeps changing under it.
MAX_ATTEMPTS = 20


@dataclass
class Context:
    """The subject of an action: its name and ids, for the error event if it is rejected."""

    action: str
    uid: str = ""
    rid: str = ""
    sid: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The event a command appends, the reply it returns, and the set-size limits
    that must still hold when it commits."""

    event: Event
    reply: dict[str, Any]
    limits: tuple[tuple[str, int], ...] = ()


Loader = Callable[[], Generator[Any, Any, Snapshot]]


def error_event(context: Context, error: DambaError) -> Event:
    return Event(
        event=ev.ERROR,
        dt=now_iso(),
        result="error",
        uid=context.uid,
        rid=context.rid,
        sid=context.sid,
        what=error.message,
        code=error.code,
        data={"action": context.action, **context.extra},
    )


def commit_event(snapshot: Snapshot | None, event: Event, limits=()) -> Generator:
    """Yield the Commit for ``event``; return the stream id, or None on conflict."""
    if snapshot is None:
        snapshot = Snapshot()
    changes = project(snapshot.view(), event)
    checks = snapshot.checks() + [("card_lt", key, limit) for key, limit in limits]
    return (yield Commit(event=event, changes=changes, checks=checks))


def reject(context: Context, error: DambaError) -> Generator:
    """Append the error event for an action rejected before any read, then raise."""
    yield from commit_event(None, error_event(context, error))
    raise error


def transact(context: Context, load: Loader, decide: Callable[[Snapshot], Decision]):
    """Run read, decide, commit until the commit's checks hold; return the reply."""
    for attempt in range(MAX_ATTEMPTS):
        snapshot = yield from load()
        try:
            decision = decide(snapshot)
        except DambaError as error:
            if (yield from commit_event(snapshot, error_event(context, error))) is None:
                yield Backoff(attempt)
                continue
            raise
        event = decision.event
        if not event.what:
            event = replace(event, what=decision.reply["desc"])
        if (yield from commit_event(snapshot, event, decision.limits)) is not None:
            return decision.reply
        yield Backoff(attempt)

    busy = DambaError(
        "store_busy",
        f"The {context.action} request lost {MAX_ATTEMPTS} races with concurrent "
        f"requests on the same data; retry it.",
    )
    yield from reject(context, busy)


def read_snapshot(**kwargs) -> Generator:
    snapshot = yield Read(**kwargs)
    return snapshot
