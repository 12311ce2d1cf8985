"""Input checks and look-ups that every command starts with."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from damba.commands.transaction import Context, reject
from damba.errors import DambaError
from damba.keys import (
    KEY_PATTERN,
    ROUTE_ID_PATTERN,
    SESSION_ID_PATTERN,
    hash_key,
    mask_keys,
)
from damba.protocol import Snapshot
from damba.state import route_key, user_key


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
    context.rid = mask_keys(rid)
    if not ROUTE_ID_PATTERN.fullmatch(rid):
        yield from reject(
            context,
            DambaError(
                "invalid_id",
                f"Route id {mask_keys(rid)!r} is malformed; route ids look like "
                f"'r' and 12 hex digits, as /addroute returned.",
            ),
        )


def check_session_id(context: Context, sid: str) -> Generator:
    context.sid = mask_keys(sid)
    if not SESSION_ID_PATTERN.fullmatch(sid):
        yield from reject(
            context,
            DambaError(
                "invalid_id",
                f"Session id {mask_keys(sid)!r} is malformed; session ids look like "
                f"'s' and 16 hex digits, as /join returned.",
            ),
        )


def require_user(snapshot: Snapshot, uid: str) -> dict[str, Any]:
    user = snapshot.doc(user_key(uid))
    if user is None:
        raise DambaError(
            "unknown_user",
            "No participant has this access key; register with /user/addme "
            "and use the uid it returns.",
        )
    return user


def require_route(snapshot: Snapshot, rid: str) -> dict[str, Any]:
    route = snapshot.doc(route_key(rid))
    if route is None:
        raise DambaError(
            "unknown_route",
            f"Route {rid} does not exist; list the routes with /info/routes.",
        )
    return route
