"""Dashboard settings, read from environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from damba.config import SettingsError, _read_int


@dataclass(frozen=True)
class DashboardSettings:
    """The reports folder and the limits on event streams."""

    # The folder `damba report` writes into; one subfolder per report.
    reports_dir: Path = Path("reports-out")
    # Seconds one event-stream response lasts before the server ends it.
    # Browsers reconnect on their own and resume from their last event id.
    stream_seconds: int = 240
    # Event-stream responses one worker process serves at once. Under
    # gunicorn each occupies a worker thread for its whole life, so this must
    # stay below the thread count for the API to keep threads free. Under
    # uvicorn each occupies one of the worker's pooled Redis connections.
    stream_clients: int = 2


def load_dashboard_settings(env: Mapping[str, str] | None = None) -> DashboardSettings:
    """Build dashboard settings from ``env`` (the process environment by default)."""
    if env is None:
        env = os.environ
    reports_dir = (env.get("DAMBA_REPORTS_DIR") or "").strip() or "reports-out"
    if "\0" in reports_dir:
        raise SettingsError("DAMBA_REPORTS_DIR must not contain a NUL character.")
    return DashboardSettings(
        reports_dir=Path(reports_dir),
        stream_seconds=_read_int(env, "DAMBA_STREAM_SECONDS", 240, 1),
        stream_clients=_read_int(env, "DAMBA_STREAM_CLIENTS", 2, 1),
    )
