"""Sessions: the ``session:<sid>`` documents, which are kept after a session
ends so its results stay readable, and the ``sessions`` and ``active`` sets."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from damba import events as ev
from damba.events import END_STEP, Event
from damba.state import ACTIVE, SESSIONS, Add, Change, DocumentView, Put, Remove
from damba.state import session_key

STOP_NAME = "STOP"


def _started(event: Event) -> dict[str, Any]:
    return {
        "sid": event.sid,
        "rid": event.rid,
        "route": event.data["route"],
        "uid": event.uid,
        "user": event.data["user"],
        "steps": list(event.data["steps"]),
        "step": 0,
        "name": event.data["name"],
        "status": "running",
        "started": event.dt,
        "ended": None,
        "trace": [{"step": 0, "name": event.data["name"], "at": event.dt}],
    }


def _moved(view: DocumentView, event: Event, sid: str, step: int, name: str, status: str):
    doc = deepcopy(view.doc(session_key(sid)))
    doc["step"] = step
    doc["name"] = name
    doc["status"] = status
    doc["trace"].append({"step": step, "name": name, "at": event.dt})
    changes: list[Change] = [Put(session_key(sid), doc)]
    if status != "running":
        doc["ended"] = event.dt
        changes.append(Remove(ACTIVE, sid))
    return changes


def project(view: DocumentView, event: Event) -> list[Change]:
    """Return the changes ``event`` makes to sessions."""
    if event.result != "ok":
        return []
    if event.event == ev.STARTSESS:
        return [
            Put(session_key(event.sid), _started(event)),
            Add(SESSIONS, event.sid),
            Add(ACTIVE, event.sid),
        ]
    if event.event == ev.STEPSESS:
        return _moved(
            view, event, event.sid, event.step, event.data["name"], event.data["status"]
        )
    if event.event == ev.STOPSESS:
        return _moved(view, event, event.sid, END_STEP, STOP_NAME, "stopped")
    if event.event in (ev.DELROUTE, ev.DELUSER):
        changes: list[Change] = []
        for sid, _uid, _rid in event.data.get("stopped", []):
            changes += _moved(view, event, sid, END_STEP, STOP_NAME, "stopped")
        return changes
    return []
