"""Turn every failure into the same JSON shape: result, code, desc.

Falcon raises HTTPError for routing and protocol failures (unknown path,
wrong method); Damba raises DambaError for everything its rules reject. Both
leave as ``{"result": "error", "code": ..., "desc": ...}``, and an
unexpected exception leaves as a JSON 500 with a log line, never a
traceback or an HTML page.
"""

from __future__ import annotations

import logging

import falcon
import orjson

from damba.errors import DambaError

log = logging.getLogger("damba.web")

# Falcon's HTTP errors, by status, as Damba error codes.
_CODE_BY_STATUS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def http_error_body(error: falcon.HTTPError) -> dict[str, str]:
    status = error.status_code
    code = _CODE_BY_STATUS.get(status, "bad_request" if status < 500 else "internal_error")
    if status == 404:
        desc = "No such path; the API lives under /api/v1, described at /api/v1/openapi.json."
    elif status == 405:
        allow = (error.headers or {}).get("Allow", "")
        allowed = ", ".join(method.strip() for method in allow.split(",") if method.strip())
        desc = f"This path does not accept that method; use {allowed or 'another method'}."
    else:
        what = ": ".join(part.rstrip(".") for part in (error.title, error.description) if part)
        desc = f"{what}. Check the request against /api/v1/openapi.json and send it again."
    return {"result": "error", "code": code, "desc": desc}


def serialize_http_error(req, resp, error: falcon.HTTPError) -> None:
    """Falcon error serializer: JSON whatever the client accepts."""
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(http_error_body(error))


def render_http_error(req, resp, error: falcon.HTTPError) -> None:
    """Render a Falcon HTTPError as Damba's JSON error, keeping its status and headers."""
    resp.status = error.status
    if error.headers:
        resp.set_headers(error.headers)
    serialize_http_error(req, resp, error)


def render_damba_error(resp, error: DambaError) -> None:
    resp.status = error.status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(error.to_body())


def render_unexpected(req, resp, error: Exception) -> None:
    log.exception("unhandled error on %s", req.method)
    render_damba_error(
        resp,
        DambaError(
            "internal_error",
            "The server failed on this request; it is logged. Retry, and report it "
            "if it persists.",
        ),
    )
