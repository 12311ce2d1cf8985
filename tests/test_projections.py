"""Projections folded in memory over hand-built events: no store involved."""

from __future__ import annotations

import pytest

from damba.events import Event
from damba.state import LoadedDocuments, MissingDocumentError, Put
from projections import project, replay

UID, OTHER = "u" * 32, "o" * 32


def ev(name, **fields) -> Event:
    fields.setdefault("dt", f"2026-01-01T00:00:{len(fields):02d}.000000Z")
    return Event(event=name, **fields)


def history() -> list[Event]:
    return [
        ev("init", data={"version": "0"}),
        ev("adduser", uid=UID, data={"name": "ann"}),
        ev("adduser", uid=OTHER, data={"name": "bob"}),
        ev("addroute", uid=UID, rid="r1", data={"name": "order", "text": "...", "steps": ["a", "b"], "owner_name": "ann"}),
        ev("startsess", uid=OTHER, rid="r1", sid="s1", step=0, data={"name": "order", "route": "order", "user": "bob", "steps": ["a", "b"]}),
        ev("stepsess", uid=OTHER, rid="r1", sid="s1", step=1, data={"name": "a", "status": "running"}),
    ]


def test_replay_builds_users_routes_sessions():
    state = replay(history())
    assert state.members("users") == {UID, OTHER}
    assert state.members("routes") == {"r1"}
    assert state.members("active") == {"s1"}
    assert state.members("route-active:r1") == {"s1"}
    assert state.doc(f"user:{OTHER}")["active"] == {"r1": "s1"}
    assert state.doc(f"user:{UID}")["routes"] == ["r1"]
    session = state.doc("session:s1")
    assert (session["step"], session["name"], session["status"]) == (1, "a", "running")
    assert [entry["step"] for entry in session["trace"]] == [0, 1]


def test_finishing_step_ends_session():
    events = history() + [
        ev("stepsess", uid=OTHER, rid="r1", sid="s1", step=2, data={"name": "b", "status": "running"}),
        ev("stepsess", uid=OTHER, rid="r1", sid="s1", step=999, dt="2026-01-01T00:01:00.000000Z",
           data={"name": "STOP", "status": "finished"}),
    ]
    state = replay(events)
    session = state.doc("session:s1")
    assert session["status"] == "finished"
    assert session["ended"] == "2026-01-01T00:01:00.000000Z"
    assert state.members("active") == set()
    assert "route-active:r1" not in state.sets
    user = state.doc(f"user:{OTHER}")
    assert user["active"] == {}
    assert (user["started"], user["finished"], user["stopped"]) == (1, 1, 0)


def test_delroute_stops_listed_sessions():
    events = history() + [
        ev("delroute", uid=UID, rid="r1", data={"name": "order", "stopped": [["s1", OTHER, "r1"]]}),
    ]
    state = replay(events)
    assert state.doc("route:r1") is None
    assert state.members("routes") == set()
    assert state.doc("session:s1")["status"] == "stopped"
    assert state.doc("session:s1")["step"] == 999
    assert state.doc(f"user:{OTHER}")["stopped"] == 1
    assert state.doc(f"user:{UID}")["routes"] == []


def test_deluser_removes_user_routes_and_name():
    events = history() + [
        ev("deluser", uid=UID, data={"name": "ann", "routes": ["r1"], "stopped": [["s1", OTHER, "r1"]]}),
    ]
    state = replay(events)
    assert state.doc(f"user:{UID}") is None
    assert state.doc("name:ann") is None
    assert state.members("users") == {OTHER}
    assert state.doc("route:r1") is None
    assert state.doc(f"user:{OTHER}")["active"] == {}


def test_error_events_change_nothing():
    state = replay(history())
    error = ev("error", result="error", uid=UID, rid="r1", code="session_active", data={"action": "startsess"})
    assert project(state, error) == []


def test_projection_reads_only_loaded_documents():
    """A projection asking for a document its command did not load raises."""
    view = LoadedDocuments({})
    step = ev("stepsess", uid=OTHER, rid="r1", sid="s1", step=1, data={"name": "a", "status": "running"})
    with pytest.raises(MissingDocumentError, match="session:s1"):
        project(view, step)


def test_projection_does_not_mutate_its_input():
    state = replay(history())
    session_before = repr(state.doc("session:s1"))
    changes = project(state, ev("stopsess", uid=OTHER, rid="r1", sid="s1", step=999, data={"from_step": 1}))
    assert repr(state.doc("session:s1")) == session_before
    puts = [change for change in changes if isinstance(change, Put)]
    assert {change.key for change in puts} == {"session:s1", f"user:{OTHER}"}
