"""The Lua scripts and the payloads they exchange with Python.

Everything here is free of I/O, so the synchronous and the asyncio stores
share one encoding of requests and one decoding of replies.
"""

from __future__ import annotations

import uuid
from importlib.resources import files
from typing import Any

import orjson

from damba.events import Event
from damba.protocol import Commit, Read, Snapshot
from damba.state import Add, Delete, Put, Remove

COMMIT_SCRIPT = files("damba").joinpath("lua/commit.lua").read_text()
READ_SCRIPT = files("damba").joinpath("lua/read.lua").read_text()

# Appends the init event only to a stream that does not exist yet, so many
# workers starting together open a stream once.
INIT_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV))
"""


def encode_read(read: Read) -> bytes:
    return orjson.dumps(
        {
            "docs": list(read.docs),
            "members": list(read.members),
            "cards": list(read.cards),
            "follow": [
                [f.doc, f.field, f.item, f.target_prefix] for f in read.follow
            ],
            "stream_length": read.stream_length,
        }
    )


def decode_read(read: Read, reply: list[Any]) -> Snapshot:
    docs, members, cards, follows, length = reply
    snapshot = Snapshot(stream_length=int(length))
    for key, raw in zip(read.docs, docs):
        snapshot.raw[key] = raw or None
    for key, ids in zip(read.members, members):
        snapshot.members[key] = list(ids)
    for key, size in zip(read.cards, cards):
        snapshot.cards[key] = int(size)
    for key, raw in follows:
        snapshot.raw[key] = raw or None
    return snapshot


def _encode_change(change) -> list[str]:
    match change:
        case Put(key, doc):
            return ["set", key, orjson.dumps(doc).decode()]
        case Delete(key):
            return ["del", key]
        case Add(name, member):
            return ["sadd", name, member]
        case Remove(name, member):
            return ["srem", name, member]
    raise TypeError(f"not a change: {change!r}")


def encode_commit(commit: Commit) -> tuple[str, bytes]:
    """Return the commit's receipt id and the script payload."""
    receipt = uuid.uuid4().hex
    payload = {
        "id": receipt,
        "fields": stream_fields(commit.event),
        "checks": [list(check) for check in commit.checks],
        "ops": [_encode_change(change) for change in commit.changes],
    }
    return receipt, orjson.dumps(payload)


def decode_commit(reply: list[str]) -> str | None:
    """Return the stream id of an applied commit, or None after a conflict."""
    outcome, value = reply
    if outcome in ("ok", "applied"):
        return value
    return None


def stream_fields(event: Event) -> list[str]:
    """Flatten an event into the name, value, name, value list XADD takes."""
    fields: list[str] = []
    for name, value in event.to_fields().items():
        fields += [name, value]
    return fields


_LAST_ID = f"{2**64 - 1}-{2**64 - 1}"


def nothing_beyond(after: str, reverse: bool) -> bool:
    """Tell whether no stream id can lie beyond ``after`` in the reading direction.

    XRANGE rejects an exclusive bound past either end of the id space, so
    those reads are answered without asking Redis.
    """
    if reverse:
        return after in ("0", "0-0")
    return after == _LAST_ID


def range_bounds(after: str, reverse: bool) -> tuple[str, str] | None:
    """Return the (start, end) arguments of XRANGE, or of XREVRANGE when
    ``reverse``, for a page after stream id ``after``; None if none can follow."""
    if nothing_beyond(after, reverse):
        return None
    if reverse:
        return ("+" if after in ("-", "+") else f"({after}"), "-"
    return ("-" if after == "-" else f"({after}"), "+"
