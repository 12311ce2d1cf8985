"""The shape of the read models, shared by Redis and in-memory replay.

State is a set of JSON documents by key plus a few sets of ids. Projections
never write state themselves: they return a list of changes, which the Redis
store applies in the same script that appends the event, and which
``MemoryState`` applies during replay. Both therefore hold the same data.

Keys here are relative; the Redis store puts the configured prefix in front.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Sets of ids.
USERS = "users"
ROUTES = "routes"
SESSIONS = "sessions"
ACTIVE = "active"


def user_key(uid: str) -> str:
    return f"user:{uid}"


def name_key(name: str) -> str:
    """Name the document that reserves a public name.

    Names that differ only in case or spacing reserve the same key, so
    "Anna", "anna" and "An  na" cannot stand side by side.
    """
    return "name:" + " ".join(name.casefold().split())


def route_key(rid: str) -> str:
    return f"route:{rid}"


def route_active_key(rid: str) -> str:
    """Name the set of ids of the sessions running on route ``rid``."""
    return f"route-active:{rid}"


def session_key(sid: str) -> str:
    return f"session:{sid}"


@dataclass(frozen=True)
class Put:
    key: str
    doc: dict[str, Any]


@dataclass(frozen=True)
class Delete:
    key: str


@dataclass(frozen=True)
class Add:
    set: str
    member: str


@dataclass(frozen=True)
class Remove:
    set: str
    member: str


Change = Put | Delete | Add | Remove


class DocumentView(Protocol):
    """Read access to documents, which is all a projection needs."""

    def doc(self, key: str) -> dict[str, Any] | None: ...


class MissingDocumentError(LookupError):
    """Raised when a projection reads a document that its command did not load."""


@dataclass
class LoadedDocuments:
    """The documents one command read from the store, by key.

    A key that was read and found absent maps to None. Reading a key that was
    not loaded at all is a bug in the command, so it raises.
    """

    docs: Mapping[str, dict[str, Any] | None]

    def doc(self, key: str) -> dict[str, Any] | None:
        try:
            return self.docs[key]
        except KeyError:
            raise MissingDocumentError(f"document {key!r} was not loaded") from None


@dataclass
class MemoryState:
    """All read models in memory; replay folds the whole stream into one."""

    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)

    def doc(self, key: str) -> dict[str, Any] | None:
        return self.docs.get(key)

    def members(self, key: str) -> set[str]:
        return self.sets.get(key, set())

    def apply(self, changes: Iterable[Change]) -> None:
        for change in changes:
            match change:
                case Put(key, doc):
                    self.docs[key] = doc
                case Delete(key):
                    self.docs.pop(key, None)
                case Add(name, member):
                    self.sets.setdefault(name, set()).add(member)
                case Remove(name, member):
                    members = self.sets.get(name)
                    if members is not None:
                        members.discard(member)
                        if not members:
                            del self.sets[name]
