"""Logging set-up, and the redaction that keeps access keys out of log lines.

DAMBA_LOG_FORMAT picks the line format: ``plain`` writes one readable line per
record, ``json`` writes one JSON object per line for log collectors. Both
formatters pass the finished text through ``redact_path``, so an access key
inside a logged path shows as ``***`` whichever logger wrote the line.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from urllib.parse import unquote

log = logging.getLogger("damba.web")

import orjson

from damba.keys import KEY_LIKE


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"

# Attributes that every LogRecord has. Any other attribute of a record came
# from the ``extra`` argument of the logging call, and a JSON line keeps it.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _percent_decoded(text: str) -> str:
    """Undo percent-encoding, repeatedly, so an encoded key is seen whole."""
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _escape_controls(text: str) -> str:
    """Escape control and separator characters, so one record stays one line."""
    return "".join(
        char if char.isprintable() or char == " " else char.encode("unicode_escape").decode()
        for char in text
    )


def redact_keys(text: str) -> str:
    """Return ``text`` percent-decoded, with anything shaped like a key as ***."""
    return KEY_LIKE.sub("***", _percent_decoded(text))


def redact_path(text: str) -> str:
    """Return ``text`` safe to log: percent-decoded, keys as ***, controls escaped."""
    return _escape_controls(redact_keys(text))


class RedactingFilter(logging.Filter):
    """Rewrite each record's message with any access key in a path redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_path(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


class PlainFormatter(logging.Formatter):
    """Format a record as one readable line, with access keys redacted."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        # The message is escaped to stay on one line; a traceback after it
        # keeps its line breaks but not its keys.
        record.msg = redact_path(record.getMessage())
        record.args = None
        return redact_keys(super().format(record))


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


class RequestLog:
    """Middleware: one log line per request, with any access key redacted.

    Falcon calls the plain methods in the WSGI app and the ``*_async`` ones
    in the ASGI app, so both apps write the same line.
    """

    def process_request(self, req, resp) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        started = getattr(req.context, "started", None)
        elapsed_ms = (time.perf_counter() - started) * 1000 if started else 0.0
        log.info(
            "%s %s %s %.1fms",
            req.method, redact_path(req.path), resp.status_code, elapsed_ms,
        )

    async def process_request_async(self, req, resp) -> None:
        self.process_request(req, resp)

    async def process_response_async(self, req, resp, resource, req_succeeded: bool) -> None:
        self.process_response(req, resp, resource, req_succeeded)
