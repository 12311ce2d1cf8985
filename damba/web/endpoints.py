"""The API v1 endpoints: path templates, and the operation each one runs.

This table is shared by the WSGI and the ASGI apps, and the OpenAPI
document is checked against it. Building an operation reads only the
request's parameters and body, already in memory, so it is free of I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from urllib.parse import unquote_to_bytes

import orjson

from damba import commands, queries
from damba.commands import Context
from damba.config import Settings
from damba.errors import DambaError
from damba.keys import hash_key, mask_keys
from damba.protocol import Operation

API_PREFIX = "/api/v1"


@dataclass(frozen=True)
class Call:
    """The parts of an HTTP request that an endpoint uses."""

    params: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = ""
    # The query string as sent, still percent-encoded.
    raw_query: str = ""


@dataclass(frozen=True)
class Endpoint:
    template: str
    method: str
    build: Callable[[Settings, Call], Operation]
    summary: str
    # The event an action appends; None for reads, which append nothing.
    action: str | None = None
    status: int = 200


def allowed_methods(endpoint: Endpoint) -> list[str]:
    """List the methods an endpoint's path accepts, for Allow headers."""
    if endpoint.method == "GET":
        return ["GET", "HEAD", "OPTIONS"]
    return [endpoint.method, "OPTIONS"]


def rejection_context(endpoint: Endpoint, call: Call) -> Context:
    """Describe a rejected call for its error event, with the key hashed."""
    context = Context(endpoint.action or "read")
    if "uid" in call.params:
        context.uid = hash_key(call.params["uid"])
    context.rid = mask_keys(call.params.get("rid", ""))
    context.sid = mask_keys(call.params.get("sid", ""))
    return context


# ---------------------------------------------------------------- bodies


def _media_type(call: Call) -> str:
    return call.content_type.split(";", 1)[0].strip().lower()


def _json_body(call: Call) -> dict[str, Any]:
    try:
        body = orjson.loads(call.body)
    except orjson.JSONDecodeError as error:
        raise DambaError(
            "invalid_json", f"The body is not valid JSON ({error}); send a JSON object."
        ) from None
    if not isinstance(body, dict):
        raise DambaError(
            "invalid_json", f"The JSON body must be an object, got {type(body).__name__}."
        )
    return body


def _text_field(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise DambaError(
            "bad_request",
            f"The field {name!r} must be a string, got {type(value).__name__}.",
        )
    return value


def _utf8(call: Call) -> str:
    try:
        return call.body.decode("utf-8")
    except UnicodeDecodeError:
        raise DambaError(
            "bad_request", "The body is not valid UTF-8 text; send UTF-8."
        ) from None


def _unsupported(call: Call, accepted: str) -> DambaError:
    return DambaError(
        "unsupported_media_type",
        f"Content type {_media_type(call)!r} is not accepted here; send {accepted}.",
    )


def check_query_encoding(raw_query: str) -> None:
    """Raise if the percent-encoded query string does not decode as UTF-8."""
    try:
        unquote_to_bytes(raw_query.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise DambaError(
            "bad_request",
            "The query string is not valid UTF-8 once percent-decoded; encode it as UTF-8.",
        ) from None


def user_name(call: Call) -> str | None:
    """Return the requested public name, from the query string or a JSON body."""
    if "name" in call.query:
        check_query_encoding(call.raw_query)
        return call.query["name"]
    if not call.body.strip():
        return None
    if _media_type(call) not in ("application/json", ""):
        raise _unsupported(call, "application/json or a name query parameter")
    return _text_field(_json_body(call), "name")


def route_text(call: Call) -> str:
    """Return the route text from a text/plain or JSON {"text": ...} body."""
    media_type = _media_type(call)
    if media_type == "application/json":
        text = _text_field(_json_body(call), "text")
    elif media_type in ("text/plain", ""):
        text = _utf8(call)
    else:
        raise _unsupported(call, 'text/plain or application/json {"text": ...}')
    if text is None or not text.strip():
        raise DambaError(
            "bad_request",
            'The request has no route text; send it as text/plain or as JSON {"text": ...}.',
        )
    return text


def _guarded(action: str, parse: Callable[[], Operation]) -> Operation:
    """Run ``parse``; if reading the request fails, reject the action instead."""
    try:
        operation = parse()
    except DambaError as error:
        operation = commands.reject(Context(action), error)
    return (yield from operation)


# ---------------------------------------------------------------- builders


def _add_user(settings: Settings, call: Call) -> Operation:
    return _guarded(
        "adduser", lambda: commands.add_user(settings.limits, user_name(call))
    )


def _add_route_text(settings: Settings, call: Call) -> Operation:
    def parse():
        return commands.add_route(settings.limits, call.params["uid"], text=route_text(call))

    return _guarded("addroute", parse)


def _events(settings: Settings, call: Call) -> Operation:
    raw_count = call.query.get("count", "100")
    if not (raw_count.isascii() and raw_count.isdigit()):
        raise DambaError(
            "invalid_query", f"count must be a whole number, got {raw_count[:20]!r}."
        )
    order = call.query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise DambaError(
            "invalid_query", f"order must be asc or desc, got {order[:20]!r}."
        )
    after = call.query.get("after", "-")
    # Python refuses to convert strings of more than 4300 digits, so a count
    # too long to be in range is rejected before int() sees it.
    if len(raw_count) > 7:
        raise DambaError(
            "invalid_query",
            f"count must be between 1 and {queries.MAX_EVENTS_PAGE}, got {raw_count[:20]}.",
        )
    return queries.list_events(after, int(raw_count), order == "desc")


def _by(name: str, function: Callable[..., Operation]):
    """Build an operation from the access key and one path parameter."""

    def build(settings: Settings, call: Call) -> Operation:
        return function(call.params["uid"], **{name: call.params[name]})

    return build


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/user/addme", "POST", _add_user,
             "Register a participant and return their access key.", "adduser", 201),
    Endpoint("/user/killme/uid/{uid}", "POST",
             lambda s, c: commands.kill_user(c.params["uid"]),
             "Stop the participant's sessions, delete their routes, remove them.",
             "deluser"),
    Endpoint("/addroute/uid/{uid}/steps/{steps}", "POST",
             lambda s, c: commands.add_route(s.limits, c.params["uid"], steps=c.params["steps"]),
             "Store a generated route with the given number of steps.", "addroute", 201),
    Endpoint("/addroute/uid/{uid}", "POST", _add_route_text,
             "Store a route written in the route language.", "addroute", 201),
    Endpoint("/delroute/uid/{uid}/route/{rid}", "POST",
             _by("rid", commands.delete_route),
             "Delete a route you own; its running sessions stop.", "delroute"),
    Endpoint("/join/uid/{uid}/route/{rid}", "POST", _by("rid", commands.join),
             "Start a session of a route.", "startsess", 201),
    Endpoint("/step/uid/{uid}/route/{rid}", "POST", _by("rid", commands.step),
             "Move your session on a route to its next step.", "stepsess"),
    Endpoint("/stop/uid/{uid}/route/{rid}", "POST", _by("rid", commands.stop),
             "Stop your session on a route.", "stopsess"),
    Endpoint("/step/uid/{uid}/session/{sid}", "POST", _by("sid", commands.step),
             "Move a session, named by its id, to its next step.", "stepsess"),
    Endpoint("/stop/uid/{uid}/session/{sid}", "POST", _by("sid", commands.stop),
             "Stop a session named by its id.", "stopsess"),
    Endpoint("/info", "GET", lambda s, c: queries.service_info(s.limits),
             "Summarise the service: version, limits, counts, stream length."),
    Endpoint("/info/users", "GET", lambda s, c: queries.list_users(),
             "List participants by public name."),
    Endpoint("/info/user/{uid}", "GET", lambda s, c: queries.show_user(c.params["uid"]),
             "Show your own participant record: routes and running sessions."),
    Endpoint("/info/routes", "GET", lambda s, c: queries.list_routes(),
             "List all routes."),
    Endpoint("/info/route/{rid}", "GET", lambda s, c: queries.show_route(c.params["rid"]),
             "Show one route with its text, steps and sessions at each step."),
    Endpoint("/info/session/{sid}", "GET",
             lambda s, c: queries.show_session(c.params["sid"]),
             "Show a session's results: where it stands and its trace."),
    Endpoint("/info/events", "GET", _events,
             "Read a page of the event stream."),
)
