"""The data of each dashboard page, as query generators free of I/O.

Each function here yields store requests like the queries it calls and
returns the context its template renders. Each page also records the id of
the newest event it has taken into account, so that the page's script can
follow the event stream from exactly there.
"""

from __future__ import annotations

from typing import Any

from damba import queries
from damba.config import Limits
from damba.dashboard import flow
from damba.protocol import Operation

# Running sessions listed on the overview, and on a route's page.
OVERVIEW_SESSIONS = 50
ROUTE_SESSIONS = 100
# Newest events listed on the overview.
OVERVIEW_EVENTS = 20


def _meter(used: int, limit: int | None) -> dict[str, Any]:
    return {"used": used, "limit": limit}


def overview_page(limits: Limits) -> Operation:
    """Gather the overview: counts against limits, routes, sessions, recent events."""
    data = yield from queries.overview(limits, OVERVIEW_SESSIONS, OVERVIEW_EVENTS)
    counts = data["info"]["counts"]
    return {
        "meters": {
            "participants": _meter(counts["users"], limits.maxusers),
            "routes": _meter(counts["routes"], limits.maxroutes),
            "running sessions": _meter(counts["active_sessions"], None),
            "sessions started": _meter(counts["sessions"], None),
        },
        "maxsteps": limits.maxsteps,
        "stream_length": data["info"]["stream"]["length"],
        "version": data["info"]["version"],
        "routes": data["routes"],
        "sessions": data["sessions"],
        "sessions_total": data["sessions_total"],
        "events": data["events"],
        "last_id": data["last_id"],
    }


def route_page(rid: str) -> Operation:
    """Gather a route's page: its flow with the sessions on each step, and those sessions."""
    newest = yield from queries.last_event_id()
    data = yield from queries.show_route_sessions(rid, ROUTE_SESSIONS)
    route = data["route"]
    return {
        "route": route,
        "nodes": flow.route_flow(route["name"], route["steps"], route["active_by_step"]),
        "sessions": data["sessions"],
        "last_id": newest["last_id"],
    }


def session_page(sid: str) -> Operation:
    """Gather a session's page: where it is on its route, and its trace."""
    newest = yield from queries.last_event_id()
    data = yield from queries.show_session_steps(sid)
    session = data["session"]
    trace = session["trace"]
    rows = []
    for number, entry in enumerate(trace):
        previous = trace[number - 1]["at"] if number else None
        rows.append({**entry, "since_previous": previous})
    return {
        "session": session,
        "nodes": flow.session_flow(session, data["step_names"]),
        "trace": rows,
        "stopped_from": flow.stopped_from(session),
        "last_id": newest["last_id"],
    }
