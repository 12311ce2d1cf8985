"""Participants: the ``user:<uid>`` and ``name:<name>`` documents and the ``users`` set."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from damba import events as ev
from damba.events import Event
from damba.state import USERS, Add, Change, Delete, DocumentView, Put, Remove
from damba.state import name_key, user_key


# Ended sessions a participant's document remembers, newest last.
RECENT_SESSIONS = 20


def _new_user(event: Event) -> dict[str, Any]:
    return {
        "uid": event.uid,
        "name": event.data["name"],
        "joined": event.dt,
        "routes": [],
        "active": {},
        "recent": [],
        "started": 0,
        "finished": 0,
        "stopped": 0,
    }


class _Edits:
    """User documents changed by one event, each loaded and copied once."""

    def __init__(self, view: DocumentView) -> None:
        self._view = view
        self.docs: dict[str, dict[str, Any]] = {}

    def user(self, uid: str) -> dict[str, Any] | None:
        if uid not in self.docs:
            doc = self._view.doc(user_key(uid))
            if doc is None:
                return None
            self.docs[uid] = deepcopy(doc)
        return self.docs[uid]

    def end_session(self, uid: str, rid: str, outcome: str) -> None:
        doc = self.user(uid)
        if doc is None:
            return
        sid = doc["active"].pop(rid, None)
        doc[outcome] += 1
        if sid is not None:
            doc["recent"] = (doc["recent"] + [sid])[-RECENT_SESSIONS:]

    def puts(self) -> list[Change]:
        return [Put(user_key(uid), doc) for uid, doc in self.docs.items()]


def project(view: DocumentView, event: Event) -> list[Change]:
    """Return the changes ``event`` makes to participants."""
    if event.result != "ok":
        return []
    if event.event == ev.ADDUSER:
        return [
            Put(user_key(event.uid), _new_user(event)),
            Put(name_key(event.data["name"]), {"uid": event.uid}),
            Add(USERS, event.uid),
        ]

    edits = _Edits(view)
    removed: list[Change] = []
    if event.event == ev.DELUSER:
        for sid, uid, rid in event.data.get("stopped", []):
            if uid != event.uid:
                edits.end_session(uid, rid, "stopped")
        removed = [
            Delete(user_key(event.uid)),
            Delete(name_key(event.data["name"])),
            Remove(USERS, event.uid),
        ]
        edits.docs.pop(event.uid, None)
    elif event.event == ev.ADDROUTE:
        edits.user(event.uid)["routes"].append(event.rid)
    elif event.event == ev.DELROUTE:
        owner = edits.user(event.uid)
        owner["routes"] = [rid for rid in owner["routes"] if rid != event.rid]
        for sid, uid, rid in event.data.get("stopped", []):
            edits.end_session(uid, rid, "stopped")
    elif event.event == ev.STARTSESS:
        doc = edits.user(event.uid)
        doc["active"][event.rid] = event.sid
        doc["started"] += 1
    elif event.event == ev.STEPSESS:
        if event.data["status"] == "finished":
            edits.end_session(event.uid, event.rid, "finished")
    elif event.event == ev.STOPSESS:
        edits.end_session(event.uid, event.rid, "stopped")
    return edits.puts() + removed
