"""Routes: the ``route:<rid>`` documents, the ``routes`` set, and per route
the ``route-active:<rid>`` set of sessions running on it."""

from __future__ import annotations

from damba import events as ev
from damba.events import Event
from damba.state import ROUTES, Add, Change, Delete, DocumentView, Put, Remove
from damba.state import route_active_key, route_key


def _stopped_sessions(event: Event) -> list[Change]:
    return [
        Remove(route_active_key(rid), sid)
        for sid, _uid, rid in event.data.get("stopped", [])
    ]


def _delete_route(rid: str) -> list[Change]:
    return [Delete(route_key(rid)), Remove(ROUTES, rid)]


def project(view: DocumentView, event: Event) -> list[Change]:
    """Return the changes ``event`` makes to routes."""
    if event.result != "ok":
        return []
    if event.event == ev.ADDROUTE:
        doc = {
            "rid": event.rid,
            "name": event.data["name"],
            "owner": event.uid,
            "owner_name": event.data["owner_name"],
            "text": event.data["text"],
            "steps": list(event.data["steps"]),
            "created": event.dt,
        }
        return [Put(route_key(event.rid), doc), Add(ROUTES, event.rid)]
    if event.event == ev.DELROUTE:
        return _stopped_sessions(event) + _delete_route(event.rid)
    if event.event == ev.DELUSER:
        changes = _stopped_sessions(event)
        for rid in event.data.get("routes", []):
            changes += _delete_route(rid)
        return changes
    if event.event == ev.STARTSESS:
        return [Add(route_active_key(event.rid), event.sid)]
    if event.event == ev.STEPSESS and event.data["status"] == "finished":
        return [Remove(route_active_key(event.rid), event.sid)]
    if event.event == ev.STOPSESS:
        return [Remove(route_active_key(event.rid), event.sid)]
    return []
