"""Logging for ``damba serve --asgi``: uvicorn's log config, with keys redacted.

uvicorn starts each worker in a fresh process and applies its log config
there, so Damba's own loggers are set up through the same config, and the
workers write the same lines as gunicorn's.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from damba.web.logs import redact_path


class RedactingAccessFilter(logging.Filter):
    """Pass every string argument of an access-log record through redact_path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_path(value) if isinstance(value, str) else value
                for value in record.args
            )
        return True


def log_config(level: str, access_log: bool, log_format: str = "plain") -> dict[str, Any]:
    """Return uvicorn's log config with Damba's loggers and line format added.

    ``level`` applies to Damba's loggers, ``log_format`` (plain or json) to
    every line but uvicorn's access lines. With ``access_log`` uvicorn's
    access lines go to standard output, each path passed through
    redact_path; without it uvicorn writes none.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["damba"] = {
        "()": "damba.web.logs.make_formatter",
        "log_format": log_format,
    }
    config["filters"] = {
        "redact_keys": {"()": "damba.uvicorn_logging.RedactingAccessFilter"}
    }
    config["handlers"]["default"]["formatter"] = "damba"
    config["handlers"]["access"]["filters"] = ["redact_keys"]
    config["loggers"]["damba"] = {
        "handlers": ["default"],
        "level": level,
        "propagate": False,
    }
    if not access_log:
        config["loggers"]["uvicorn.access"] = {"handlers": [], "propagate": False}
    return config
