"""Event streams built by hand, entry by entry, for the report's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from reports.frames import FrameBuilder, Frames

START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


class HandStream:
    """Stream entries as Damba writes them, at times given in seconds after START."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, str]]] = []

    def add(self, at: float, event: str, result: str = "ok", uid: str = "", rid: str = "",
            sid: str = "", step: int | None = None, code: str = "",
            data: dict | None = None, dt: str | None = None) -> None:
        moment = START + timedelta(seconds=at)
        if dt is None:
            dt = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
        entry_id = f"{int(moment.timestamp() * 1000)}-{len(self.entries)}"
        self.entries.append((entry_id, {
            "event": event, "dt": dt, "result": result, "uid": uid, "rid": rid,
            "sid": sid, "step": "" if step is None else str(step), "what": "",
            "code": code, "data": orjson.dumps(data or {}).decode(),
        }))

    def init(self, at: float) -> None:
        self.add(at, "init", data={"version": "0.1.0"})

    def user(self, at: float, uid: str, name: str) -> None:
        self.add(at, "adduser", uid=uid, data={"name": name})

    def route(self, at: float, uid: str, rid: str, name: str, steps: list[str],
              owner_name: str = "") -> None:
        self.add(at, "addroute", uid=uid, rid=rid,
                 data={"name": name, "text": "", "steps": steps, "owner_name": owner_name})

    def start(self, at: float, uid: str, rid: str, sid: str) -> None:
        self.add(at, "startsess", uid=uid, rid=rid, sid=sid, step=0)

    def step(self, at: float, uid: str, rid: str, sid: str, step: int) -> None:
        self.add(at, "stepsess", uid=uid, rid=rid, sid=sid, step=step,
                 data={"name": f"step {step}", "status": "running"})

    def finish(self, at: float, uid: str, rid: str, sid: str) -> None:
        self.add(at, "stepsess", uid=uid, rid=rid, sid=sid, step=999,
                 data={"name": "STOP", "status": "finished"})

    def stop(self, at: float, uid: str, rid: str, sid: str, from_step: int) -> None:
        self.add(at, "stopsess", uid=uid, rid=rid, sid=sid, step=999,
                 data={"from_step": from_step})

    def error(self, at: float, uid: str, code: str, action: str) -> None:
        self.add(at, "error", result="error", uid=uid, code=code, data={"action": action})

    def delete_route(self, at: float, uid: str, rid: str, stopped: list[list[str]]) -> None:
        self.add(at, "delroute", uid=uid, rid=rid, data={"name": "", "stopped": stopped})

    def leave(self, at: float, uid: str, name: str, routes: list[str],
              stopped: list[list[str]]) -> None:
        self.add(at, "deluser", uid=uid,
                 data={"name": name, "routes": routes, "stopped": stopped})

    def frames(self, page_size: int = 1000) -> Frames:
        """Fold the entries into frames, ``page_size`` entries a page."""
        builder = FrameBuilder()
        for begin in range(0, len(self.entries), page_size):
            builder.add_page(self.entries[begin:begin + page_size])
        return builder.frames()
