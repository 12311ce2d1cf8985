"""Health endpoints for docker-compose and Kubernetes probes.

``GET /healthz`` is liveness. It replies from the process alone, without a
Redis call, so a Redis outage never gets a healthy process restarted.
``GET /readyz`` is readiness. It returns 200 when Redis responds and the
event stream exists and begins with its init event. Both return JSON, and
a failed readiness check returns the API's error shape with status 503.

Readiness checks the stream rather than comparing the read models with it
because the read models cannot fall behind the stream: the commit script
appends each event and applies its projection in one atomic Lua script. The
read models are therefore caught up whenever the stream is open.
NOTE: ``damba rebuild`` empties the read models for a moment before it
writes the replayed ones, and this check does not see that window.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import falcon
import orjson

from damba import __version__
from damba.config import Settings
from damba.driver import run, run_async
from damba.errors import DambaError
from damba.events import INIT
from damba.protocol import Operation, Read, ReadEvents
from damba.web import errors

log = logging.getLogger("damba.health")

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"


def liveness() -> dict[str, Any]:
    """Build the liveness reply, which needs nothing but the running process."""
    return {
        "result": "ok",
        "desc": "The process is serving requests.",
        "status": "alive",
        "version": __version__,
        "pid": os.getpid(),
    }


def readiness(stream_key: str) -> Operation:
    """Check that the stream exists and that its first event is ``init``.

    A store error raises ``store_unavailable``, and a missing or foreign
    stream raises ``not_ready``. It only reads, so it appends no event.
    """
    first = yield ReadEvents(after="-", count=1)
    if not first:
        raise DambaError(
            "not_ready",
            f"The event stream {stream_key} does not exist, so there is nothing to "
            f"serve; restart the service, which opens the stream, or restore the "
            f"Redis data.",
        )
    if first[0].event != INIT:
        raise DambaError(
            "not_ready",
            f"The event stream {stream_key} begins with a {first[0].event!r} event "
            f"instead of init, so Damba did not open it; check DAMBA_KEY_PREFIX.",
        )

    last = yield ReadEvents(after="+", count=1, reverse=True)
    snapshot = yield Read(stream_length=True)
    return {
        "desc": "The event store answers and the event stream is open.",
        "status": "ready",
        "stream": {
            "key": stream_key,
            "length": snapshot.stream_length,
            "first_id": first[0].id,
            "last_id": last[0].id if last else first[0].id,
        },
    }


class LivenessResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(liveness())

    on_head = on_get


class ReadinessResource:
    """Runs the readiness check and logs each change between ready and not."""

    def __init__(self, settings: Settings, store) -> None:
        self.settings = settings
        self.store = store
        # None until the first probe. Probes repeat every few seconds, so only
        # a change of state is logged, not every failed probe.
        self._ready: bool | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            reply = run(self.store, readiness(self.settings.stream_key))
        except DambaError as error:
            self.render_not_ready(resp, error)
            return
        self.render_ready(resp, reply)

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)

    def render_not_ready(self, resp: falcon.Response, error: DambaError) -> None:
        if self._ready is not False:
            log.warning("not ready (%s): %s", error.code, error.message)
        self._ready = False
        errors.render_damba_error(resp, error)

    def render_ready(self, resp: falcon.Response, reply: dict[str, Any]) -> None:
        if self._ready is not True:
            log.info("ready: event stream %s is open", self.settings.stream_key)
        self._ready = True
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps({"result": "ok", **reply})


class AsyncLivenessResource:
    async def on_get(self, req, resp) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(liveness())

    on_head = on_get


class AsyncReadinessResource(ReadinessResource):
    """The readiness check for the ASGI app, through the asyncio driver."""

    async def on_get(self, req, resp) -> None:
        try:
            reply = await run_async(self.store, readiness(self.settings.stream_key))
        except DambaError as error:
            self.render_not_ready(resp, error)
            return
        self.render_ready(resp, reply)

    async def on_head(self, req, resp) -> None:
        await self.on_get(req, resp)


def add_health_routes_asgi(app, settings: Settings, store) -> None:
    """Add ``/healthz`` and ``/readyz`` to an ASGI ``app``."""
    app.add_route(LIVENESS_PATH, AsyncLivenessResource())
    app.add_route(READINESS_PATH, AsyncReadinessResource(settings, store))


def add_health_routes(app: falcon.App, settings: Settings, store) -> None:
    """Add ``/healthz`` and ``/readyz`` to ``app``, outside the versioned API."""
    app.add_route(LIVENESS_PATH, LivenessResource())
    app.add_route(READINESS_PATH, ReadinessResource(settings, store))


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
        },
    }


def openapi_paths() -> dict[str, Any]:
    """Describe the two health endpoints as OpenAPI 3 path items."""
    return {
        LIVENESS_PATH: {
            "get": {
                "summary": "Liveness: the process answers; no Redis call.",
                "operationId": "get_healthz",
                "tags": ["health"],
                "responses": {"200": _json_response("The process is alive", "Ok")},
            }
        },
        READINESS_PATH: {
            "get": {
                "summary": "Readiness: Redis answers and the event stream is open.",
                "operationId": "get_readyz",
                "tags": ["health"],
                "responses": {
                    "200": _json_response("Ready to serve the API", "Ok"),
                    "503": _json_response(
                        "Not ready: code not_ready or store_unavailable", "Error"
                    ),
                },
            }
        },
    }
