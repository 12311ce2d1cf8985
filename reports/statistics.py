"""The statistics of a report, each a function of the frames.

Percentiles are computed from the exact durations in the stream with
linear interpolation between the two nearest values (pandas' and numpy's
default): the p90 of 1, 2, 5 and 10 seconds is 8.5 seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from damba import events as ev
from damba.errors import STATUS_BY_CODE
from reports.frames import UNREGISTERED, Frames

PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
SECONDS_COLUMNS = ["count", "mean", *PERCENTILES, "max"]

# Widths of a time bin, in seconds; the report takes the narrowest one that
# cuts the stream's time span into at most MAX_BINS bins.
BIN_CHOICES = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
               21600, 43200, 86400)
MAX_BINS = 3600


def describe_seconds(values: pd.Series) -> dict[str, float]:
    """Return count, mean, p50, p90, p99 and max of a series of seconds."""
    values = values.dropna()
    if values.empty:
        return {"count": 0, "mean": np.nan, **dict.fromkeys(PERCENTILES, np.nan),
                "max": np.nan}
    quantiles = values.quantile(list(PERCENTILES.values()))
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        **{name: float(quantiles[q]) for name, q in PERCENTILES.items()},
        "max": float(values.max()),
    }


def _describe_groups(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Describe ``frame.seconds`` within each group of ``by``."""
    grouped = frame.groupby(by, observed=True)["seconds"]
    described = grouped.agg(["count", "mean", "max"])
    for name, q in PERCENTILES.items():
        described[name] = grouped.quantile(q)
    return described[SECONDS_COLUMNS].reset_index()


# ---------------------------------------------------------------- events


def event_totals(frames: Frames) -> pd.DataFrame:
    """Count the events of each kind, accepted (ok) and rejected (error)."""
    table = frames.totals.pivot_table(index="event", columns="result", values="events",
                                      aggfunc="sum", fill_value=0)
    others = sorted(set(table.index) - set(ev.EVENT_NAMES))
    table = table.reindex(index=[*ev.EVENT_NAMES, *others], columns=["ok", "error"],
                          fill_value=0).fillna(0).astype("int64")
    table["total"] = table["ok"] + table["error"]
    table.columns.name = None
    return table.rename_axis("event").reset_index()


def choose_bin_seconds(first: pd.Timestamp, last: pd.Timestamp) -> int:
    """Return the narrowest bin width that cuts first..last into at most MAX_BINS."""
    span = (last - first).total_seconds()
    for width in BIN_CHOICES:
        if span / width < MAX_BINS:
            return width
    return BIN_CHOICES[-1]


def _bins(frames: Frames, width: int) -> pd.DatetimeIndex:
    first = frames.first_event.floor(f"{width}s")
    last = frames.last_event.floor(f"{width}s")
    return pd.date_range(first, last, freq=f"{width}s")


def events_per_second(frames: Frames, width: int) -> pd.DataFrame:
    """Count events in each bin of ``width`` seconds; ``per_second`` is the mean rate."""
    counts = frames.per_second
    binned = counts.groupby(counts.index.floor(f"{width}s")).sum()
    binned = binned.reindex(_bins(frames, width), fill_value=0)
    binned["total"] = binned["ok"] + binned["error"]
    binned["per_second"] = binned["total"] / width
    return binned.rename_axis("time").reset_index()


def active_sessions(frames: Frames, width: int) -> pd.DataFrame:
    """Count running sessions: at the end of each bin, and at the peak within it."""
    sessions = frames.sessions
    ended = sessions["ended"].dropna()
    changes = pd.concat([
        pd.Series(1, index=pd.DatetimeIndex(sessions["started"])),
        pd.Series(-1, index=pd.DatetimeIndex(ended)),
    ]).sort_index(kind="stable")
    bins = _bins(frames, width)
    if changes.empty:
        return pd.DataFrame({"time": bins, "active": 0, "peak": 0})
    level = changes.cumsum()
    # At one instant, the level after its last change is the one that holds.
    level = level.groupby(level.index).last()
    bin_of = level.index.floor(f"{width}s")
    at_end = level.groupby(bin_of).last().reindex(bins).ffill().fillna(0)
    # The level holding when a bin begins: set by the last change at or before it.
    at_start = level.asof(bins).fillna(0)
    peak = level.groupby(bin_of).max().reindex(bins).fillna(0)
    return pd.DataFrame({
        "time": bins,
        "active": at_end.to_numpy(dtype="int64"),
        "peak": np.maximum(peak.to_numpy(), at_start.to_numpy()).astype("int64"),
    })


def errors_by_code(frames: Frames) -> pd.DataFrame:
    """Count error events by code and by the action that was rejected."""
    errors = frames.errors.copy()
    errors["status"] = errors["code"].map(STATUS_BY_CODE).astype("Int64")
    errors = errors[["code", "status", "action", "events"]]
    return errors.sort_values(["events", "code", "action"],
                              ascending=[False, True, True]).reset_index(drop=True)


def error_codes(errors: pd.DataFrame) -> pd.DataFrame:
    """Sum the rows of ``errors_by_code`` per code."""
    by_code = errors.groupby(["code", "status"], dropna=False)["events"].sum()
    return by_code.sort_values(ascending=False).reset_index()


# ---------------------------------------------------------------- sessions


def session_counts(frames: Frames) -> dict[str, int]:
    """Count sessions started, finished, stopped (by cause) and still running."""
    sessions = frames.sessions
    outcomes = sessions["outcome"].value_counts()
    stopped_by = sessions["stopped_by"].value_counts()
    return {
        "started": int(len(sessions)),
        "finished": int(outcomes.get("finished", 0)),
        "stopped": int(outcomes.get("stopped", 0)),
        "running": int(outcomes.get("running", 0)),
        "stopped_by_participant": int(stopped_by.get("participant", 0)),
        "stopped_by_route_deleted": int(stopped_by.get("route deleted", 0)),
        "stopped_by_participant_left": int(stopped_by.get("participant left", 0)),
    }


def session_durations(frames: Frames) -> pd.DataFrame:
    """Describe the durations of ended sessions: finished, stopped, and all ended."""
    sessions = frames.sessions
    rows = {
        "finished": sessions.loc[sessions["outcome"] == "finished", "duration_s"],
        "stopped": sessions.loc[sessions["outcome"] == "stopped", "duration_s"],
        "all ended": sessions["duration_s"],
    }
    table = pd.DataFrame([describe_seconds(values) for values in rows.values()],
                         index=list(rows))
    table["count"] = table["count"].astype("int64")
    return table.rename_axis("outcome").reset_index()


def route_completion(frames: Frames) -> pd.DataFrame:
    """Count each route's sessions; completion_rate is finished over started."""
    sessions = frames.sessions
    counts = pd.crosstab(sessions["route"], sessions["outcome"])
    counts = counts.reindex(columns=["finished", "stopped", "running"], fill_value=0)
    counts["started"] = counts.sum(axis=1)
    routes = frames.routes.join(counts, how="left")
    for column in ("started", "finished", "stopped", "running"):
        routes[column] = routes[column].fillna(0).astype("int64")
    routes["completion_rate"] = routes["finished"] / routes["started"].where(
        routes["started"] > 0)
    routes["owner"] = routes["owner"].map(frames.participants["name"])
    columns = ["rid", "route", "owner", "steps", "created", "deleted", "started",
               "finished", "stopped", "running", "completion_rate"]
    return routes[columns].sort_values(["started", "rid"], ascending=[False, True],
                                       ignore_index=True)


def step_times(frames: Frames) -> pd.DataFrame:
    """Describe the seconds sessions spent at each step of each route."""
    described = _describe_groups(frames.step_visits, ["route", "step"])
    routes = frames.routes
    names = [
        _step_name(routes.at[route, "step_names"], step)
        for route, step in zip(described["route"], described["step"])
    ]
    described.insert(0, "rid", routes["rid"].reindex(described["route"]).to_numpy())
    described.insert(1, "route_name", routes["route"].reindex(described["route"]).to_numpy())
    described.insert(4, "step_name", names)
    described = described.drop(columns="route").rename(columns={"route_name": "route",
                                                                 "count": "visits"})
    return described


def _step_name(step_names: list[str], step: int) -> str:
    return step_names[step] if 0 <= step < len(step_names) else ""


def step_times_by_number(frames: Frames) -> pd.DataFrame:
    """Describe the seconds spent at each step number, over all routes."""
    return _describe_groups(frames.step_visits, ["step"]).rename(columns={"count": "visits"})


# ---------------------------------------------------------------- participants


def participant_activity(frames: Frames) -> pd.DataFrame:
    """Summarise each participant's events and sessions, by public name."""
    activity = frames.activity
    counts = activity.pivot_table(index="participant", columns=["event", "result"],
                                  values="events", aggfunc="sum", fill_value=0)

    def count(event: str, result: str) -> pd.Series:
        if (event, result) in counts.columns:
            return counts[(event, result)]
        return pd.Series(0, index=counts.index)

    table = pd.DataFrame(index=counts.index)
    table["routes_created"] = count(ev.ADDROUTE, "ok")
    table["routes_deleted"] = count(ev.DELROUTE, "ok")
    table["steps"] = count(ev.STEPSESS, "ok")
    table["errors"] = count(ev.ERROR, "error")
    table["events"] = counts.sum(axis=1)
    outcomes = pd.crosstab(frames.sessions["participant"], frames.sessions["outcome"])
    outcomes = outcomes.reindex(columns=["finished", "stopped", "running"], fill_value=0)
    table = table.join(outcomes, how="outer").fillna(0).astype("int64")
    table["sessions_started"] = table[["finished", "stopped", "running"]].sum(axis=1)

    participants = frames.participants.join(table, how="left").rename_axis(None)
    participants = participants[
        (participants.index != UNREGISTERED) | (participants["events"] > 0)
    ]
    numbers = ["routes_created", "routes_deleted", "sessions_started", "finished",
               "stopped", "running", "steps", "errors", "events"]
    participants[numbers] = participants[numbers].fillna(0).astype("int64")
    participants = participants.rename(columns={
        "name": "participant", "finished": "sessions_finished",
        "stopped": "sessions_stopped", "running": "sessions_running",
    })
    columns = ["participant", "registered", "left", "routes_created", "routes_deleted",
               "sessions_started", "sessions_finished", "sessions_stopped",
               "sessions_running", "steps", "errors", "events"]
    return participants[columns].sort_values(
        ["events", "participant"], ascending=[False, True], ignore_index=True)


# ---------------------------------------------------------------- all of them


@dataclass
class Statistics:
    """Every table of a report, and the summary that heads it."""

    bin_seconds: int
    events: pd.DataFrame
    sessions: pd.DataFrame
    session_counts: dict[str, int]
    durations: pd.DataFrame
    routes: pd.DataFrame
    step_times: pd.DataFrame
    step_times_by_number: pd.DataFrame
    rates: pd.DataFrame
    active: pd.DataFrame
    errors: pd.DataFrame
    error_codes: pd.DataFrame
    participants: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def public_sessions(frames: Frames) -> pd.DataFrame:
    """Return the sessions with route ids and participant names in place of indexes."""
    sessions = frames.sessions
    routes = frames.routes
    table = pd.DataFrame({
        "sid": sessions["sid"],
        "rid": routes["rid"].reindex(sessions["route"]).to_numpy(),
        "route": routes["route"].reindex(sessions["route"]).to_numpy(),
        "participant": frames.participants["name"].reindex(sessions["participant"]).to_numpy(),
    })
    for column in ("started", "ended", "outcome", "stopped_by", "last_step", "duration_s"):
        table[column] = sessions[column]
    return table


def compute(frames: Frames) -> Statistics:
    """Compute every statistic of the report from ``frames``."""
    width = choose_bin_seconds(frames.first_event, frames.last_event)
    errors = errors_by_code(frames)
    statistics = Statistics(
        bin_seconds=width,
        events=event_totals(frames),
        sessions=public_sessions(frames),
        session_counts=session_counts(frames),
        durations=session_durations(frames),
        routes=route_completion(frames),
        step_times=step_times(frames),
        step_times_by_number=step_times_by_number(frames),
        rates=events_per_second(frames, width),
        active=active_sessions(frames, width),
        errors=errors,
        error_codes=error_codes(errors),
        participants=participant_activity(frames),
    )
    statistics.summary = summarise(frames, statistics)
    return statistics


def _number(value: Any) -> Any:
    """Return ``value`` as a JSON number, or None for NaN."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    return value


def summarise(frames: Frames, statistics: Statistics) -> dict[str, Any]:
    """Build the report's summary: the headline numbers, ready for JSON."""
    events = statistics.events.set_index("event")
    durations = statistics.durations.set_index("outcome")
    rates = statistics.rates
    span = (frames.last_event - frames.first_event).total_seconds()
    return {
        "events": frames.events,
        "first_event": frames.first_event.isoformat(),
        "last_event": frames.last_event.isoformat(),
        "span_seconds": span,
        "events_by_type": {
            event: {"ok": int(row["ok"]), "error": int(row["error"])}
            for event, row in events.iterrows()
        },
        "sessions": statistics.session_counts,
        "session_duration_seconds": {
            outcome: {"count": int(row["count"]),
                      **{name: _number(row[name]) for name in SECONDS_COLUMNS[1:]}}
            for outcome, row in durations.iterrows()
        },
        "errors": int(statistics.errors["events"].sum()),
        "errors_by_code": {
            str(row["code"]): int(row["events"])
            for _index, row in statistics.error_codes.iterrows()
        },
        "participants": int((frames.participants.index != UNREGISTERED).sum()),
        "routes": int(len(frames.routes)),
        "bin_seconds": statistics.bin_seconds,
        "events_per_second": {
            "mean": frames.events / span if span > 0 else None,
            "max_bin": _number(rates["per_second"].max()),
        },
        "active_sessions_max": _number(statistics.active["peak"].max()),
        "unplaced_moves": frames.unplaced_moves,
    }
