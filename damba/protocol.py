"""The requests that commands and queries make of a store.

Commands and queries are generators: they yield one of the request objects
below and receive the store's result, so they hold every rule but perform no
I/O themselves. A driver (``damba.driver``) carries the requests out against a
synchronous or an asynchronous Redis client; both run the same generators.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import orjson

from damba.events import Event
from damba.state import Change, LoadedDocuments


@dataclass(frozen=True)
class Follow:
    """Read ``doc[field][item]`` from a document and load ``target_prefix + value``.

    This lets one round trip load a participant and the session they run on
    a route, whose id is only known from the participant's document.
    """

    doc: str
    field: str
    item: str
    target_prefix: str


@dataclass(frozen=True)
class Read:
    """Load documents, set members and set sizes in one round trip."""

    docs: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    cards: tuple[str, ...] = ()
    follow: tuple[Follow, ...] = ()
    stream_length: bool = False


@dataclass(frozen=True)
class ReadEvents:
    """Read up to ``count`` events after stream id ``after`` (exclusive).

    With ``block_ms`` set, the store waits up to that many milliseconds for
    an event newer than ``after`` (XREAD BLOCK) and returns an empty list if
    none arrives. ``after`` must then be a concrete id, and ``block_ms`` must
    stay below the Redis client's socket timeout.
    """

    after: str = "-"
    count: int = 100
    reverse: bool = False
    block_ms: int | None = None


@dataclass(frozen=True)
class Commit:
    """Append ``event`` and apply ``changes`` if every check still holds.

    Checks are tuples: ``("doc", key, raw_or_None)`` requires the stored
    document to be exactly as read; ``("members", key, sorted_ids)`` requires
    the set to hold exactly those ids; ``("card_lt", key, n)`` requires the
    set to hold fewer than ``n`` ids.
    """

    event: Event
    changes: list[Change]
    checks: list[tuple[str, str, Any]]


@dataclass(frozen=True)
class Backoff:
    """Wait a little before the next attempt after a failed check."""

    attempt: int


@dataclass
class Snapshot:
    """The results of one or more Reads, raw (for checks) and decoded."""

    raw: dict[str, str | None] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    cards: dict[str, int] = field(default_factory=dict)
    stream_length: int = 0

    def doc(self, key: str) -> dict[str, Any] | None:
        raw = self.raw[key]
        return None if raw is None else orjson.loads(raw)

    def view(self) -> LoadedDocuments:
        return LoadedDocuments({key: self.doc(key) for key in self.raw})

    def merge(self, other: Snapshot) -> Snapshot:
        self.raw.update(other.raw)
        self.members.update(other.members)
        self.cards.update(other.cards)
        self.stream_length = other.stream_length or self.stream_length
        return self

    def checks(self) -> list[tuple[str, str, Any]]:
        """Return checks that hold only while everything read is unchanged."""
        checks: list[tuple[str, str, Any]] = [
            ("doc", key, raw) for key, raw in self.raw.items()
        ]
        checks += [("members", key, sorted(ids)) for key, ids in self.members.items()]
        return checks


# The types a command or query generator yields, receives and returns.
StoreRequest = Read | ReadEvents | Commit | Backoff
Operation = Generator[StoreRequest, Any, dict[str, Any]]
