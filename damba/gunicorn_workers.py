"""gunicorn workers that reject malformed HTTP with a JSON body.

gunicorn responds to a request it cannot parse (a bad request line, a bad
header, headers too large) itself, before the app runs, with a small HTML
page. These workers let gunicorn decide the status as usual, capture the
page it would send, and send the same status with Damba's JSON error body.
"""

from __future__ import annotations

import html
import re

import orjson
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from damba.web.logs import redact_path

# The status gunicorn chose, as a Damba error code.
_CODE_BY_STATUS = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}

_STATUS_LINE = re.compile(rb"^HTTP/1\.1 (\d{3}) ([^\r\n]*)")
_MESSAGE = re.compile(rb"</h1>\s*(.*?)\s*</body>", re.S)


class _CapturingSocket:
    """Stands in for the client socket while gunicorn writes its error page."""

    def __init__(self, client) -> None:
        self._client = client
        self.written = b""

    def sendall(self, data: bytes) -> None:
        self.written += data

    def __getattr__(self, name):
        return getattr(self._client, name)


def json_error_response(page: bytes) -> bytes:
    """Rewrite gunicorn's HTML error response as a JSON one with the same status."""
    status_match = _STATUS_LINE.match(page)
    status = int(status_match.group(1)) if status_match else 400
    reason = status_match.group(2).decode("latin-1") if status_match else "Bad Request"
    found = _MESSAGE.search(page)
    detail = html.unescape(found.group(1).decode("latin-1")) if found else ""
    code = _CODE_BY_STATUS.get(status, "bad_request" if status < 500 else "internal_error")
    if status >= 500:
        desc = "The server failed to handle this request; it is logged. Retry later."
    elif status == 414:
        desc = "The request line is longer than the server accepts; shorten the path or query."
    elif status == 431:
        desc = "The request headers are larger than the server accepts; send fewer or smaller ones."
    else:
        desc = (
            f"The HTTP request is malformed and was rejected before reaching the API "
            f"({redact_path(detail) or reason}); send a well-formed HTTP/1.1 request."
        )
    body = orjson.dumps({"result": "error", "code": code, "desc": desc})
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorsMixin:
    def handle_error(self, req, client, addr, exc):
        capture = _CapturingSocket(client)
        super().handle_error(req, capture, addr, exc)
        if capture.written:
            try:
                client.sendall(json_error_response(capture.written))
            except OSError:
                self.log.debug("could not send the error response to %s", addr)


class JsonThreadWorker(JsonErrorsMixin, ThreadWorker):
    """gunicorn's gthread worker, with JSON bodies on protocol errors."""


class JsonSyncWorker(JsonErrorsMixin, SyncWorker):
    """gunicorn's sync worker, with JSON bodies on protocol errors."""
