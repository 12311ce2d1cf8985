"""The WSGI app: API v1 on ``falcon.App``, for gunicorn.

gunicorn loads it with ``damba.wsgi:create_app()``, which reads the settings
from the environment; tests call ``create_app(settings, store)`` directly.
"""

from __future__ import annotations

import logging
import time

import falcon
import orjson

from damba import commands
from damba.config import Settings, load_settings
from damba.dashboard import wsgi as dashboard_wsgi
from damba.dashboard.config import DashboardSettings
from damba.driver import run
from damba.errors import DambaError
from damba.store.sync_store import RedisStore, connect
from damba.web import errors
from damba.web.endpoints import (
    API_PREFIX,
    ENDPOINTS,
    Call,
    Endpoint,
    allowed_methods,
    rejection_context,
)
from damba.web.health import add_health_routes
from damba.web.logs import redact_path
from damba.web.openapi import openapi_document

log = logging.getLogger("damba.web")


def read_body(req: falcon.Request, limit: int) -> bytes:
    """Read the request body, or raise body_too_large past ``limit`` bytes."""
    length = req.content_length
    if length is not None and length > limit:
        raise body_too_large(limit)
    if length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
        # Falcon's bounded stream reads nothing without a Content-Length, but
        # gunicorn's input stream decodes a chunked body up to its end.
        data = req.stream.read(limit + 1)
    else:
        data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise body_too_large(limit)
    return data


def body_too_large(limit: int) -> DambaError:
    return DambaError(
        "body_too_large",
        f"The request body is larger than {limit} bytes, the limit set by "
        f"DAMBA_MAX_BODY; send a smaller one.",
    )


def single_values(params: dict) -> dict[str, str]:
    """Keep the last value of a repeated query parameter."""
    return {name: value[-1] if isinstance(value, list) else value for name, value in params.items()}


class EndpointResource:
    """Serves one endpoint of the table through the synchronous driver."""

    def __init__(self, endpoint: Endpoint, settings: Settings, store: RedisStore) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.store = store
        setattr(self, "on_" + endpoint.method.lower(), self.respond)
        if endpoint.method == "GET":
            self.on_head = self.respond

    def on_options(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        allowed = allowed_methods(self.endpoint)
        resp.set_header("Allow", ", ".join(allowed))
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(
            {"result": "ok", "desc": f"This path accepts {', '.join(allowed)}.", "allow": allowed}
        )

    def respond(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        call = Call(params, single_values(req.params), raw_query=req.query_string)
        try:
            if self.endpoint.method == "POST":
                call = Call(
                    params=params,
                    query=call.query,
                    body=read_body(req, self.settings.max_body),
                    content_type=req.content_type or "",
                    raw_query=call.raw_query,
                )
            reply = run(self.store, self.endpoint.build(self.settings, call))
        except DambaError as error:
            if error.code == "body_too_large" and self.endpoint.action:
                self._record_rejection(call, error)
            errors.render_damba_error(resp, error)
            return
        resp.status = self.endpoint.status
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps({"result": "ok", **reply})

    def _record_rejection(self, call: Call, error: DambaError) -> None:
        """Append the error event for a request rejected before its operation ran."""
        try:
            run(self.store, commands.reject(rejection_context(self.endpoint, call), error))
        except DambaError:
            pass


class OpenAPIResource:
    def __init__(self, document: dict) -> None:
        self._body = orjson.dumps(document)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


class RequestLog:
    """Middleware: one log line per request, with any access key redacted."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        started = getattr(req.context, "started", None)
        elapsed_ms = (time.perf_counter() - started) * 1000 if started else 0.0
        log.info(
            "%s %s %s %.1fms",
            req.method, redact_path(req.path), resp.status_code, elapsed_ms,
        )


def create_app(
    settings: Settings | None = None,
    store: RedisStore | None = None,
    dashboard: DashboardSettings | None = None,
) -> falcon.App:
    """Build the WSGI app; by default from the environment's settings."""
    if settings is None:
        settings = load_settings()
    if store is None:
        if not settings.redis_url:
            raise RuntimeError(
                "DAMBA_REDIS_URL is not set; start the app with `damba serve`, "
                "which provides a Redis, or set the variable."
            )
        store = RedisStore(connect(settings, settings.redis_url), settings.key_prefix)

    app = falcon.App(middleware=[RequestLog()])
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(errors.serialize_http_error)
    app.add_error_handler(Exception, lambda req, resp, ex, params: errors.render_unexpected(req, resp, ex))
    app.add_error_handler(falcon.HTTPError, _http_error_handler)

    for endpoint in ENDPOINTS:
        app.add_route(API_PREFIX + endpoint.template, EndpointResource(endpoint, settings, store))
    app.add_route(API_PREFIX + "/openapi.json", OpenAPIResource(openapi_document()))
    add_health_routes(app, settings, store)
    dashboard_wsgi.add_routes(app, settings, store, dashboard)
    return app


def _http_error_handler(req, resp, error: falcon.HTTPError, params) -> None:
    resp.status = error.status
    if error.headers:
        resp.set_headers(error.headers)
    errors.serialize_http_error(req, resp, error)
