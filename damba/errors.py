"""The errors the API returns: each has a stable code and an HTTP status.

Codes are part of the public API. Clients and tests match on them, so a code
never changes meaning; a new failure gets a new code.
"""

from __future__ import annotations

# code -> HTTP status
STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "invalid_json": 400,
    "invalid_name": 400,
    "invalid_steps": 400,
    "invalid_id": 400,
    "invalid_key": 400,
    "invalid_query": 400,
    "forbidden": 403,
    "invalid_path": 400,
    "not_owner": 403,
    "not_your_session": 403,
    "not_found": 404,
    "unknown_user": 404,
    "unknown_route": 404,
    "unknown_session": 404,
    "no_active_session": 404,
    "unknown_report": 404,
    "method_not_allowed": 405,
    "name_taken": 409,
    "maxusers_reached": 409,
    "maxroutes_reached": 409,
    "maxsteps_exceeded": 409,
    "session_active": 409,
    "session_ended": 409,
    "body_too_large": 413,
    "uri_too_long": 414,
    "unsupported_media_type": 415,
    "expectation_failed": 417,
    "invalid_route": 422,
    "headers_too_large": 431,
    "internal_error": 500,
    "not_implemented": 501,
    "store_unavailable": 503,
    "store_busy": 503,
    "outcome_unknown": 503,
    "not_ready": 503,
    "streams_busy": 503,
    "streams_unsupported": 503,
}


class DambaError(Exception):
    """A request that cannot be carried out, with the sentence to show."""

    def __init__(self, code: str, message: str) -> None:
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def to_body(self) -> dict[str, str]:
        return {"result": "error", "code": self.code, "desc": self.message}
