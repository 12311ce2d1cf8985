"""An HTTP client of the Damba REST API v1, for the command line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import requests

from damba.client.sse import Message, parse
from damba.web.logs import redact_path

API_PREFIX = "/api/v1"
# Seconds to wait for the server to accept a connection, and for a reply.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# Seconds an event stream may stay silent before the client gives up on it;
# the server sends a heartbeat comment after 5 quiet seconds.
STREAM_READ_TIMEOUT = 30.0


class ApiError(Exception):
    """An error reply of the API, or a failure to get any reply."""

    def __init__(self, code: str, desc: str, status: int | None = None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(desc)
        self.code = code
        self.desc = desc
        self.status = status
        self.body = body or {"result": "error", "code": code, "desc": desc}
        # Seconds the server asked the client to wait, from Retry-After.
        self.retry_after: float | None = None


class Reply(dict):
    """A successful reply's JSON object, with the body's text as received."""

    text: str = ""


def _segment(value: str) -> str:
    return quote(value, safe="")


class ApiClient:
    """Sends requests to one Damba server and returns its JSON replies."""

    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()

    def _unreachable(self, error: requests.RequestException) -> ApiError:
        # requests puts the URL in its messages, and a URL can hold an access key.
        reason = redact_path(str(error))
        return ApiError(
            "unreachable",
            f"Cannot reach Damba at {self.base_url} ({type(error).__name__}: {reason}); "
            f"start it with `damba serve`, or set DAMBA_URL or --url to its address.",
        )

    def request(self, method: str, path: str, **options: Any) -> Reply:
        """Send one request to ``/api/v1`` + ``path``; raise ApiError on any failure."""
        url = self.base_url + API_PREFIX + path
        try:
            response = self.session.request(
                method, url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **options
            )
        except requests.RequestException as error:
            raise self._unreachable(error) from None
        return self._decode(response)

    def _decode(self, response: requests.Response) -> Reply:
        try:
            body = response.json()
        except ValueError:
            raise ApiError(
                "bad_reply",
                f"The server at {self.base_url} sent HTTP {response.status_code} "
                f"without a JSON body; check that DAMBA_URL points at Damba.",
                response.status_code,
            ) from None
        if not isinstance(body, dict) or body.get("result") != "ok":
            if not isinstance(body, dict):
                body = {}
            error = ApiError(
                str(body.get("code") or "bad_reply"),
                str(body.get("desc") or f"The server replied HTTP {response.status_code}."),
                response.status_code,
                body or None,
            )
            error.retry_after = _seconds(response.headers.get("Retry-After"))
            raise error
        reply = Reply(body)
        reply.text = response.text
        return reply

    # ------------------------------------------------------------ actions

    def add_user(self, name: str | None) -> Reply:
        return self.request("POST", "/user/addme", json={"name": name} if name else None)

    def kill_user(self, key: str) -> Reply:
        return self.request("POST", f"/user/killme/uid/{_segment(key)}")

    def add_route_text(self, key: str, text: str) -> Reply:
        return self.request(
            "POST",
            f"/addroute/uid/{_segment(key)}",
            data=text.encode("utf-8"),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    def add_route_steps(self, key: str, steps: int) -> Reply:
        return self.request("POST", f"/addroute/uid/{_segment(key)}/steps/{steps}")

    def delete_route(self, key: str, rid: str) -> Reply:
        return self.request("POST", f"/delroute/uid/{_segment(key)}/route/{_segment(rid)}")

    def join(self, key: str, rid: str) -> Reply:
        return self.request("POST", f"/join/uid/{_segment(key)}/route/{_segment(rid)}")

    def move(self, action: str, key: str, target: str, by: str) -> Reply:
        """Step or stop (``action``) a session named by route id or by session id."""
        return self.request(
            "POST", f"/{action}/uid/{_segment(key)}/{by}/{_segment(target)}"
        )

    # ------------------------------------------------------------ reads

    def info(self) -> Reply:
        return self.request("GET", "/info")

    def user(self, key: str) -> Reply:
        return self.request("GET", f"/info/user/{_segment(key)}")

    def routes(self) -> Reply:
        return self.request("GET", "/info/routes")

    def route(self, rid: str) -> Reply:
        return self.request("GET", f"/info/route/{_segment(rid)}")

    def session_info(self, sid: str) -> Reply:
        return self.request("GET", f"/info/session/{_segment(sid)}")

    def events(self, after: str | None) -> Iterator[Message]:
        """Follow the event stream after stream id ``after`` until the server ends it.

        With ``after`` None the server starts after its newest event.
        """
        url = self.base_url + API_PREFIX + "/events/stream"
        params = {"after": after} if after is not None else None
        try:
            response = self.session.get(
                url,
                params=params,
                headers={"Accept": "text/event-stream"},
                stream=True,
                timeout=(CONNECT_TIMEOUT, STREAM_READ_TIMEOUT),
            )
        except requests.RequestException as error:
            raise self._unreachable(error) from None
        with response:
            if response.status_code != 200:
                self._decode(response)
                raise ApiError(
                    "bad_reply",
                    f"The event stream replied HTTP {response.status_code}; expected 200.",
                    response.status_code,
                )
            try:
                lines = response.iter_lines(chunk_size=None, decode_unicode=True)
                yield from parse(lines)
            except requests.RequestException as error:
                raise self._unreachable(error) from None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
