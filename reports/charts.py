"""Charts of the report, drawn with matplotlib's Agg canvas into PNG bytes.

The figures are built without pyplot, so drawing keeps no global state and
needs no display. Charts carry no participant or route names, only numbers,
error codes and request names, so they need no fonts beyond matplotlib's
own.
"""

from __future__ import annotations

from io import BytesIO

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from reports.statistics import PERCENTILES

WIDTH, HEIGHT = 9.0, 3.2  # inches, at 100 dots per inch
OK_COLOUR, ERROR_COLOUR, ACCENT = "#3b73b9", "#d0493a", "#6a9f3a"


def _figure(height: float = HEIGHT):
    figure = Figure(figsize=(WIDTH, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def _png(figure: Figure) -> bytes:
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _naive_utc(times: pd.Series) -> pd.Series:
    """Drop the UTC zone, which matplotlib's date axis would otherwise convert."""
    return pd.Series(pd.DatetimeIndex(times).tz_convert(None))


def _time_axis(axes) -> None:
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.set_xlabel("time (UTC)")
    axes.grid(alpha=0.3)


def events_per_second_chart(rates: pd.DataFrame, bin_seconds: int) -> bytes | None:
    """Draw accepted and rejected events per second over time."""
    if rates.empty:
        return None
    figure, axes = _figure()
    times = _naive_utc(rates["time"])
    axes.stackplot(times, rates["ok"] / bin_seconds, rates["error"] / bin_seconds,
                   labels=["ok", "error"], colors=[OK_COLOUR, ERROR_COLOUR], step="post")
    axes.set_ylabel("events per second")
    if bin_seconds > 1:
        axes.set_title(f"mean over {bin_seconds}-second bins", fontsize=9)
    axes.legend(loc="upper left")
    _time_axis(axes)
    return _png(figure)


def active_sessions_chart(active: pd.DataFrame) -> bytes | None:
    """Draw the number of running sessions over time, with each bin's peak."""
    if active.empty:
        return None
    figure, axes = _figure()
    times = _naive_utc(active["time"])
    axes.fill_between(times, active["peak"], step="post", color=OK_COLOUR, alpha=0.25,
                      label="peak in bin")
    axes.step(times, active["active"], where="post", color=OK_COLOUR,
              label="at end of bin")
    axes.set_ylabel("running sessions")
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left")
    _time_axis(axes)
    return _png(figure)


def durations_chart(sessions: pd.DataFrame, durations: pd.DataFrame) -> bytes | None:
    """Draw a histogram of session durations with the percentiles of all ended sessions."""
    ended = sessions.dropna(subset=["duration_s"])
    if ended.empty:
        return None
    figure, axes = _figure()
    groups = [(outcome, ended.loc[ended["outcome"] == outcome, "duration_s"])
              for outcome in ("finished", "stopped")]
    groups = [(outcome, values) for outcome, values in groups if not values.empty]
    axes.hist([values for _outcome, values in groups], bins=50, stacked=True,
              label=[outcome for outcome, _values in groups],
              color=[OK_COLOUR if outcome == "finished" else ERROR_COLOUR
                     for outcome, _values in groups])
    row = durations.set_index("outcome").loc["all ended"]
    for name in (*PERCENTILES, "max"):
        axes.axvline(row[name], color="#333333", linestyle=":", linewidth=1)
        axes.annotate(name, (row[name], 1.0), xycoords=("data", "axes fraction"),
                      rotation=90, va="top", ha="right", fontsize=8)
    axes.set_xlabel("session duration (s)")
    axes.set_ylabel("sessions")
    axes.legend(loc="center right")
    axes.grid(alpha=0.3)
    return _png(figure)


def step_times_chart(by_number: pd.DataFrame) -> bytes | None:
    """Draw the p50 and p90 seconds spent at each step number."""
    if by_number.empty:
        return None
    figure, axes = _figure()
    steps = by_number["step"].to_numpy()
    axes.bar(steps - 0.2, by_number["p50"], width=0.4, color=OK_COLOUR, label="p50")
    axes.bar(steps + 0.2, by_number["p90"], width=0.4, color=ACCENT, label="p90")
    axes.set_xlabel("step (0 is START)")
    axes.set_ylabel("seconds at the step")
    axes.set_xticks(steps)
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3, axis="y")
    return _png(figure)


def errors_chart(error_codes: pd.DataFrame) -> bytes | None:
    """Draw the count of error events per error code."""
    if error_codes.empty:
        return None
    top_codes = error_codes.head(15).iloc[::-1]
    figure, axes = _figure(height=max(1.6, 0.3 * len(top_codes) + 0.8))
    axes.barh(top_codes["code"].astype(str), top_codes["events"], color=ERROR_COLOUR)
    axes.set_xlabel("error events")
    axes.grid(alpha=0.3, axis="x")
    return _png(figure)


def completion_chart(routes: pd.DataFrame) -> bytes | None:
    """Draw how many routes reached each completion rate."""
    rates = routes["completion_rate"].dropna()
    if rates.empty:
        return None
    figure, axes = _figure()
    axes.hist(rates * 100, bins=20, range=(0, 100), color=OK_COLOUR)
    axes.set_xlabel("completion rate: finished sessions / started sessions (%)")
    axes.set_ylabel("routes")
    axes.grid(alpha=0.3)
    return _png(figure)


def latency_chart(requests: pd.DataFrame) -> bytes | None:
    """Draw Locust's p50, p90 and p99 response times per request name."""
    if requests.empty:
        return None
    # barh draws the first row at the bottom, so reverse to list from the top.
    ordered = requests.iloc[::-1]
    figure, axes = _figure(height=max(1.8, 0.35 * len(ordered) + 0.9))
    positions = range(len(ordered))
    for offset, (name, colour) in zip(
        (-0.25, 0.0, 0.25), (("p50", OK_COLOUR), ("p90", ACCENT), ("p99", ERROR_COLOUR))
    ):
        axes.barh([p + offset for p in positions], ordered[name], height=0.25,
                  color=colour, label=name)
    axes.set_yticks(list(positions), ordered["name"].astype(str), fontsize=8)
    axes.set_xlabel("response time (ms), as Locust reports it")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3, axis="x")
    return _png(figure)
