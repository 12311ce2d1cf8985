"""Logging set-up, and the redaction that keeps access keys out of log lines.

DAMBA_LOG_FORMAT picks the line format: ``plain`` writes one readable line per
record, ``json`` writes one JSON object per line for log collectors. Both
formatters pass the finished text through ``redact_path``, so an access key
inside a logged path shows as ``***`` whichever logger wrote the line.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import orjson

# A key can sit in a path after /uid/ or after /info/user/.
_KEY_IN_PATH = re.compile(r"(/uid/|/info/user/)[^/?#\s]+")

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"

# Attributes that every LogRecord has. Any other attribute of a record came
# from the ``extra`` argument of the logging call, and a JSON line keeps it.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact_path(path: str) -> str:
    """Replace any access key in ``path`` with ``***``."""
    return _KEY_IN_PATH.sub(r"\1***", path)


class PlainFormatter(logging.Formatter):
    """Format a record as one readable line, with access keys redacted."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact_path(super().format(record))


class JSONFormatter(logging.Formatter):
    """Format a record as one JSON object on one line, with access keys redacted.

    The keys are ``time`` (ISO 8601 UTC, milliseconds), ``level``, ``logger``,
    ``pid`` and ``message``, then any ``extra`` fields of the call, then
    ``exception`` with the traceback when the record carries one.
    """

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created, UTC)
        entry = {
            "time": time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": redact_path(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = redact_path(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact_path(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str writes any extra value that JSON has no type for as text.
        return orjson.dumps(entry, default=str).decode()


def make_formatter(log_format: str) -> logging.Formatter:
    """Return the formatter for DAMBA_LOG_FORMAT ``plain`` or ``json``."""
    if log_format == "json":
        return JSONFormatter()
    if log_format == "plain":
        return PlainFormatter()
    raise ValueError(f"invalid log format {log_format!r}, expected plain or json")


def configure_logging(level: str = "INFO", log_format: str = "plain") -> None:
    """Send log records to standard error, one line each, in ``log_format``."""
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("damba").setLevel(level)
