"""The report's HTML page: one file, its charts embedded as data URIs.

The page loads nothing from the network, so it reads the same offline.
Every value passes through Jinja's autoescaping: participant, route and
step names are text the participants chose.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from reports import charts
from reports.locust import LocustStats
from reports.statistics import Statistics

# Rows of a long table that the page shows; the CSV file has them all.
MAX_ROWS = 50


@dataclass
class Table:
    """A table ready to render: column headings and rows of strings."""

    columns: list[str]
    # Whether each column contains numbers, which the page aligns to the right.
    numeric: list[bool]
    rows: list[list[str]]
    total_rows: int
    csv: str


def _seconds(value: Any) -> str:
    if pd.isna(value):
        return ""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _percent(value: Any) -> str:
    return "" if pd.isna(value) else f"{value:.1%}"


def _time(value: Any) -> str:
    return "" if pd.isna(value) else value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _integer(value: Any) -> str:
    return "" if pd.isna(value) else f"{int(value):,}"


def _plain(value: Any) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


# Formats of float columns, by name; others show three decimals.
FORMATS: dict[str, Callable[[Any], str]] = {
    "mean": _seconds, "p50": _seconds, "p90": _seconds, "p99": _seconds, "max": _seconds,
    "duration_s": _seconds, "per_second": _seconds, "completion_rate": _percent,
}


def _float(value: Any) -> str:
    return "" if pd.isna(value) else f"{value:,.3f}"


def _formatter(column: str, values: pd.Series, formats: dict[str, Callable]) -> Callable:
    if column in formats:
        return formats[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        return _time
    if pd.api.types.is_integer_dtype(values):
        return _integer
    if pd.api.types.is_float_dtype(values):
        return _float
    return _plain


def table(frame: pd.DataFrame, csv: str, formats: dict[str, Callable] | None = None,
          max_rows: int = MAX_ROWS) -> Table:
    """Format the first ``max_rows`` rows of ``frame`` for the page."""
    formats = {**FORMATS, **(formats or {})}
    visible = frame.head(max_rows)
    formatters = [_formatter(str(c), visible[c], formats) for c in visible.columns]
    rows = [
        [format_value(value) for format_value, value in zip(formatters, record)]
        for record in visible.itertuples(index=False)
    ]
    numeric = [pd.api.types.is_numeric_dtype(visible[c]) for c in visible.columns]
    return Table(columns=[str(c) for c in visible.columns], numeric=numeric, rows=rows,
                 total_rows=len(frame), csv=csv)


def _data_uri(png: bytes | None) -> str | None:
    if png is None:
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_charts(statistics: Statistics, locust: LocustStats | None) -> dict[str, str | None]:
    """Draw every chart and return each as a data URI, or None when it has no data."""
    drawn = {
        "rates": charts.events_per_second_chart(statistics.rates, statistics.bin_seconds),
        "active": charts.active_sessions_chart(statistics.active),
        "durations": charts.durations_chart(statistics.sessions, statistics.durations),
        "steps": charts.step_times_chart(statistics.step_times_by_number),
        "errors": charts.errors_chart(statistics.error_codes),
        "completion": charts.completion_chart(statistics.routes),
        "latency": charts.latency_chart(locust.requests) if locust is not None else None,
    }
    return {name: _data_uri(png) for name, png in drawn.items()}


def render_page(statistics: Statistics, locust: LocustStats | None,
                context: dict[str, Any]) -> str:
    """Render the whole report page."""
    environment = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = environment.get_template("report.html")
    routes = statistics.routes.drop(columns=["created", "deleted"])
    tables = {
        "events": table(statistics.events, "events.csv"),
        "durations": table(statistics.durations, "session_durations.csv"),
        "routes": table(routes, "routes.csv"),
        "steps": table(statistics.step_times, "step_times.csv"),
        "errors": table(statistics.errors, "errors.csv"),
        "participants": table(statistics.participants, "participants.csv"),
    }
    if locust is not None:
        tables["requests"] = table(locust.requests, "locust_requests.csv",
                                   formats=dict.fromkeys(("mean", "p50", "p90", "p99", "max"),
                                                         _integer))
        tables["failures"] = table(locust.failures, "locust_failures.csv")
    return template.render(
        summary=statistics.summary,
        sessions=statistics.session_counts,
        tables=tables,
        charts=render_charts(statistics, locust),
        locust=locust,
        **context,
    )
