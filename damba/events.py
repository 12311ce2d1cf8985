"""Events: the facts Damba records, and their form in the Redis Stream.

Every action appends one event. A rejected action appends an ``error`` event
that names the action tried and why it failed. Events never hold an access
key, only its hash (``uid``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

INIT = "init"
ADDUSER = "adduser"
DELUSER = "deluser"
ADDROUTE = "addroute"
DELROUTE = "delroute"
STARTSESS = "startsess"
STEPSESS = "stepsess"
STOPSESS = "stopsess"
ERROR = "error"
EVENT_NAMES = (INIT, ADDUSER, DELUSER, ADDROUTE, DELROUTE, STARTSESS, STEPSESS, STOPSESS, ERROR)

# The step number a session reports once it has ended, finished or stopped.
END_STEP = 999


def now_iso() -> str:
    """Return the current UTC time as ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """One entry of the event stream."""

    event: str
    dt: str
    result: str = "ok"
    uid: str = ""
    rid: str = ""
    sid: str = ""
    step: int | None = None
    what: str = ""
    code: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # The stream id, known once the event has been appended.
    id: str = ""

    def to_fields(self) -> dict[str, str]:
        """Encode as the flat string fields of a stream entry."""
        return {
            "event": self.event,
            "dt": self.dt,
            "result": self.result,
            "uid": self.uid,
            "rid": self.rid,
            "sid": self.sid,
            "step": "" if self.step is None else str(self.step),
            "what": self.what,
            "code": self.code,
            "data": orjson.dumps(self.data).decode(),
        }

    @classmethod
    def from_fields(cls, stream_id: str, fields: dict[str, str]) -> Event:
        """Decode a stream entry written by ``to_fields``."""
        step = fields.get("step", "")
        return cls(
            event=fields.get("event", ""),
            dt=fields.get("dt", ""),
            result=fields.get("result", "ok"),
            uid=fields.get("uid", ""),
            rid=fields.get("rid", ""),
            sid=fields.get("sid", ""),
            step=int(step) if step else None,
            what=fields.get("what", ""),
            code=fields.get("code", ""),
            data=orjson.loads(fields.get("data") or "{}"),
            id=stream_id,
        )

    def to_public(self) -> dict[str, Any]:
        """Return the event as the API shows it."""
        public = self.to_fields()
        public["id"] = self.id
        public["step"] = self.step
        public["data"] = self.data
        return public
