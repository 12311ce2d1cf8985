"""The steps of serving one endpoint that the WSGI and ASGI apps share.

Both apps read the request into a ``Call``, enforce the body limit, run the
endpoint's operation through their own driver and render the reply. Only
the reading and the driving differ (blocking or awaited), so every rule and
message lives here, once.
"""

from __future__ import annotations

import logging

import falcon
import orjson

from damba import commands
from damba.errors import DambaError
from damba.protocol import Operation
from damba.web.endpoints import Call, Endpoint, allowed_methods, rejection_context

log = logging.getLogger("damba.web")


def body_too_large(limit: int) -> DambaError:
    return DambaError(
        "body_too_large",
        f"The request body is larger than {limit} bytes, the limit set by "
        f"DAMBA_MAX_BODY; send a smaller one.",
    )


def check_body_length(length: int | None, limit: int) -> None:
    """Raise body_too_large when ``length`` bytes exceed ``limit``.

    Call it once with the declared Content-Length before reading, so a large
    body is never read, and once with the length read (at most ``limit + 1``
    bytes), which catches a chunked body that declared no length.
    """
    if length is not None and length > limit:
        raise body_too_large(limit)


def check_body_complete(declared: int | None, received: int) -> None:
    """Raise bad_request when fewer bytes arrived than Content-Length declared.

    A client that closes its side early has sent a cut-off body; acting on
    it would store a truncated route or name.
    """
    if declared is not None and received < declared:
        raise DambaError(
            "bad_request",
            f"The body ended after {received} of the {declared} bytes that "
            f"Content-Length declared; send the whole body.",
        )


def malformed_body(error: Exception) -> DambaError:
    return DambaError(
        "bad_request",
        f"The request body could not be read ({type(error).__name__}); "
        f"check its chunked encoding and send it again.",
    )


def single_values(params: dict) -> dict[str, str]:
    """Keep the last value of a repeated query parameter."""
    return {
        name: value[-1] if isinstance(value, list) else value
        for name, value in params.items()
    }


def request_call(req: falcon.Request, params: dict[str, str]) -> Call:
    """Build the Call of a request from its path and query parameters."""
    return Call(params=params, query=single_values(req.params), raw_query=req.query_string)


def with_body(call: Call, body: bytes, content_type: str | None) -> Call:
    return Call(
        params=call.params,
        query=call.query,
        body=body,
        content_type=content_type or "",
        raw_query=call.raw_query,
    )


def rejection(endpoint: Endpoint, call: Call, error: DambaError) -> Operation | None:
    """Return the operation that records ``error`` as an error event, or None.

    Only an action whose body was too large to read needs this, because its
    operation never ran. The operation itself records every other rejection
    of an action, and reads record nothing.
    """
    if error.code != "body_too_large" or endpoint.action is None:
        return None
    return commands.reject(rejection_context(endpoint, call), error)


def log_unrecorded(endpoint: Endpoint, error: DambaError, failure: DambaError) -> None:
    """Log that the error event of a rejected request could not be appended.

    The client still gets the request's own error; this line is the only
    trace of the rejection, because the stream lacks it.
    """
    log.warning(
        "error event for a %s request rejected with %s was not appended: %s %s",
        endpoint.action,
        error.code,
        failure.code,
        failure.message,
    )


def render_reply(resp: falcon.Response, endpoint: Endpoint, reply: dict) -> None:
    resp.status = endpoint.status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps({"result": "ok", **reply})


def render_options(resp: falcon.Response, endpoint: Endpoint) -> None:
    """Reply to OPTIONS with the allowed methods, in the Allow header and as JSON."""
    allowed = allowed_methods(endpoint)
    resp.set_header("Allow", ", ".join(allowed))
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(
        {"result": "ok", "desc": f"This path accepts {', '.join(allowed)}.", "allow": allowed}
    )
