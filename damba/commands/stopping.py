"""Finding the running sessions that deleting a route or a participant stops."""

from __future__ import annotations

from collections.abc import Generator

from damba.protocol import Read, Snapshot
from damba.state import session_key, user_key


def load_stopped_sessions(sids: set[str], known_uid: str) -> Generator:
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


def stopped_list(snapshot: Snapshot, sids: set[str]) -> list[list[str]]:
    """Return [sid, owner uid, rid] for each running session among ``sids``."""
    stopped = []
    for sid in sorted(sids):
        session = snapshot.doc(session_key(sid))
        if session is not None and session["status"] == "running":
            stopped.append([sid, session["uid"], session["rid"]])
    return stopped
