"""Commands: every action a participant takes, as rules free of I/O.

Each command is a generator (see ``damba.protocol``). It reads what its rules
need, decides on one event, and asks the store to append that event and
apply its projection in one atomic script, on the condition that nothing it
read has changed since (optimistic concurrency). If something has changed,
the whole attempt runs again on fresh data.

Optimistic checks, rather than rules written in a Lua script, keep every rule
in this one Python module, which the WSGI and ASGI apps share. A session step
costs two round trips: one read and one conditional commit.

A rejected action appends an ``error`` event under the same checks, so the
stream records each rejection against the state that caused it, then raises
the DambaError for the HTTP layer to return.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any

from damba import events as ev
from damba.config import Limits
from damba.errors import DambaError
from damba.events import END_STEP, Event, now_iso
from damba.keys import (
    KEY_PATTERN,
    ROUTE_ID_PATTERN,
    SESSION_ID_PATTERN,
    hash_key,
    new_access_key,
    new_route_id,
    new_session_id,
)
from damba.language import generate_route_text, parse_route
from damba.names import MAX_NAME_LENGTH, name_problem, normalize_name
from damba.protocol import Backoff, Commit, Follow, Operation, Read, Snapshot
from damba.state import ROUTES, USERS, name_key, route_active_key, route_key
from damba.state import session_key, user_key
from projections import project

# Attempts before a command gives up on a key that keeps changing under it.
MAX_ATTEMPTS = 20


@dataclass
class Context:
    """What an action is about, for the error event if it is rejected."""

    action: str
    uid: str = ""
    rid: str = ""
    sid: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The event a command appends, the reply it returns, and the set-size limits
    that must still hold when it commits."""

    event: Event
    reply: dict[str, Any]
    limits: tuple[tuple[str, int], ...] = ()


Loader = Callable[[], Generator[Any, Any, Snapshot]]


def _error_event(context: Context, error: DambaError) -> Event:
    return Event(
        event=ev.ERROR,
        dt=now_iso(),
        result="error",
        uid=context.uid,
        rid=context.rid,
        sid=context.sid,
        what=error.message,
        code=error.code,
        data={"action": context.action, **context.extra},
    )


def _commit(snapshot: Snapshot | None, event: Event, limits=()) -> Generator:
    """Yield the Commit for ``event``; return the stream id, or None on conflict."""
    if snapshot is None:
        snapshot = Snapshot()
    changes = project(snapshot.view(), event)
    checks = snapshot.checks() + [("card_lt", key, limit) for key, limit in limits]
    return (yield Commit(event=event, changes=changes, checks=checks))


def reject(context: Context, error: DambaError) -> Generator:
    """Append the error event for an action rejected before any read, then raise."""
    yield from _commit(None, _error_event(context, error))
    raise error


def transact(context: Context, load: Loader, decide: Callable[[Snapshot], Decision]):
    """Run read, decide, commit until the commit's checks hold; return the reply."""
    for attempt in range(MAX_ATTEMPTS):
        snapshot = yield from load()
        try:
            decision = decide(snapshot)
        except DambaError as error:
            if (yield from _commit(snapshot, _error_event(context, error))) is None:
                yield Backoff(attempt)
                continue
            raise
        event = decision.event
        if not event.what:
            event = replace(event, what=decision.reply["desc"])
        if (yield from _commit(snapshot, event, decision.limits)) is not None:
            return decision.reply
        yield Backoff(attempt)

    busy = DambaError(
        "store_busy",
        f"The {context.action} request lost {MAX_ATTEMPTS} races with concurrent "
        f"requests on the same data; retry it.",
    )
    yield from reject(context, busy)


def _read(**kwargs) -> Generator:
    snapshot = yield Read(**kwargs)
    return snapshot


def plural(count: int, noun: str) -> str:
    """Return "1 step", "2 steps": a count with its noun."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# ---------------------------------------------------------------- input checks


def check_key(context: Context, key: str) -> Generator:
    """Set the context's uid from an access key, rejecting a malformed key."""
    context.uid = hash_key(key)
    if not KEY_PATTERN.fullmatch(key):
        yield from reject(
            context,
            DambaError(
                "invalid_key",
                "The access key in the path is malformed; use the 32-character "
                "uid that /user/addme returned.",
            ),
        )


def check_route_id(context: Context, rid: str) -> Generator:
    context.rid = rid[:64]
    if not ROUTE_ID_PATTERN.fullmatch(rid):
        yield from reject(
            context,
            DambaError(
                "invalid_id",
                f"Route id {rid[:64]!r} is malformed; route ids look like "
                f"'r' and 12 hex digits, as /addroute returned.",
            ),
        )


def check_session_id(context: Context, sid: str) -> Generator:
    context.sid = sid[:64]
    if not SESSION_ID_PATTERN.fullmatch(sid):
        yield from reject(
            context,
            DambaError(
                "invalid_id",
                f"Session id {sid[:64]!r} is malformed; session ids look like "
                f"'s' and 16 hex digits, as /join returned.",
            ),
        )


def _require_user(snapshot: Snapshot, uid: str) -> dict[str, Any]:
    user = snapshot.doc(user_key(uid))
    if user is None:
        raise DambaError(
            "unknown_user",
            "No participant has this access key; register with /user/addme "
            "and use the uid it returns.",
        )
    return user


def _require_route(snapshot: Snapshot, rid: str) -> dict[str, Any]:
    route = snapshot.doc(route_key(rid))
    if route is None:
        raise DambaError(
            "unknown_route",
            f"Route {rid} does not exist; list the routes with /info/routes.",
        )
    return route


# ---------------------------------------------------------------- participants


def add_user(limits: Limits, name: str | None) -> Operation:
    """Register a participant; the reply holds their new access key."""
    context = Context("adduser")
    if name is not None:
        name = normalize_name(name)
        problem = name_problem(name)
        if problem:
            context.extra["name"] = name[:MAX_NAME_LENGTH]
            message = f"The name {problem}; send 1 to {MAX_NAME_LENGTH} characters or leave it out."
            yield from reject(context, DambaError("invalid_name", message))
    key = new_access_key()
    context.uid = hash_key(key)
    chosen = name or "user-" + secrets.token_hex(4)

    def load():
        return (yield from _read(docs=(name_key(chosen),), cards=(USERS,)))

    def decide(snapshot: Snapshot) -> Decision:
        if snapshot.raw[name_key(chosen)] is not None:
            raise DambaError(
                "name_taken",
                f"The name {chosen!r} is taken by another participant; choose another.",
            )
        if snapshot.cards[USERS] >= limits.maxusers:
            raise DambaError(
                "maxusers_reached",
                f"The service already has {limits.maxusers} participants, its limit; "
                f"try again after one leaves, or raise DAMBA_MAXUSERS.",
            )
        event = Event(ev.ADDUSER, now_iso(), uid=context.uid, data={"name": chosen})
        reply = {"desc": f"Registered {chosen}; keep the uid secret.", "uid": key, "name": chosen}
        return Decision(event, reply, ((USERS, limits.maxusers),))

    return (yield from transact(context, load, decide))


def _load_stopped_sessions(sids: set[str], known_uid: str) -> Generator:
    """Load the sessions ``sids`` and their owners' documents."""
    sessions = yield Read(docs=tuple(session_key(sid) for sid in sorted(sids)))
    owners = {
        sessions.doc(session_key(sid))["uid"]
        for sid in sids
        if sessions.raw[session_key(sid)] is not None
    }
    owners.discard(known_uid)
    users = yield Read(docs=tuple(user_key(uid) for uid in sorted(owners)))
    return sessions.merge(users)


def _stopped_list(snapshot: Snapshot, sids: set[str]) -> list[list[str]]:
    """Return [sid, owner uid, rid] for each running session among ``sids``."""
    stopped = []
    for sid in sorted(sids):
        session = snapshot.doc(session_key(sid))
        if session is not None and session["status"] == "running":
            stopped.append([sid, session["uid"], session["rid"]])
    return stopped


def kill_user(key: str) -> Operation:
    """Stop a participant's sessions, delete the routes they own, remove them."""
    context = Context("deluser")
    yield from check_key(context, key)
    uid = context.uid

    def load():
        snapshot = yield Read(docs=(user_key(uid),))
        user = snapshot.doc(user_key(uid))
        if user is None:
            return snapshot
        routes = tuple(user["routes"])
        owned = yield Read(
            docs=tuple(route_key(rid) for rid in routes),
            members=tuple(route_active_key(rid) for rid in routes),
        )
        snapshot.merge(owned)
        sids = set(user["active"].values())
        for ids in owned.members.values():
            sids.update(ids)
        return snapshot.merge((yield from _load_stopped_sessions(sids, uid)))

    def decide(snapshot: Snapshot) -> Decision:
        user = _require_user(snapshot, uid)
        sids = set(user["active"].values())
        for ids in snapshot.members.values():
            sids.update(ids)
        stopped = _stopped_list(snapshot, sids)
        data = {"name": user["name"], "routes": list(user["routes"]), "stopped": stopped}
        event = Event(ev.DELUSER, now_iso(), uid=uid, data=data)
        reply = {
            "desc": f"Removed {user['name']}, {plural(len(user['routes']), 'route')} "
            f"and {plural(len(stopped), 'running session')}.",
            "name": user["name"],
            "routes_deleted": list(user["routes"]),
            "sessions_stopped": len(stopped),
        }
        return Decision(event, reply)

    return (yield from transact(context, load, decide))


# ---------------------------------------------------------------- routes


def _parse_steps(limits: Limits, raw: str) -> str | DambaError:
    """Return generated route text for a step count, or the error to raise."""
    if not (raw.isascii() and raw.isdigit()):
        return DambaError(
            "invalid_steps",
            f"The step count {raw[:20]!r} is not a whole number in ASCII digits; "
            f"use 1 to {limits.maxsteps}.",
        )
    # Python refuses to convert strings of more than 4300 digits.
    steps = int(raw) if len(raw) <= 9 else limits.maxsteps + 1
    if steps < 1:
        return DambaError(
            "invalid_steps", f"A route needs at least 1 step, got {steps}."
        )
    if steps > limits.maxsteps:
        return DambaError(
            "maxsteps_exceeded",
            f"A route may have at most {limits.maxsteps} steps, got {steps}; "
            f"ask for fewer or raise DAMBA_MAXSTEPS.",
        )
    return generate_route_text(steps)


def public_route(route: dict[str, Any]) -> dict[str, Any]:
    """Return a route document as the API shows it: the owner by name only."""
    return {
        "rid": route["rid"],
        "name": route["name"],
        "owner": route["owner_name"],
        "text": route["text"],
        "steps": route["steps"],
        "created": route["created"],
    }


def add_route(limits: Limits, key: str, text: str | None = None, steps: str | None = None):
    """Store a route from its text, or from a step count alone."""
    context = Context("addroute")
    yield from check_key(context, key)
    uid = context.uid
    if steps is not None:
        generated = _parse_steps(limits, steps)
        if isinstance(generated, DambaError):
            context.extra["steps"] = steps[:20]
            yield from reject(context, generated)
        text = generated
    rid = new_route_id()

    def load():
        return (yield from _read(docs=(user_key(uid),), cards=(ROUTES,)))

    def decide(snapshot: Snapshot) -> Decision:
        user = _require_user(snapshot, uid)
        definition = parse_route(text, limits.maxsteps)
        if snapshot.cards[ROUTES] >= limits.maxroutes:
            raise DambaError(
                "maxroutes_reached",
                f"The service already stores {limits.maxroutes} routes, its limit; "
                f"delete one with /delroute or raise DAMBA_MAXROUTES.",
            )
        data = {
            "name": definition.name,
            "text": text,
            "steps": list(definition.steps),
            "owner_name": user["name"],
        }
        event = Event(ev.ADDROUTE, now_iso(), uid=uid, rid=rid, data=data)
        route = public_route({**data, "rid": rid, "created": event.dt})
        reply = {
            "desc": f"Stored route {definition.name!r} with "
            f"{plural(len(definition.steps), 'step')}.",
            "rid": rid,
            "route": route,
        }
        return Decision(event, reply, ((ROUTES, limits.maxroutes),))

    return (yield from transact(context, load, decide))


def delete_route(key: str, rid: str) -> Operation:
    """Delete a route its owner no longer wants; its running sessions stop."""
    context = Context("delroute")
    yield from check_key(context, key)
    yield from check_route_id(context, rid)
    uid = context.uid

    def load():
        snapshot = yield Read(
            docs=(user_key(uid), route_key(rid)), members=(route_active_key(rid),)
        )
        sids = set(snapshot.members[route_active_key(rid)])
        return snapshot.merge((yield from _load_stopped_sessions(sids, uid)))

    def decide(snapshot: Snapshot) -> Decision:
        _require_user(snapshot, uid)
        route = _require_route(snapshot, rid)
        if route["owner"] != uid:
            raise DambaError(
                "not_owner",
                f"Route {rid} belongs to {route['owner_name']}; only its owner may delete it.",
            )
        stopped = _stopped_list(snapshot, set(snapshot.members[route_active_key(rid)]))
        event = Event(
            ev.DELROUTE, now_iso(), uid=uid, rid=rid,
            data={"name": route["name"], "stopped": stopped},
        )
        reply = {
            "desc": f"Deleted route {route['name']!r} and stopped "
            f"{plural(len(stopped), 'session')}.",
            "rid": rid,
            "sessions_stopped": len(stopped),
        }
        return Decision(event, reply)

    return (yield from transact(context, load, decide))


# ---------------------------------------------------------------- sessions


def session_reply(session: dict[str, Any], desc: str) -> dict[str, Any]:
    return {
        "desc": desc,
        "sid": session["sid"],
        "rid": session["rid"],
        "step": session["step"],
        "name": session["name"],
        "status": session["status"],
    }


def join(key: str, rid: str) -> Operation:
    """Start a session of a route, standing at its START."""
    context = Context("startsess")
    yield from check_key(context, key)
    yield from check_route_id(context, rid)
    uid = context.uid
    sid = new_session_id()

    def load():
        return (yield from _read(docs=(user_key(uid), route_key(rid))))

    def decide(snapshot: Snapshot) -> Decision:
        user = _require_user(snapshot, uid)
        route = _require_route(snapshot, rid)
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
            return (yield from _read(docs=(user_key(uid), session_key(sid))))
        follow = Follow(user_key(uid), "active", rid, "session:")
        return (yield from _read(docs=(user_key(uid),), follow=(follow,)))

    return load


def _require_session(snapshot: Snapshot, uid: str, rid: str | None, sid: str | None):
    user = _require_user(snapshot, uid)
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


def step(key: str, rid: str | None = None, sid: str | None = None) -> Operation:
    """Move a session to its next step; past the last STEP it finishes at STOP."""
    context = Context("stepsess")
    yield from check_key(context, key)
    if sid is not None:
        yield from check_session_id(context, sid)
    else:
        yield from check_route_id(context, rid)
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
    context = Context("stopsess")
    yield from check_key(context, key)
    if sid is not None:
        yield from check_session_id(context, sid)
    else:
        yield from check_route_id(context, rid)
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


def init(version: str, limits: Limits) -> Event:
    """Build the event that opens a new stream."""
    data = {
        "version": version,
        "limits": {
            "maxusers": limits.maxusers,
            "maxroutes": limits.maxroutes,
            "maxsteps": limits.maxsteps,
        },
    }
    return Event(ev.INIT, now_iso(), what="stream opened", data=data)
