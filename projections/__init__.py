"""Projections: pure functions that fold events into read-model state.

``project`` returns the changes one event makes; it reads documents through
a view and performs no I/O, so the same code updates the Redis read models
and replays the stream in memory.
"""

from __future__ import annotations

from collections.abc import Iterable

from damba.events import Event
from damba.state import Change, DocumentView, MemoryState
from projections import routes, sessions, users

# Each module owns its own documents and sets, so the order does not matter.
_PROJECTIONS = (users.project, routes.project, sessions.project)


def project(view: DocumentView, event: Event) -> list[Change]:
    """Return every change ``event`` makes to the read models."""
    changes: list[Change] = []
    for projection in _PROJECTIONS:
        changes += projection(view, event)
    return changes


def replay(events: Iterable[Event], state: MemoryState | None = None) -> MemoryState:
    """Fold ``events`` into ``state`` (a new empty one by default) and return it."""
    if state is None:
        state = MemoryState()
    for event in events:
        state.apply(project(state, event))
    return state
