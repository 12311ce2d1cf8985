"""Logging set-up, and the redaction that keeps access keys out of log lines."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

# An access key is 32 URL-safe characters. Any run of 32 or more of them is
# hidden, wherever it sits: a path, a query string, a Referer header.
_KEY_LIKE = re.compile(r"[A-Za-z0-9_-]{32,}")


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


def redact_path(text: str) -> str:
    """Return ``text`` safe to log: percent-decoded, keys as ***, controls escaped."""
    return _escape_controls(_KEY_LIKE.sub("***", _percent_decoded(text)))


class RedactingFilter(logging.Filter):
    """Rewrite each record's message with any access key in a path redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_path(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send Damba's log lines to standard error, one line each, keys redacted."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    logging.getLogger("damba").setLevel(level)
