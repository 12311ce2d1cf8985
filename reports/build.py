"""Build a report: read the stream, compute the statistics, write the files.

A report folder contains ``report.html`` (self-contained), one CSV file per
table and ``summary.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import redis

from reports import html
from reports.frames import FrameBuilder
from reports.locust import LocustStats, read_locust_csv
from reports.statistics import Statistics, compute
from reports.stream import PAGE_SIZE, ReportError, inspect_stream, read_pages

DEFAULT_ROOT = Path("reports-out")


@dataclass(frozen=True)
class Report:
    """A written report: its folder, its HTML page and its summary."""

    folder: Path
    page: Path
    summary: dict[str, Any]


def new_folder(root: Path = DEFAULT_ROOT, now: datetime | None = None) -> Path:
    """Create and return ``root/<UTC timestamp>/``, adding a suffix if it exists."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        folder = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise ReportError(f"Could not create a new report folder under {root}; clean it up.")


def _iso(frame: pd.DataFrame) -> pd.DataFrame:
    """Write timestamps as ISO 8601 UTC with microseconds, like the stream's dt."""
    frame = frame.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return frame


def _readable(iso: str) -> str:
    return pd.Timestamp(iso).strftime("%Y-%m-%d %H:%M:%S")


def table_files(statistics: Statistics, locust: LocustStats | None) -> dict[str, pd.DataFrame]:
    """Return each CSV file's name and the table written to it."""
    files = {
        "events.csv": statistics.events,
        "sessions.csv": statistics.sessions,
        "session_durations.csv": statistics.durations,
        "routes.csv": statistics.routes,
        "step_times.csv": statistics.step_times,
        "step_times_by_number.csv": statistics.step_times_by_number,
        "events_per_second.csv": statistics.rates,
        "active_sessions.csv": statistics.active,
        "errors.csv": statistics.errors,
        "participants.csv": statistics.participants,
    }
    if locust is not None:
        files["locust_requests.csv"] = locust.requests
        files["locust_failures.csv"] = locust.failures
    return files


def read_statistics(client: redis.Redis, stream: str, page_size: int = PAGE_SIZE,
                    progress: bool | None = None) -> Statistics:
    """Read the whole stream in pages and compute its statistics."""
    info = inspect_stream(client, stream)
    builder = FrameBuilder()
    for page in read_pages(client, info, page_size, progress):
        builder.add_page(page)
    statistics = compute(builder.frames())
    statistics.summary["stream"] = stream
    return statistics


def write_report(statistics: Statistics, folder: Path,
                 locust: LocustStats | None = None) -> Report:
    """Write the CSV files, ``summary.json`` and ``report.html`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = dict(statistics.summary)
    if locust is not None:
        summary["locust"] = locust.total

    files = table_files(statistics, locust)
    for name, frame in files.items():
        _iso(frame).to_csv(folder / name, index=False)
    (folder / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    context = {
        "stream": summary.get("stream", ""),
        "first_event": _readable(summary["first_event"]),
        "last_event": _readable(summary["last_event"]),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "files": [*files, "summary.json"],
    }
    page = folder / "report.html"
    page.write_text(html.render_page(statistics, locust, context), encoding="utf-8")
    return Report(folder=folder, page=page, summary=summary)


def build_report(client: redis.Redis, stream: str, folder: Path | None = None,
                 locust_prefix: str | None = None, page_size: int = PAGE_SIZE,
                 progress: bool | None = None) -> Report:
    """Read ``stream`` and write its report into ``folder`` (a new one by default)."""
    # Read Locust's files first, so that a wrong prefix fails before the long read.
    locust = read_locust_csv(locust_prefix) if locust_prefix else None
    statistics = read_statistics(client, stream, page_size, progress)
    return write_report(statistics, folder or new_folder(), locust)
