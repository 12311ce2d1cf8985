"""Each statistic of the report, on small streams built by hand.

The expected values are worked out by hand from the times in the stream.
Percentiles interpolate linearly between the two nearest values.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from reports import statistics as st
from reports.frames import FrameBuilder
from tests.report_streams import START, HandStream

U1 = "a" * 32
U2 = "b" * 32
STRANGER = "c" * 32


def walks() -> HandStream:
    """Two participants, two routes, five sessions that end in every way.

    s1 on r1 finishes (6 s), s2 on r1 stops at START (0.5 s), s3 on r2
    finishes (6 s), s4 on r2 stops when r2 is deleted (4 s), s5 on r1 is
    still running at the end. Three requests are rejected.
    """
    stream = HandStream()
    stream.init(0)
    stream.user(1, U1, "Ольга")
    stream.user(2, U2, "Jürgen")
    stream.route(3, U1, "r1", "order", ["check", "pay"], "Ольга")
    stream.route(4, U2, "r2", "ship", ["pack"], "Jürgen")
    stream.start(10, U1, "r1", "s1")
    stream.step(11, U1, "r1", "s1", 1)
    stream.start(12, U2, "r1", "s2")
    stream.stop(12.5, U2, "r1", "s2", from_step=0)
    stream.step(13, U1, "r1", "s1", 2)
    stream.start(14, U2, "r2", "s3")
    stream.step(15, U2, "r2", "s3", 1)
    stream.finish(16, U1, "r1", "s1")
    stream.start(17, U1, "r2", "s4")
    stream.step(18, U1, "r2", "s4", 1)
    stream.finish(20, U2, "r2", "s3")
    stream.delete_route(21, U2, "r2", stopped=[["s4", U1, "r2"]])
    stream.start(22, U1, "r1", "s5")
    stream.error(23, U1, "session_ended", "stepsess")
    stream.error(24, STRANGER, "invalid_key", "startsess")
    stream.error(25, U2, "session_active", "startsess")
    return stream


def finished_in(durations: list[float]) -> HandStream:
    """One participant finishing one-step sessions that last ``durations`` seconds."""
    stream = HandStream()
    stream.user(0, U1, "Ольга")
    stream.route(0, U1, "r1", "order", ["only"])
    for number, seconds in enumerate(durations):
        at = 100 * (number + 1)
        stream.start(at, U1, "r1", f"s{number}")
        stream.step(at + seconds / 2, U1, "r1", f"s{number}", 1)
        stream.finish(at + seconds, U1, "r1", f"s{number}")
    return stream


def row(frame: pd.DataFrame, **match) -> pd.Series:
    """Return the one row of ``frame`` whose columns equal ``match``."""
    selected = frame
    for column, value in match.items():
        selected = selected[selected[column] == value]
    assert len(selected) == 1, f"{len(selected)} rows match {match}"
    return selected.iloc[0]


# ---------------------------------------------------------------- events


def test_event_totals_by_result():
    """Events are counted per kind, accepted and rejected, every kind listed."""
    totals = st.event_totals(walks().frames()).set_index("event")
    assert list(totals.index) == ["init", "adduser", "deluser", "addroute", "delroute",
                                  "startsess", "stepsess", "stopsess", "error"]
    assert totals.loc["startsess", "ok"] == 5
    assert totals.loc["stepsess", "ok"] == 6
    assert totals.loc["stopsess", "ok"] == 1
    assert totals.loc["delroute", "ok"] == 1
    assert totals.loc["deluser", "total"] == 0
    assert totals.loc["error", "error"] == 3
    assert totals.loc["error", "ok"] == 0
    assert totals["total"].sum() == 21


def test_events_per_second_bins():
    """Each second counts its own events, and quiet seconds count zero."""
    frames = walks().frames()
    rates = st.events_per_second(frames, 1)
    assert len(rates) == 26
    assert rates["time"].iloc[0] == pd.Timestamp(START)
    by_second = rates.set_index((rates["time"] - pd.Timestamp(START)).dt.seconds)
    assert by_second.loc[12, "ok"] == 2
    assert by_second.loc[12, "per_second"] == 2.0
    assert by_second.loc[7, "total"] == 0
    assert by_second.loc[23, "ok"] == 0
    assert by_second.loc[23, "error"] == 1
    assert rates["total"].sum() == 21


def test_events_per_second_wide_bins():
    """With 10-second bins, per_second is the bin's count over 10."""
    rates = st.events_per_second(walks().frames(), 10)
    assert list(rates["total"]) == [5, 10, 6]
    assert list(rates["per_second"]) == [0.5, 1.0, 0.6]


@pytest.mark.parametrize("span,width", [(10, 1), (3599, 1), (3600, 2), (172800, 60),
                                        (10**9, 86400)])
def test_bin_width_choice(span, width):
    """The bin is the narrowest that keeps the span under MAX_BINS bins."""
    first = pd.Timestamp(START)
    assert st.choose_bin_seconds(first, first + pd.Timedelta(seconds=span)) == width


def test_errors_by_code_and_action():
    """Rejected requests are counted by code and action, with their HTTP status."""
    errors = st.errors_by_code(walks().frames())
    assert len(errors) == 3
    assert row(errors, code="session_ended")["action"] == "stepsess"
    assert row(errors, code="session_ended")["status"] == 409
    assert row(errors, code="invalid_key")["status"] == 400
    assert row(errors, code="session_active")["events"] == 1
    codes = st.error_codes(errors)
    assert codes["events"].sum() == 3


# ---------------------------------------------------------------- sessions


def test_session_counts_by_outcome():
    """Sessions are started, finished, stopped (by cause) or still running."""
    counts = st.session_counts(walks().frames())
    assert counts == {
        "started": 5,
        "finished": 2,
        "stopped": 2,
        "running": 1,
        "stopped_by_participant": 1,
        "stopped_by_route_deleted": 1,
        "stopped_by_participant_left": 0,
    }


def test_sessions_stopped_by_leaving():
    """A deluser event ends the sessions it lists, its own and others'."""
    stream = walks()
    stream.leave(30, U1, "Ольга", routes=["r1"], stopped=[["s5", U1, "r1"]])
    counts = st.session_counts(stream.frames())
    assert counts["running"] == 0
    assert counts["stopped_by_participant_left"] == 1
    routes = stream.frames().routes.set_index("rid")
    assert routes.loc["r1", "deleted"] == pd.Timestamp(START) + pd.Timedelta(seconds=30)


def test_session_durations_exact():
    """Durations come from the events' microsecond times, not rounded."""
    sessions = walks().frames().sessions.set_index("sid")
    assert sessions.loc["s1", "duration_s"] == 6.0
    assert sessions.loc["s2", "duration_s"] == 0.5
    assert sessions.loc["s4", "duration_s"] == 4.0
    assert math.isnan(sessions.loc["s5", "duration_s"])
    assert sessions.loc["s4", "stopped_by"] == "route deleted"
    assert sessions.loc["s1", "last_step"] == 2


def test_duration_percentiles():
    """p50, p90, p99 and max of 1, 2, 5 and 10 seconds are 3.5, 8.5, 9.85 and 10."""
    durations = st.session_durations(finished_in([1, 2, 5, 10]).frames())
    finished = durations.set_index("outcome").loc["finished"]
    assert finished["count"] == 4
    assert finished["mean"] == pytest.approx(4.5)
    assert finished["p50"] == pytest.approx(3.5)
    assert finished["p90"] == pytest.approx(8.5)
    assert finished["p99"] == pytest.approx(9.85)
    assert finished["max"] == pytest.approx(10.0)


def test_duration_percentiles_by_outcome():
    """Finished, stopped and all ended sessions each get their own row."""
    durations = st.session_durations(walks().frames()).set_index("outcome")
    assert durations.loc["finished", "count"] == 2
    assert durations.loc["finished", "p50"] == pytest.approx(6.0)
    assert durations.loc["stopped", "p50"] == pytest.approx(2.25)
    assert durations.loc["stopped", "p90"] == pytest.approx(3.65)
    assert durations.loc["all ended", "count"] == 4
    assert durations.loc["all ended", "mean"] == pytest.approx(4.125)
    assert durations.loc["all ended", "p50"] == pytest.approx(5.0)
    assert durations.loc["all ended", "max"] == pytest.approx(6.0)


def test_durations_without_ended_sessions():
    """With no ended session every duration figure is empty, not zero."""
    stream = HandStream()
    stream.user(0, U1, "Ольга")
    stream.route(1, U1, "r1", "order", ["only"])
    stream.start(2, U1, "r1", "s1")
    durations = st.session_durations(stream.frames()).set_index("outcome")
    assert durations.loc["all ended", "count"] == 0
    assert math.isnan(durations.loc["all ended", "p50"])


def test_active_sessions_over_time():
    """Running sessions are counted at each bin's end and at its peak."""
    active = st.active_sessions(walks().frames(), 1)
    by_second = active.set_index((active["time"] - pd.Timestamp(START)).dt.seconds)
    assert by_second.loc[9, "active"] == 0
    assert by_second.loc[10, "active"] == 1
    assert by_second.loc[12, "peak"] == 2
    assert by_second.loc[12, "active"] == 1
    assert by_second.loc[13, "peak"] == 1
    assert by_second.loc[17, "active"] == 2
    assert by_second.loc[21, "active"] == 0
    assert by_second.loc[21, "peak"] == 0
    assert by_second.loc[25, "active"] == 1


# ---------------------------------------------------------------- routes and steps


def test_route_completion_rate():
    """A route's completion rate is its finished sessions over its started ones."""
    routes = st.route_completion(walks().frames()).set_index("rid")
    assert routes.loc["r1", "started"] == 3
    assert routes.loc["r1", "finished"] == 1
    assert routes.loc["r1", "running"] == 1
    assert routes.loc["r1", "completion_rate"] == pytest.approx(1 / 3)
    assert routes.loc["r2", "completion_rate"] == pytest.approx(0.5)
    assert routes.loc["r1", "owner"] == "Ольга"
    assert routes.loc["r2", "steps"] == 1
    assert routes.loc["r2", "deleted"] == pd.Timestamp(START) + pd.Timedelta(seconds=21)
    assert pd.isna(routes.loc["r1", "deleted"])


def test_route_without_sessions():
    """A route no one joined has no completion rate rather than zero."""
    stream = walks()
    stream.route(26, U2, "r3", "idle", ["wait"], "Jürgen")
    routes = st.route_completion(stream.frames()).set_index("rid")
    assert routes.loc["r3", "started"] == 0
    assert math.isnan(routes.loc["r3", "completion_rate"])


def test_time_at_each_step():
    """The time at a step runs from arriving to leaving it, by route and step."""
    steps = st.step_times(walks().frames())
    start_r1 = row(steps, rid="r1", step=0)
    assert start_r1["step_name"] == "order"
    assert start_r1["visits"] == 2
    assert start_r1["mean"] == pytest.approx(0.75)
    assert start_r1["max"] == pytest.approx(1.0)
    assert row(steps, rid="r1", step=1)["mean"] == pytest.approx(2.0)
    assert row(steps, rid="r1", step=2)["step_name"] == "pay"
    assert row(steps, rid="r1", step=2)["p50"] == pytest.approx(3.0)
    pack = row(steps, rid="r2", step=1)
    assert pack["step_name"] == "pack"
    assert pack["visits"] == 2
    assert pack["p50"] == pytest.approx(4.0)
    assert pack["p90"] == pytest.approx(4.8)
    assert pack["max"] == pytest.approx(5.0)
    assert len(steps) == 5


def test_time_at_each_step_number():
    """Over all routes, step 0 and step 1 gather every visit of that number."""
    by_number = st.step_times_by_number(walks().frames()).set_index("step")
    assert by_number.loc[0, "visits"] == 4
    assert by_number.loc[0, "mean"] == pytest.approx(0.875)
    assert by_number.loc[0, "p50"] == pytest.approx(1.0)
    assert by_number.loc[1, "visits"] == 3
    assert by_number.loc[1, "mean"] == pytest.approx(10 / 3)
    assert by_number.loc[1, "p50"] == pytest.approx(3.0)
    assert by_number.loc[2, "visits"] == 1


# ---------------------------------------------------------------- participants


def test_participant_activity_by_name():
    """Each participant's routes, sessions, steps and errors, by public name."""
    participants = st.participant_activity(walks().frames())
    assert list(participants["participant"]) == ["Ольга", "Jürgen", "(unregistered)"]
    olga = row(participants, participant="Ольга")
    assert olga["events"] == 10
    assert olga["routes_created"] == 1
    assert olga["sessions_started"] == 3
    assert olga["sessions_finished"] == 1
    assert olga["sessions_stopped"] == 1
    assert olga["sessions_running"] == 1
    assert olga["steps"] == 4
    assert olga["errors"] == 1
    jurgen = row(participants, participant="Jürgen")
    assert jurgen["events"] == 9
    assert jurgen["routes_deleted"] == 1
    assert jurgen["sessions_started"] == 2
    assert row(participants, participant="(unregistered)")["errors"] == 1


def test_frames_without_uid():
    """No frame or table of the report contains a participant's uid."""
    frames = walks().frames()
    statistics = st.compute(frames)
    tables = [frames.sessions, frames.routes, frames.participants, frames.activity,
              statistics.sessions, statistics.routes, statistics.participants,
              statistics.step_times, statistics.errors]
    for table in tables:
        text = table.astype(str).to_csv()
        for uid in (U1, U2, STRANGER):
            assert uid not in text


# ---------------------------------------------------------------- folding


@pytest.mark.parametrize("page_size", [1, 2, 3, 7])
def test_pages_give_same_statistics(page_size):
    """Folding the stream in small pages gives the same tables as in one page."""
    whole = st.compute(walks().frames(page_size=1000))
    paged = st.compute(walks().frames(page_size=page_size))
    for name in ("events", "sessions", "durations", "routes", "step_times", "rates",
                 "active", "errors", "participants"):
        pd.testing.assert_frame_equal(getattr(paged, name), getattr(whole, name))
    assert paged.summary == whole.summary


def test_malformed_dt_uses_stream_id():
    """An entry whose dt is malformed takes its time from its stream id."""
    stream = HandStream()
    stream.user(0, U1, "Ольга")
    stream.route(1, U1, "r1", "order", ["only"])
    stream.start(2, U1, "r1", "s1")
    stream.add(5, "stepsess", uid=U1, rid="r1", sid="s1", step=1, dt="not a time")
    frames = stream.frames()
    visit = frames.step_visits.iloc[0]
    assert visit["seconds"] == pytest.approx(3.0)


def test_moves_without_start_are_counted():
    """A step of a session with no startsess event is left out but counted."""
    stream = HandStream()
    stream.step(1, U1, "r1", "s9", 1)
    stream.finish(2, U1, "r1", "s9")
    frames = stream.frames()
    assert frames.unplaced_moves == 2
    assert frames.sessions.empty
    assert st.compute(frames).summary["unplaced_moves"] == 2


def test_step_without_number_is_counted():
    """A stepsess entry with no step number is left out but counted."""
    stream = HandStream()
    stream.user(0, U1, "Ольга")
    stream.route(1, U1, "r1", "order", ["only"])
    stream.start(2, U1, "r1", "s1")
    stream.add(3, "stepsess", uid=U1, rid="r1", sid="s1")
    frames = stream.frames()
    assert frames.unplaced_moves == 1
    assert frames.step_visits.empty
    assert frames.sessions.loc[0, "outcome"] == "running"


def test_empty_page_changes_nothing():
    """Adding an empty page leaves the counts as they were."""
    builder = FrameBuilder()
    builder.add_page(walks().entries)
    builder.add_page([])
    assert builder.frames().events == 21


def test_summary_headline_numbers():
    """The summary repeats the headline numbers, ready for JSON."""
    summary = st.compute(walks().frames()).summary
    assert summary["events"] == 21
    assert summary["span_seconds"] == 25.0
    assert summary["sessions"]["started"] == 5
    assert summary["session_duration_seconds"]["all ended"]["p50"] == pytest.approx(5.0)
    assert summary["session_duration_seconds"]["all ended"]["count"] == 4
    assert summary["errors"] == 3
    assert summary["errors_by_code"]["invalid_key"] == 1
    assert summary["participants"] == 2
    assert summary["routes"] == 2
    assert summary["active_sessions_max"] == 2
    assert summary["events_by_type"]["stepsess"] == {"ok": 6, "error": 0}
