"""Replay the event stream: rebuild the read models, or verify them.

Both read the stream in pages and fold it with the same projections the
service uses. ``rebuild`` then replaces the read models in Redis; ``verify``
compares them with what Redis contains and lists every difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import redis

from damba.events import Event
from damba.state import ACTIVE, ROUTES, SESSIONS, USERS, MemoryState
from projections import replay

PAGE_SIZE = 1000


def iter_events(client: redis.Redis, stream: str, page_size: int = PAGE_SIZE) -> Iterator[Event]:
    """Yield every event of ``stream`` in order, reading ``page_size`` at a time."""
    low = "-"
    while True:
        entries = client.xrange(stream, low, "+", page_size)
        for entry_id, fields in entries:
            yield Event.from_fields(entry_id, fields)
        if len(entries) < page_size:
            return
        low = f"({entries[-1][0]}"


def replay_stream(client: redis.Redis, prefix: str) -> MemoryState:
    return replay(iter_events(client, f"{prefix}:events"))


# Read-model keys by kind; everything else under a prefix (the stream, commit
# receipts) is left alone.
_DOCUMENT_KINDS = ("user", "name", "route", "route-active", "session")
_SETS = (USERS, ROUTES, SESSIONS, ACTIVE)


def _read_model_keys(client: redis.Redis, prefix: str) -> list[str]:
    """List the read-model keys under ``prefix``, which settings keep free of
    ':' and glob characters, so the patterns below match it literally."""
    keys = [f"{prefix}:{name}" for name in _SETS if client.exists(f"{prefix}:{name}")]
    for kind in _DOCUMENT_KINDS:
        keys += client.scan_iter(match=f"{prefix}:{kind}:*", count=1000)
    return keys


def load_live_state(client: redis.Redis, prefix: str) -> MemoryState:
    """Load the read models stored in Redis into a MemoryState."""
    keys = _read_model_keys(client, prefix)
    state = MemoryState()
    cut = len(prefix) + 1
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    types = pipe.execute()
    for key, kind in zip(keys, types):
        if kind == "string":
            state.docs[key[cut:]] = orjson.loads(client.get(key))
        elif kind == "set":
            state.sets[key[cut:]] = set(client.smembers(key))
    return state


def rebuild(client: redis.Redis, prefix: str) -> MemoryState:
    """Replace the read models with a replay of the stream; return the new state.

    NOTE: run it while no service writes to this prefix. The old read models
    are deleted in one transaction and the new ones written in another, so a
    request served in between sees empty read models.
    """
    state = replay_stream(client, prefix)
    old_keys = _read_model_keys(client, prefix)
    pipe = client.pipeline(transaction=True)
    for start in range(0, len(old_keys), 500):
        pipe.delete(*old_keys[start : start + 500])
    pipe.execute()

    pipe = client.pipeline(transaction=True)
    for key, doc in state.docs.items():
        pipe.set(f"{prefix}:{key}", orjson.dumps(doc))
    for key, members in state.sets.items():
        pipe.sadd(f"{prefix}:{key}", *sorted(members))
    pipe.execute()
    return state


@dataclass(frozen=True)
class Difference:
    key: str
    replayed: object
    live: object

    def describe(self) -> str:
        if self.live is None:
            return f"{self.key}: missing from Redis; the stream gives {self.replayed!r}"
        if self.replayed is None:
            return f"{self.key}: in Redis as {self.live!r}, but the stream gives nothing"
        return f"{self.key}: Redis holds {self.live!r}; the stream gives {self.replayed!r}"


def compare(replayed: MemoryState, live: MemoryState) -> list[Difference]:
    """List every document and set on which the two states differ."""
    differences = []
    for key in sorted(replayed.docs.keys() | live.docs.keys()):
        if replayed.docs.get(key) != live.docs.get(key):
            differences.append(Difference(key, replayed.docs.get(key), live.docs.get(key)))
    for key in sorted(replayed.sets.keys() | live.sets.keys()):
        want, have = replayed.sets.get(key), live.sets.get(key)
        if want != have:
            differences.append(
                Difference(
                    key,
                    sorted(want) if want is not None else None,
                    sorted(have) if have is not None else None,
                )
            )
    return differences


def verify(client: redis.Redis, prefix: str) -> list[Difference]:
    """Replay the stream in memory and compare it with the live read models."""
    return compare(replay_stream(client, prefix), load_live_state(client, prefix))
