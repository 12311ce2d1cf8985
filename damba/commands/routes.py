"""Routes: store one from text or a step count, and delete one."""

from __future__ import annotations

from damba import events as ev
from damba.commands.checks import check_key, check_route_id, require_route, require_user
from damba.commands.replies import plural, public_route
from damba.commands.stopping import load_stopped_sessions, stopped_list
from damba.commands.transaction import Context, Decision, read_snapshot, reject, transact
from damba.config import Limits
from damba.errors import DambaError
from damba.events import Event, now_iso
from damba.keys import new_route_id
from damba.language import generate_route_text, parse_route
from damba.protocol import Operation, Read, Snapshot
from damba.state import ROUTES, route_active_key, route_key, user_key


def _parse_steps(limits: Limits, raw: str) -> str | DambaError:
    """Return generated route text for a step count, or the error to raise."""
    if not (raw.isascii() and raw.isdigit()):
        return DambaError(
            "invalid_steps",
            f"The step count {raw[:20]!r} is not a whole number in ASCII digits; "
            f"use 1 to {limits.maxsteps}.",
        )
    # Python refuses to convert strings of more than 4300 digits, so a count
    # too long to be in range is rejected before int() sees it.
    if len(raw) > 9 or int(raw) > limits.maxsteps:
        return DambaError(
            "maxsteps_exceeded",
            f"A route may have at most {limits.maxsteps} steps, got {raw[:20]}; "
            f"ask for fewer or raise DAMBA_MAXSTEPS.",
        )
    steps = int(raw)
    if steps < 1:
        return DambaError(
            "invalid_steps", f"A route needs at least 1 step, got {steps}."
        )
    return generate_route_text(steps)


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
        return (yield from read_snapshot(docs=(user_key(uid),), cards=(ROUTES,)))

    def decide(snapshot: Snapshot) -> Decision:
        user = require_user(snapshot, uid)
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
        return snapshot.merge((yield from load_stopped_sessions(sids, uid)))

    def decide(snapshot: Snapshot) -> Decision:
        require_user(snapshot, uid)
        route = require_route(snapshot, rid)
        if route["owner"] != uid:
            raise DambaError(
                "not_owner",
                f"Route {rid} belongs to {route['owner_name']}; only its owner may delete it.",
            )
        stopped = stopped_list(snapshot, set(snapshot.members[route_active_key(rid)]))
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
