"""Participants: register and leave."""

from __future__ import annotations

import secrets

from damba import events as ev
from damba.commands.checks import check_key, require_user
from damba.commands.replies import plural
from damba.commands.stopping import load_stopped_sessions, stopped_list
from damba.commands.transaction import Context, Decision, read_snapshot, reject, transact
from damba.config import Limits
from damba.errors import DambaError
from damba.events import Event, now_iso
from damba.keys import hash_key, new_access_key
from damba.names import MAX_NAME_LENGTH, name_problem, normalize_name
from damba.protocol import Operation, Read, Snapshot
from damba.state import USERS, name_key, route_active_key, route_key, user_key


def add_user(limits: Limits, name: str | None) -> Operation:
    """Register a participant; the reply contains their new access key."""
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
        return (yield from read_snapshot(docs=(name_key(chosen),), cards=(USERS,)))

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
        return snapshot.merge((yield from load_stopped_sessions(sids, uid)))

    def decide(snapshot: Snapshot) -> Decision:
        user = require_user(snapshot, uid)
        sids = set(user["active"].values())
        for ids in snapshot.members.values():
            sids.update(ids)
        stopped = stopped_list(snapshot, sids)
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
