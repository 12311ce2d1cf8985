"""The WSGI app: API v1 on ``falcon.App``, for gunicorn.

gunicorn loads it with ``damba.wsgi:create_app()``, which reads the settings
from the environment; tests call ``create_app(settings, store)`` directly.
"""

from __future__ import annotations

import falcon
from gunicorn.http.errors import NoMoreData, ParseException
import orjson

from damba.config import Settings, load_settings
from damba.dashboard import wsgi as dashboard_wsgi
from damba.dashboard.config import DashboardSettings
from damba.driver import run
from damba.errors import DambaError
from damba.store.sync_store import RedisStore, connect
from damba.web import errors, handling
from damba.web.endpoints import API_PREFIX, ENDPOINTS, Call, Endpoint
from damba.web.health import add_health_routes
from damba.web.logs import RequestLog
from damba.web.openapi import openapi_document


def read_body(req: falcon.Request, limit: int) -> bytes:
    """Read the request body, or raise body_too_large past ``limit`` bytes."""
    handling.check_body_length(req.content_length, limit)
    stream = req.bounded_stream
    if req.content_length is None and req.env.get("wsgi.input_terminated"):
        # A chunked body declares no length, so bounded_stream would read
        # nothing. gunicorn decodes the body and ends the input where the
        # body ends (it sets wsgi.input_terminated), so the input is read to
        # the limit, as the ASGI app reads it.
        stream = req.stream
    try:
        data = stream.read(limit + 1)
    except (ParseException, NoMoreData) as error:
        # gunicorn raises these for a malformed chunked body.
        raise handling.malformed_body(error) from None
    handling.check_body_length(len(data), limit)
    handling.check_body_complete(req.content_length, len(data))
    return data


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
        handling.render_options(resp, self.endpoint)

    def respond(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        call = handling.request_call(req, params)
        try:
            if self.endpoint.method == "POST":
                body = read_body(req, self.settings.max_body)
                call = handling.with_body(call, body, req.content_type)
            reply = run(self.store, self.endpoint.build(self.settings, call))
        except DambaError as error:
            self._record_rejection(call, error)
            errors.render_damba_error(resp, error)
            return
        handling.render_reply(resp, self.endpoint, reply)

    def _record_rejection(self, call: Call, error: DambaError) -> None:
        """Append the error event for a request rejected before its operation ran."""
        operation = handling.rejection(self.endpoint, call, error)
        if operation is None:
            return
        try:
            run(self.store, operation)
        except DambaError as failure:
            if failure is not error:
                handling.log_unrecorded(self.endpoint, error, failure)


class OpenAPIResource:
    def __init__(self, document: dict) -> None:
        self._body = orjson.dumps(document)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


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
    app.add_error_handler(Exception, _unexpected_error_handler)
    app.add_error_handler(falcon.HTTPError, _http_error_handler)

    for endpoint in ENDPOINTS:
        app.add_route(API_PREFIX + endpoint.template, EndpointResource(endpoint, settings, store))
    app.add_route(API_PREFIX + "/openapi.json", OpenAPIResource(openapi_document()))
    add_health_routes(app, settings, store)
    dashboard_wsgi.add_routes(app, settings, store, dashboard)
    return app


def _http_error_handler(req, resp, error: falcon.HTTPError, params) -> None:
    errors.render_http_error(req, resp, error)


def _unexpected_error_handler(req, resp, error: Exception, params) -> None:
    errors.render_unexpected(req, resp, error)
