"""The event that opens a new stream."""

from __future__ import annotations

from damba import events as ev
from damba.config import Limits
from damba.events import Event, now_iso


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
