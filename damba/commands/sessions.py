"""Sessions: join a route, step through it, stop early."""

from __future__ import annotations


from damba import events as ev
from damba.commands.checks import (
    check_key,
    check_route_id,
    check_session_id,
    require_route,
    require_user,
)
from damba.commands.replies import session_reply
from damba.commands.transaction import Context, Decision, Loader, read_snapshot, transact
from damba.errors import DambaError
from damba.events import END_STEP, Event, now_iso
from damba.keys import new_session_id
from damba.protocol import Follow, Operation, Snapshot
from damba.state import route_key, session_key, user_key


def join(key: str, rid: str) -> Operation:
    """Start a session of a route, standing at its START."""
    context = Context("startsess")
    yield from check_key(context, key)
    yield from check_route_id(context, rid)
    uid = context.uid
    sid = new_session_id()

    def load():
        return (yield from read_snapshot(docs=(user_key(uid), route_key(rid))))

    def decide(snapshot: Snapshot) -> Decision:
        user = require_user(snapshot, uid)
        route = require_route(snapshot, rid)
        running = user["active"].get(rid)
        if running:
            raise DambaError(
                "session_active",
                f"You already run session {running} on route {rid}; "
                f"step or stop it before joining again.",
            )
        data = {
            "name": route["name"],
            "route": route["name"],
            "user": user["name"],
            "steps": route["steps"],
        }
        event = Event(ev.STARTSESS, now_iso(), uid=uid, rid=rid, sid=sid, step=0, data=data)
        reply = session_reply(
            {"sid": sid, "rid": rid, "step": 0, "name": route["name"], "status": "running"},
            f"Started session {sid} at START {route['name']!r}.",
        )
        return Decision(event, reply)

    return (yield from transact(context, load, decide))


def _session_loader(uid: str, rid: str | None, sid: str | None) -> Loader:
    """Load the participant and the session named by id, or by the route it runs on."""

    def load():
        if sid is not None:
            return (yield from read_snapshot(docs=(user_key(uid), session_key(sid))))
        follow = Follow(user_key(uid), "active", rid, "session:")
        return (yield from read_snapshot(docs=(user_key(uid),), follow=(follow,)))

    return load


def _require_session(snapshot: Snapshot, uid: str, rid: str | None, sid: str | None):
    user = require_user(snapshot, uid)
    if sid is None:
        sid = user["active"].get(rid)
        if sid is None:
            raise DambaError(
                "no_active_session",
                f"You run no session on route {rid}; start one with /join.",
            )
    session = snapshot.doc(session_key(sid))
    if session is None:
        raise DambaError(
            "unknown_session", f"Session {sid} does not exist; check the sid /join returned."
        )
    if session["uid"] != uid:
        raise DambaError(
            "not_your_session",
            f"Session {sid} belongs to another participant; you may move only your own.",
        )
    if session["status"] != "running":
        raise DambaError(
            "session_ended",
            f"Session {sid} has already {session['status']} and cannot move; "
            f"read its results at /info/session/{sid} or join the route again.",
        )
    return session


def _checked_context(action: str, key: str, rid: str | None, sid: str | None):
    """Check the key and the session's id, or its route's id; return the context."""
    context = Context(action)
    yield from check_key(context, key)
    if sid is not None:
        yield from check_session_id(context, sid)
    else:
        yield from check_route_id(context, rid)
    return context


def step(key: str, rid: str | None = None, sid: str | None = None) -> Operation:
    """Move a session to its next step; past the last STEP it finishes at STOP."""
    context = yield from _checked_context("stepsess", key, rid, sid)
    uid = context.uid

    def decide(snapshot: Snapshot) -> Decision:
        session = _require_session(snapshot, uid, rid, sid)
        steps = session["steps"]
        number = session["step"] + 1
        if number <= len(steps):
            moved = {"step": number, "name": steps[number - 1], "status": "running"}
            desc = f"Moved to step {number} of {len(steps)}, {moved['name']!r}."
        else:
            moved = {"step": END_STEP, "name": "STOP", "status": "finished"}
            desc = f"Reached STOP; session {session['sid']} finished."
        event = Event(
            ev.STEPSESS, now_iso(), uid=uid, rid=session["rid"], sid=session["sid"],
            step=moved["step"], data={"name": moved["name"], "status": moved["status"]},
        )
        return Decision(event, session_reply({**session, **moved}, desc))

    return (yield from transact(context, _session_loader(uid, rid, sid), decide))


def stop(key: str, rid: str | None = None, sid: str | None = None) -> Operation:
    """End a session early, as stopped."""
    context = yield from _checked_context("stopsess", key, rid, sid)
    uid = context.uid

    def decide(snapshot: Snapshot) -> Decision:
        session = _require_session(snapshot, uid, rid, sid)
        event = Event(
            ev.STOPSESS, now_iso(), uid=uid, rid=session["rid"], sid=session["sid"],
            step=END_STEP, data={"from_step": session["step"]},
        )
        moved = {"step": END_STEP, "name": "STOP", "status": "stopped"}
        desc = f"Stopped session {session['sid']} at step {session['step']}."
        return Decision(event, session_reply({**session, **moved}, desc))

    return (yield from transact(context, _session_loader(uid, rid, sid), decide))
