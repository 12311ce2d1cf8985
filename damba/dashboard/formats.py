"""Formats for times, durations, sizes and step numbers, shared by pages and the CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime

from damba.events import END_STEP


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def clock(stamp: str | None) -> str:
    """Format an ISO 8601 UTC time as HH:MM:SS."""
    return _parse(stamp).strftime("%H:%M:%S") if stamp else ""


def clock_ms(stamp: str | None) -> str:
    """Format an ISO 8601 UTC time as HH:MM:SS.mmm."""
    return _parse(stamp).strftime("%H:%M:%S.%f")[:-3] if stamp else ""


def day_or_clock(stamp: str | None, today: date | None = None) -> str:
    """Format an ISO 8601 UTC time as HH:MM:SS if it is today (UTC), else as a date."""
    if not stamp:
        return ""
    parsed = _parse(stamp)
    today = today or datetime.now(UTC).date()
    return parsed.strftime("%H:%M:%S" if parsed.date() == today else "%Y-%m-%d")


def moment(stamp: str | None) -> str:
    """Format an ISO 8601 UTC time as a date and a time to the second, in UTC."""
    return _parse(stamp).strftime("%Y-%m-%d %H:%M:%S UTC") if stamp else ""


def duration(start: str | None, end: str | None) -> str:
    """Format the time from ``start`` to ``end`` as ms, s, min or h."""
    if not start or not end:
        return ""
    seconds = (_parse(end) - _parse(start)).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def file_size(size: int) -> str:
    """Format a byte count in B, KiB or MiB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def step_label(step: int | None, steps: int | None = None) -> str:
    """Name a step number as people read it: START, a step of n, or ended."""
    if step is None:
        return ""
    if step == 0:
        return "START"
    if step == END_STEP:
        return "ended"
    return f"{step} of {steps}" if steps else str(step)
