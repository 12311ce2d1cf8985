"""The ASGI app: API v1 on ``falcon.asgi.App``, for uvicorn.

It mirrors ``damba.wsgi`` name for name and shares its endpoint table,
request handling, error rendering, OpenAPI document, request log and
dashboard, so the two apps differ only in how they wait for Redis. uvicorn
loads it with the factory ``damba.asgi:create_app``, which reads the
settings from the environment; tests call ``create_app(settings, store)``
directly.
"""

from __future__ import annotations

import falcon
import falcon.asgi
import orjson

from damba.config import Settings, load_settings
from damba.dashboard import asgi as dashboard_asgi
from damba.dashboard.config import DashboardSettings
from damba.driver import run_async
from damba.errors import DambaError
from damba.store.async_store import AsyncRedisStore, connect
from damba.web import errors, handling
from damba.web.endpoints import API_PREFIX, ENDPOINTS, Call, Endpoint
from damba.web.health import add_health_routes_asgi
from damba.web.logs import RequestLog
from damba.web.openapi import openapi_document


async def read_body(req: falcon.asgi.Request, limit: int) -> bytes:
    """Read the request body, or raise body_too_large past ``limit`` bytes."""
    handling.check_body_length(req.content_length, limit)
    data = await req.bounded_stream.read(limit + 1)
    handling.check_body_length(len(data), limit)
    handling.check_body_complete(req.content_length, len(data))
    return data


class EndpointResource:
    """Serves one endpoint of the table through the asyncio driver."""

    def __init__(
        self, endpoint: Endpoint, settings: Settings, store: AsyncRedisStore
    ) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.store = store
        setattr(self, "on_" + endpoint.method.lower(), self.respond)
        if endpoint.method == "GET":
            self.on_head = self.respond

    async def on_options(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: str
    ) -> None:
        handling.render_options(resp, self.endpoint)

    async def respond(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: str
    ) -> None:
        call = handling.request_call(req, params)
        try:
            if self.endpoint.method == "POST":
                body = await read_body(req, self.settings.max_body)
                call = handling.with_body(call, body, req.content_type)
            reply = await run_async(
                self.store, self.endpoint.build(self.settings, call)
            )
        except DambaError as error:
            await self._record_rejection(call, error)
            errors.render_damba_error(resp, error)
            return
        handling.render_reply(resp, self.endpoint, reply)

    async def _record_rejection(self, call: Call, error: DambaError) -> None:
        """Append the error event for a request rejected before its operation ran."""
        operation = handling.rejection(self.endpoint, call, error)
        if operation is None:
            return
        try:
            await run_async(self.store, operation)
        except DambaError as failure:
            if failure is not error:
                handling.log_unrecorded(self.endpoint, error, failure)


class OpenAPIResource:
    def __init__(self, document: dict) -> None:
        self._body = orjson.dumps(document)

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


class StoreLifespan:
    """Middleware: close the store's Redis connections when the server shuts down."""

    def __init__(self, store: AsyncRedisStore) -> None:
        self.store = store

    async def process_shutdown(self, scope: dict, event: dict) -> None:
        await self.store.aclose()


def create_app(
    settings: Settings | None = None,
    store: AsyncRedisStore | None = None,
    dashboard: DashboardSettings | None = None,
) -> falcon.asgi.App:
    """Build the ASGI app; by default from the environment's settings."""
    if settings is None:
        settings = load_settings()
    if store is None:
        if not settings.redis_url:
            raise RuntimeError(
                "DAMBA_REDIS_URL is not set; start the app with `damba serve --asgi`, "
                "which provides a Redis, or set the variable."
            )
        url = settings.redis_url
        store = AsyncRedisStore(lambda: connect(settings, url), settings.key_prefix)

    app = falcon.asgi.App(
        middleware=[RequestLog(), StoreLifespan(store)],
        request_type=dashboard_asgi.StreamingRequest,
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(errors.serialize_http_error)
    app.add_error_handler(Exception, _unexpected_error_handler)
    app.add_error_handler(falcon.HTTPError, _http_error_handler)

    for endpoint in ENDPOINTS:
        app.add_route(
            API_PREFIX + endpoint.template, EndpointResource(endpoint, settings, store)
        )
    app.add_route(API_PREFIX + "/openapi.json", OpenAPIResource(openapi_document()))
    add_health_routes_asgi(app, settings, store)
    dashboard_asgi.add_routes(app, settings, store, dashboard)
    return app


async def _http_error_handler(req, resp, error: falcon.HTTPError, params) -> None:
    errors.render_http_error(req, resp, error)


async def _unexpected_error_handler(req, resp, error: Exception, params) -> None:
    errors.render_unexpected(req, resp, error)
