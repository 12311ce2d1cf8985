"""uvicorn's HTTP protocol, replying in JSON to requests it cannot parse.

uvicorn replies to a request its parser rejects (a malformed request line
or header) itself, before the app runs, with a plain-text 400. This
subclass sends the same status with Damba's JSON error body, as the
gunicorn workers in ``damba.gunicorn_workers`` do.
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_BODY = orjson.dumps(
    {
        "result": "error",
        "code": "bad_request",
        "desc": "The HTTP request is malformed and was rejected before reaching the API; "
        "send a well-formed HTTP/1.1 request.",
    }
)


class JsonErrorsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a JSON body on parse errors."""

    def send_400_response(self, msg: str) -> None:
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(_BODY)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                _BODY,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
