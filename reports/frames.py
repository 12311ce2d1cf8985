"""Build pandas frames from pages of the event stream.

``FrameBuilder`` folds the stream one page at a time and keeps, instead of
the entries, a few numbers per session and per step a session leaves, plus
counters: a few dozen bytes per event rather than the kilobyte or so a
decoded entry takes. Its ``frames()`` turns them into pandas frames for
``reports.statistics``.

Times are the events' ``dt`` fields, in integer microseconds since the epoch,
so durations are exact. An entry whose ``dt`` is missing or malformed falls
back to the millisecond of its stream id.

Participants appear in the frames as integer indexes whose ``participants``
row contains the public name; no frame contains an access key or its hash.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from damba import events as ev
from damba.events import END_STEP
from reports.stream import Page

# Stand-in for "no time yet"; viewed as datetime64 it is NaT.
NO_TIME = np.iinfo(np.int64).min
# The participant index of events whose uid no adduser event registered:
# rejected registrations, malformed or unknown access keys.
UNREGISTERED = -1
UNREGISTERED_NAME = "(unregistered)"

# The ways a session can leave a step; for its last step, the way it ended.
STEP, FINISH, STOP, ROUTE_DELETED, PARTICIPANT_LEFT = range(5)
LEFT_BY = ("step", "finish", "stop", "route deleted", "participant left")
# Session outcomes, by the way the session ended; None while it runs.
OUTCOME_BY_END = {FINISH: "finished", STOP: "stopped", ROUTE_DELETED: "stopped",
                  PARTICIPANT_LEFT: "stopped"}
STOPPED_BY = {STOP: "participant", ROUTE_DELETED: "route deleted",
              PARTICIPANT_LEFT: "participant left"}
RUNNING = -1


@dataclass
class Frames:
    """The stream, as frames the statistics read.

    ``sessions``: one row per session: ``sid``, ``route`` (index into
    ``routes``), ``participant`` (index into ``participants``), ``started``,
    ``ended`` (NaT while running), ``outcome`` (running, finished, stopped),
    ``stopped_by``, ``last_step`` and ``duration_s``.

    ``step_visits``: one row per step a session left: ``route``, ``step``,
    ``left_by`` (see LEFT_BY) and ``seconds`` spent at the step.
    """

    events: int
    first_event: pd.Timestamp
    last_event: pd.Timestamp
    totals: pd.DataFrame
    per_second: pd.DataFrame
    sessions: pd.DataFrame
    step_visits: pd.DataFrame
    routes: pd.DataFrame
    participants: pd.DataFrame
    activity: pd.DataFrame
    errors: pd.DataFrame
    # Session moves the report leaves out: the session has no startsess
    # event (the stream's head was trimmed) or the entry has no step number.
    unplaced_moves: int = 0


def event_times(ids: list[str], dts: list[str]) -> np.ndarray:
    """Return each entry's time in integer microseconds since the epoch."""
    parsed = pd.to_datetime(pd.Series(dts, dtype=object), format="ISO8601",
                            utc=True, errors="coerce")
    micros = parsed.dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64).copy()
    missing = np.flatnonzero(micros == NO_TIME)
    for i in missing:
        micros[i] = int(ids[i].split("-", 1)[0]) * 1000
    return micros


def as_timestamps(micros: np.ndarray) -> pd.Series:
    """Turn integer microseconds (NO_TIME for none) into UTC timestamps."""
    return pd.Series(micros.view("datetime64[us]")).dt.tz_localize("UTC")


def _data(fields: dict[str, str]) -> dict[str, Any]:
    try:
        data = orjson.loads(fields.get("data") or "{}")
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


class FrameBuilder:
    """Folds pages of stream entries, in stream order, into counters and columns.

    NOTE: only the page in hand is bounded. Exact percentiles need every
    duration, so the columns grow by one row per session and one per step a
    session leaves: about 45 MiB after folding the million events of
    benchmarks/report_benchmark.py, measured with tracemalloc.
    """

    def __init__(self) -> None:
        self.events = 0
        self.first_time = NO_TIME
        self.last_time = NO_TIME
        self.unplaced_moves = 0
        self.totals: Counter[tuple[str, str]] = Counter()
        self.per_second: Counter[tuple[int, str]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.activity: Counter[tuple[int, str, str]] = Counter()

        self._participant_by_uid: dict[str, int] = {}
        self._names: list[str] = []
        self._registered = array("q")
        self._left = array("q")

        self._route_by_rid: dict[str, int] = {}
        self._routes: list[dict[str, Any]] = []

        # sid -> [session index, step it is at, time it arrived there]
        self._running: dict[str, list[int]] = {}
        self._sids: list[str] = []
        self._session_route = array("q")
        self._session_participant = array("q")
        self._started = array("q")
        self._ended = array("q")
        self._ended_by = array("b")
        self._last_step = array("q")

        self._visit_route = array("q")
        self._visit_step = array("q")
        self._visit_left_by = array("b")
        self._visit_micros = array("q")

        self._handlers = {
            ev.ADDUSER: self._add_user,
            ev.DELUSER: self._delete_user,
            ev.ADDROUTE: self._add_route,
            ev.DELROUTE: self._delete_route,
            ev.STARTSESS: self._start_session,
            ev.STEPSESS: self._step_session,
            ev.STOPSESS: self._stop_session,
        }

    # ------------------------------------------------------------ pages

    def add_page(self, page: Page) -> None:
        """Fold one page of entries; pages must come in stream order."""
        if not page:
            return
        ids = [entry_id for entry_id, _fields in page]
        times = event_times(ids, [fields.get("dt", "") for _id, fields in page])
        self._count_seconds(page, times)

        handlers = self._handlers
        participant_by_uid = self._participant_by_uid
        for (_id, fields), time in zip(page, times.tolist()):
            name = fields.get("event", "")
            result = fields.get("result", "")
            if result == "ok":
                handler = handlers.get(name)
                if handler is not None:
                    handler(fields, time)
            elif name == ev.ERROR:
                action = _data(fields).get("action", "")
                self.errors[(fields.get("code", ""), str(action))] += 1
            self.totals[(name, result)] += 1
            if name != ev.INIT:
                participant = participant_by_uid.get(fields.get("uid", ""), UNREGISTERED)
                self.activity[(participant, name, result)] += 1

        self.events += len(page)
        earliest, latest = int(times.min()), int(times.max())
        if self.first_time == NO_TIME or earliest < self.first_time:
            self.first_time = earliest
        self.last_time = max(self.last_time, latest)

    def _count_seconds(self, page: Page, times: np.ndarray) -> None:
        seconds = times // 1_000_000
        ok = np.fromiter((fields.get("result") == "ok" for _id, fields in page),
                         dtype=bool, count=len(page))
        for mask, result in ((ok, "ok"), (~ok, "error")):
            values, counts = np.unique(seconds[mask], return_counts=True)
            for second, count in zip(values.tolist(), counts.tolist()):
                self.per_second[(second, result)] += count

    # ------------------------------------------------------------ participants

    def _add_user(self, fields: dict[str, str], time: int) -> None:
        self._participant_by_uid[fields.get("uid", "")] = len(self._names)
        self._names.append(str(_data(fields).get("name", "")))
        self._registered.append(time)
        self._left.append(NO_TIME)

    def _delete_user(self, fields: dict[str, str], time: int) -> None:
        participant = self._participant_by_uid.get(fields.get("uid", ""))
        if participant is not None:
            self._left[participant] = time
        data = _data(fields)
        for rid in data.get("routes", []):
            self._route(rid)["deleted"] = time
        self._sweep(data, time, PARTICIPANT_LEFT)

    # ------------------------------------------------------------ routes

    def _route_index(self, rid: str) -> int:
        """Return the route's index, registering an unknown route by its id alone."""
        index = self._route_by_rid.get(rid)
        if index is None:
            index = len(self._routes)
            self._route_by_rid[rid] = index
            self._routes.append({
                "rid": rid, "route": "", "owner": UNREGISTERED, "steps": 0,
                "step_names": [], "created": NO_TIME, "deleted": NO_TIME,
            })
        return index

    def _route(self, rid: str) -> dict[str, Any]:
        return self._routes[self._route_index(rid)]

    def _add_route(self, fields: dict[str, str], time: int) -> None:
        data = _data(fields)
        steps = [str(step) for step in data.get("steps", [])]
        route = self._route(fields.get("rid", ""))
        route["route"] = str(data.get("name", ""))
        route["owner"] = self._participant_by_uid.get(fields.get("uid", ""), UNREGISTERED)
        route["steps"] = len(steps)
        # Step 0 is the START event, named like the route.
        route["step_names"] = [route["route"], *steps]
        route["created"] = time

    def _delete_route(self, fields: dict[str, str], time: int) -> None:
        self._route(fields.get("rid", ""))["deleted"] = time
        self._sweep(_data(fields), time, ROUTE_DELETED)

    # ------------------------------------------------------------ sessions

    def _start_session(self, fields: dict[str, str], time: int) -> None:
        sid = fields.get("sid", "")
        index = len(self._sids)
        self._sids.append(sid)
        self._session_route.append(self._route_index(fields.get("rid", "")))
        self._session_participant.append(
            self._participant_by_uid.get(fields.get("uid", ""), UNREGISTERED))
        self._started.append(time)
        self._ended.append(NO_TIME)
        self._ended_by.append(RUNNING)
        self._last_step.append(0)
        self._running[sid] = [index, 0, time]

    def _leave_step(self, sid: str, time: int, left_by: int) -> list[int] | None:
        """Record the time the session spent at its current step; return its state."""
        state = self._running.get(sid)
        if state is None:
            self.unplaced_moves += 1
            return None
        index, step, arrived = state
        self._visit_route.append(self._session_route[index])
        self._visit_step.append(step)
        self._visit_left_by.append(left_by)
        self._visit_micros.append(time - arrived)
        return state

    def _end_session(self, sid: str, time: int, ended_by: int) -> None:
        state = self._leave_step(sid, time, ended_by)
        if state is None:
            return
        index, step, _arrived = state
        self._ended[index] = time
        self._ended_by[index] = ended_by
        self._last_step[index] = step
        del self._running[sid]

    def _step_session(self, fields: dict[str, str], time: int) -> None:
        sid = fields.get("sid", "")
        try:
            step = int(fields.get("step", ""))
        except ValueError:
            self.unplaced_moves += 1
            return
        if step == END_STEP:
            self._end_session(sid, time, FINISH)
            return
        state = self._leave_step(sid, time, STEP)
        if state is not None:
            state[1] = step
            state[2] = time

    def _stop_session(self, fields: dict[str, str], time: int) -> None:
        self._end_session(fields.get("sid", ""), time, STOP)

    def _sweep(self, data: dict[str, Any], time: int, ended_by: int) -> None:
        """End the sessions a delroute or deluser event lists as stopped."""
        for stopped in data.get("stopped", []):
            self._end_session(stopped[0], time, ended_by)

    # ------------------------------------------------------------ frames

    def frames(self) -> Frames:
        """Return everything folded so far as pandas frames."""
        for index, step, _arrived in self._running.values():
            self._last_step[index] = step
        return Frames(
            events=self.events,
            first_event=pd.Timestamp(self.first_time, unit="us", tz="UTC"),
            last_event=pd.Timestamp(self.last_time, unit="us", tz="UTC"),
            totals=_counter_frame(self.totals, ["event", "result"]),
            per_second=self._per_second_frame(),
            sessions=self._sessions_frame(),
            step_visits=self._visits_frame(),
            routes=self._routes_frame(),
            participants=self._participants_frame(),
            activity=_counter_frame(self.activity, ["participant", "event", "result"]),
            errors=_counter_frame(self.errors, ["code", "action"]),
            unplaced_moves=self.unplaced_moves,
        )

    def _per_second_frame(self) -> pd.DataFrame:
        counts = _counter_frame(self.per_second, ["second", "result"])
        table = counts.pivot_table(index="second", columns="result", values="events",
                                   aggfunc="sum", fill_value=0)
        table = table.reindex(columns=["ok", "error"], fill_value=0).astype("int64")
        table.index = pd.to_datetime(table.index, unit="s", utc=True)
        table.columns.name = None
        return table.sort_index()

    def _sessions_frame(self) -> pd.DataFrame:
        started = _numbers(self._started)
        ended = _numbers(self._ended)
        ended_by = np.array(self._ended_by, dtype=np.int8)
        running = ended == NO_TIME
        duration = np.where(running, np.nan, (ended - started) / 1e6)
        outcome = pd.Series(ended_by).map(OUTCOME_BY_END).fillna("running")
        return pd.DataFrame({
            "sid": pd.Series(self._sids, dtype=object),
            "route": _numbers(self._session_route),
            "participant": _numbers(self._session_participant),
            "started": as_timestamps(started),
            "ended": as_timestamps(ended),
            "outcome": outcome.astype(object),
            "stopped_by": pd.Series(ended_by).map(STOPPED_BY).astype(object),
            "last_step": _numbers(self._last_step),
            "duration_s": duration,
        })

    def _visits_frame(self) -> pd.DataFrame:
        left_by = np.array(self._visit_left_by, dtype=np.int8)
        return pd.DataFrame({
            "route": _numbers(self._visit_route),
            "step": _numbers(self._visit_step),
            "left_by": pd.Categorical.from_codes(left_by, categories=list(LEFT_BY)),
            "seconds": _numbers(self._visit_micros) / 1e6,
        })

    def _routes_frame(self) -> pd.DataFrame:
        routes = pd.DataFrame(
            self._routes,
            columns=["rid", "route", "owner", "steps", "step_names", "created", "deleted"],
        )
        for column in ("created", "deleted"):
            routes[column] = as_timestamps(routes[column].to_numpy(dtype=np.int64))
        return routes

    def _participants_frame(self) -> pd.DataFrame:
        count = len(self._names)
        return pd.DataFrame(
            {
                "name": pd.Series([*self._names, UNREGISTERED_NAME], dtype=object).to_numpy(),
                "registered": as_timestamps(
                    np.append(_numbers(self._registered), NO_TIME)).to_numpy(),
                "left": as_timestamps(np.append(_numbers(self._left), NO_TIME)).to_numpy(),
            },
            index=pd.Index([*range(count), UNREGISTERED], name="participant"),
        )


def _numbers(column: array) -> np.ndarray:
    """Copy an array of integers into numpy, leaving the array free to grow."""
    return np.array(column, dtype=np.int64)


def _counter_frame(counter: Counter, columns: list[str]) -> pd.DataFrame:
    """Turn a Counter keyed by tuples into a frame with an ``events`` column."""
    rows = [(*key, count) for key, count in counter.items()]
    return pd.DataFrame(rows, columns=[*columns, "events"])
