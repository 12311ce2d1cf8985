"""Logging set-up, and the redaction that keeps access keys out of log lines."""

from __future__ import annotations

import logging
import re

# A key can sit in a path after /uid/ or after /info/user/.
_KEY_IN_PATH = re.compile(r"(/uid/|/info/user/)[^/?#\s]+")


def redact_path(path: str) -> str:
    """Replace any access key in ``path`` with ``***``."""
    return _KEY_IN_PATH.sub(r"\1***", path)


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
