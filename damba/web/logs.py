"""Logging set-up, the request log line, and the redaction that keeps access
keys out of log lines."""

from __future__ import annotations

import logging
import re
import time

log = logging.getLogger("damba.web")

# One line per record, naming the process, because servers run many workers.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"

# A key can sit in a path after /uid/ or after /info/user/.
_KEY_IN_PATH = re.compile(r"(/uid/|/info/user/)[^/?#\s]+")


def redact_path(path: str) -> str:
    """Replace any access key in ``path`` with ``***``."""
    return _KEY_IN_PATH.sub(r"\1***", path)


def configure_logging(level: str = "INFO") -> None:
    """Send Damba's log lines to standard error, one line each."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
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
