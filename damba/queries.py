"""Queries: the ``/info`` reads, as generators free of I/O like the commands.

Queries never append events and never show an access key or its hash:
participants appear by public name.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from damba import __version__
from damba.config import Limits
from damba.errors import DambaError
from damba.events import Event
from damba.keys import (
    KEY_PATTERN,
    ROUTE_ID_PATTERN,
    SESSION_ID_PATTERN,
    hash_key,
    mask_keys,
)
from damba.protocol import Operation, Read, ReadEvents
from damba.state import ACTIVE, ROUTES, SESSIONS, USERS
from damba.state import route_active_key, route_key, session_key, user_key
from damba.commands import plural, public_route

STREAM_ID_PATTERN = re.compile(r"[0-9]{1,20}(-[0-9]{1,20})?")

# Largest page of events one request may read.
MAX_EVENTS_PAGE = 1000


def _docs(snapshot, keys):
    return [doc for doc in (snapshot.doc(key) for key in keys) if doc is not None]


def service_info(limits: Limits) -> Operation:
    """Summarise the service: version, limits, counts and stream length."""
    snapshot = yield Read(cards=(USERS, ROUTES, SESSIONS, ACTIVE), stream_length=True)
    return {
        "desc": "",
        "version": __version__,
        "limits": {
            "maxusers": limits.maxusers,
            "maxroutes": limits.maxroutes,
            "maxsteps": limits.maxsteps,
        },
        "counts": {
            "users": snapshot.cards[USERS],
            "routes": snapshot.cards[ROUTES],
            "sessions": snapshot.cards[SESSIONS],
            "active_sessions": snapshot.cards[ACTIVE],
        },
        "stream": {"length": snapshot.stream_length},
    }


def _public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": user["name"],
        "joined": user["joined"],
        "routes_owned": len(user["routes"]),
        "active_sessions": len(user["active"]),
        "sessions_started": user["started"],
        "sessions_finished": user["finished"],
        "sessions_stopped": user["stopped"],
    }


def list_users() -> Operation:
    ids = yield Read(members=(USERS,))
    keys = tuple(user_key(uid) for uid in sorted(ids.members[USERS]))
    users = _docs((yield Read(docs=keys)), keys)
    listed = sorted((_public_user(user) for user in users), key=lambda u: u["name"])
    return {"desc": f"{plural(len(listed), 'participant')}.", "users": listed}


def show_user(key: str) -> Operation:
    """Show one participant to the holder of their key: routes and running sessions."""
    if not KEY_PATTERN.fullmatch(key):
        raise DambaError(
            "invalid_key",
            "The access key in the path is malformed; use the uid /user/addme returned.",
        )
    uid = hash_key(key)
    snapshot = yield Read(docs=(user_key(uid),))
    user = snapshot.doc(user_key(uid))
    if user is None:
        raise DambaError(
            "unknown_user",
            "No participant has this access key; register with /user/addme.",
        )
    route_keys = tuple(route_key(rid) for rid in user["routes"])
    session_keys = tuple(session_key(sid) for sid in user["active"].values())
    recent_keys = tuple(session_key(sid) for sid in user["recent"])
    details = yield Read(docs=route_keys + session_keys + recent_keys)
    body = _public_user(user)
    body["routes"] = [public_route(route) for route in _docs(details, route_keys)]
    body["sessions"] = [public_session(s) for s in _docs(details, session_keys)]
    body["recent_sessions"] = [public_session(s) for s in _docs(details, recent_keys)]
    return {"desc": "", "user": body}


def list_routes() -> Operation:
    ids = yield Read(members=(ROUTES,))
    rids = sorted(ids.members[ROUTES])
    keys = tuple(route_key(rid) for rid in rids)
    snapshot = yield Read(docs=keys, cards=tuple(route_active_key(rid) for rid in rids))
    routes = []
    for route in _docs(snapshot, keys):
        listed = public_route(route)
        listed["active_sessions"] = snapshot.cards[route_active_key(route["rid"])]
        routes.append(listed)
    routes.sort(key=lambda r: r["created"])
    return {"desc": f"{plural(len(routes), 'route')}.", "routes": routes}


def _route_and_sessions(rid: str):
    """Load route ``rid`` and the documents of the sessions running on it."""
    if not ROUTE_ID_PATTERN.fullmatch(rid):
        raise DambaError(
            "invalid_id",
            f"Route id {mask_keys(rid)!r} is malformed; route ids look like "
            f"'r' and 12 hex digits.",
        )
    snapshot = yield Read(docs=(route_key(rid),), members=(route_active_key(rid),))
    route = snapshot.doc(route_key(rid))
    if route is None:
        raise DambaError(
            "unknown_route", f"Route {rid} does not exist; list routes with /info/routes."
        )
    sids = sorted(snapshot.members[route_active_key(rid)])
    keys = tuple(session_key(sid) for sid in sids)
    sessions = _docs((yield Read(docs=keys)), keys)
    at_step = Counter(session["step"] for session in sessions)
    body = public_route(route)
    body["active_sessions"] = len(sessions)
    body["active_by_step"] = {str(step): count for step, count in sorted(at_step.items())}
    return body, sessions


def show_route(rid: str) -> Operation:
    """Show one route with its text, steps, and how many sessions stand at each step."""
    body, _sessions = yield from _route_and_sessions(rid)
    return {"desc": "", "route": body}


def show_route_sessions(rid: str, limit: int) -> Operation:
    """Show a route as ``show_route`` does, plus up to ``limit`` of its running sessions.

    The sessions come longest-running first.
    """
    body, sessions = yield from _route_and_sessions(rid)
    sessions.sort(key=lambda session: session["started"])
    return {
        "desc": "",
        "route": body,
        "sessions": [public_session(session) for session in sessions[:limit]],
    }


def public_session(session: dict[str, Any]) -> dict[str, Any]:
    """Return a session document as the API shows it: the participant by name."""
    return {
        "sid": session["sid"],
        "rid": session["rid"],
        "route": session["route"],
        "user": session["user"],
        "step": session["step"],
        "name": session["name"],
        "status": session["status"],
        "total_steps": len(session["steps"]),
        "started": session["started"],
        "ended": session["ended"],
        "trace": session["trace"],
    }


def _load_session(sid: str):
    if not SESSION_ID_PATTERN.fullmatch(sid):
        raise DambaError(
            "invalid_id",
            f"Session id {mask_keys(sid)!r} is malformed; session ids look like "
            f"'s' and 16 hex digits.",
        )
    snapshot = yield Read(docs=(session_key(sid),))
    session = snapshot.doc(session_key(sid))
    if session is None:
        raise DambaError(
            "unknown_session",
            f"Session {sid} does not exist; check the sid that /join returned.",
        )
    return session


def show_session(sid: str) -> Operation:
    session = yield from _load_session(sid)
    return {"desc": "", **public_session(session)}


def _is_stream_id(text: str) -> bool:
    """Tell whether ``text`` is a stream id: one or two numbers below 2**64."""
    if not STREAM_ID_PATTERN.fullmatch(text):
        return False
    return all(int(part) < 2**64 for part in text.split("-"))


def show_session_steps(sid: str) -> Operation:
    """Show a session as ``show_session`` does, plus the names of its route's steps.

    The names are the ones the route had when the session started, so they
    stay readable after the route is deleted.
    """
    session = yield from _load_session(sid)
    return {"desc": "", "session": public_session(session), "step_names": session["steps"]}


def list_active_sessions(limit: int) -> Operation:
    """List up to ``limit`` running sessions and the number running in all.

    Past ``limit`` the sessions shown are a sample by session id, not the
    oldest ones, so a busy service costs one bounded read. They come in the
    order they started.
    """
    ids = yield Read(members=(ACTIVE,))
    sids = sorted(ids.members[ACTIVE])
    keys = tuple(session_key(sid) for sid in sids[:limit])
    sessions = _docs((yield Read(docs=keys)), keys)
    sessions.sort(key=lambda session: session["started"])
    return {
        "desc": f"{len(sids)} running sessions.",
        "total": len(sids),
        "sessions": [public_session(session) for session in sessions],
    }


def list_events(after: str, count: int, reverse: bool = False) -> Operation:
    """Return a page of the event stream after stream id ``after``."""
    if count < 1 or count > MAX_EVENTS_PAGE:
        raise DambaError(
            "invalid_query", f"count must be between 1 and {MAX_EVENTS_PAGE}, got {count}."
        )
    if after != "-":
        check_stream_id("after", after)
    events: list[Event] = yield ReadEvents(after=after, count=count, reverse=reverse)
    last = events[-1].id if events else after
    return {
        "desc": f"{plural(len(events), 'event')}.",
        "events": [event.to_public() for event in events],
        "last_id": last,
    }


def check_stream_id(name: str, value: str) -> None:
    """Reject ``value`` unless it is a stream id such as 1700000000000-0."""
    if not _is_stream_id(value):
        raise DambaError(
            "invalid_query",
            f"{name} must be a stream id such as 1700000000000-0, got {value[:40]!r}.",
        )


def last_event_id() -> Operation:
    """Return the id of the newest event, or ``0-0`` if the stream is empty."""
    newest: list[Event] = yield ReadEvents(count=1, reverse=True)
    return {"desc": "", "last_id": newest[0].id if newest else "0-0"}


def follow_events(after: str, count: int, block_ms: int) -> Operation:
    """Wait up to ``block_ms`` for events after stream id ``after``; return them.

    This is one step of a catch-up subscription: the caller passes the
    ``last_id`` of each reply as the next ``after``, so it misses no event
    however long it was away. ``after`` may be ``0`` for the whole stream.
    """
    check_stream_id("after", after)
    events: list[Event] = yield ReadEvents(after=after, count=count, block_ms=block_ms)
    return {
        "desc": f"{len(events)} events.",
        "events": [event.to_public() for event in events],
        "last_id": events[-1].id if events else after,
    }


def overview(limits: Limits, sessions: int, events: int) -> Operation:
    """Gather the dashboard's overview: the service summary, every route, up to
    ``sessions`` running sessions and the ``events`` newest events.

    The events are read first, so an event appended during the other reads
    comes after ``last_id`` and a subscriber starting there still sees it.
    """
    recent = yield from list_events("-", events, reverse=True)
    info = yield from service_info(limits)
    routes = yield from list_routes()
    running = yield from list_active_sessions(sessions)
    return {
        "desc": "",
        "info": info,
        "routes": routes["routes"],
        "sessions": running["sessions"],
        "sessions_total": running["total"],
        "events": recent["events"],
        "last_id": recent["events"][0]["id"] if recent["events"] else "0-0",
    }
