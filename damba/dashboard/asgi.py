"""The dashboard's Falcon ASGI resources: thin shells over pages.py and reports.py.

It mirrors ``damba.dashboard.wsgi`` name for name and reuses its response
helpers, which work on both apps' request and response types. ``add_routes``
registers the pages at ``/``, the static files at ``/static``, the reports
at ``/reports`` and the event stream at ``/api/v1/events/stream`` on an
existing app. The app must be built with ``request_type=StreamingRequest``
for an event stream to end as soon as its client disconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import falcon
import falcon.asgi

from damba import queries
from damba.config import Settings
from damba.dashboard import pages, reports
from damba.dashboard.config import DashboardSettings, load_dashboard_settings
from damba.dashboard.render import render
from damba.dashboard.stream import (
    PAGE,
    STREAM_PATH,
    AsyncEventStream,
    block_ms,
    never,
    start_id,
    streams_busy,
)
from damba.dashboard.wsgi import (
    REPORT_FILE_HEADERS,
    STATIC_DIR,
    page_template,
    send_error,
    send_page,
    send_stream_error,
    start_stream,
)
from damba.driver import run_async
from damba.errors import DambaError
from damba.store.async_store import AsyncRedisStore
from damba.web.endpoints import API_PREFIX


# Bytes read from a report file at a time, in a worker thread.
FILE_CHUNK = 64 * 1024


class StreamingRequest(falcon.asgi.Request):
    """An ASGI request that keeps the server's ``receive`` callable.

    Once the request body has been read, ``receive`` returns only when the
    client disconnects. A streaming response waits on it to learn that its
    client has gone, because uvicorn's ``send`` (0.54) does nothing after a
    disconnect and raises no error.
    """

    def __init__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        first_event: dict[str, Any] | None = None,
        options: falcon.RequestOptions | None = None,
    ) -> None:
        super().__init__(scope, receive, first_event, options)
        self.asgi_receive = receive


def disconnect_waiter(req: falcon.asgi.Request) -> Callable[[], Awaitable[None]]:
    """Return a coroutine function that returns once the client has disconnected.

    A request of another type than StreamingRequest gives one that never
    returns, so its stream ends only after DAMBA_STREAM_SECONDS.
    """
    receive = getattr(req, "asgi_receive", None)
    if receive is None:
        return never

    async def disconnected() -> None:
        # The stream needs no request body, so any body parts the client
        # still sends are skipped until the disconnect message.
        while (await receive())["type"] != "http.disconnect":
            pass

    return disconnected


class PageResource:
    """Serves one page, or with ``?part=live`` only its live part."""

    def __init__(self, store: AsyncRedisStore, template: str, build) -> None:
        self.store = store
        self.template = template
        self.build = build

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: str
    ) -> None:
        try:
            context = await run_async(self.store, self.build(**params))
        except DambaError as error:
            send_error(req, resp, error)
            return
        send_page(resp, render(page_template(req, self.template), **context))


class ReportsResource:
    """Lists the report folders."""

    def __init__(self, dashboard: DashboardSettings) -> None:
        self.dashboard = dashboard

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        folder = self.dashboard.reports_dir
        listed = await asyncio.to_thread(reports.list_reports, folder)
        html = render(
            "reports.html", reports=listed, reports_dir=str(self.dashboard.reports_dir)
        )
        send_page(resp, html)


class ReportResource:
    """Shows one report folder: its summary and its files."""

    def __init__(self, dashboard: DashboardSettings) -> None:
        self.dashboard = dashboard

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str
    ) -> None:
        try:
            report = await asyncio.to_thread(
                reports.open_report, self.dashboard.reports_dir, name
            )
        except DambaError as error:
            send_error(req, resp, error)
            return
        send_page(resp, render("report.html", report=report))


async def read_chunks(path: Path) -> AsyncIterator[bytes]:
    """Yield the bytes of the file at ``path``, read in a worker thread."""
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, FILE_CHUNK):
            yield chunk


class ReportFileResource:
    """Serves one file of a report, read-only."""

    def __init__(self, dashboard: DashboardSettings) -> None:
        self.dashboard = dashboard

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str, path: str
    ) -> None:
        try:
            target = await asyncio.to_thread(
                reports.report_file, self.dashboard.reports_dir, name, path
            )
        except DambaError as error:
            send_error(req, resp, error)
            return
        resp.content_type = reports.content_type(target)
        resp.set_headers(REPORT_FILE_HEADERS)
        resp.set_stream(read_chunks(target), target.stat().st_size)


class FaviconResource:
    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        raise falcon.HTTPMovedPermanently("/static/favicon.svg")


class EventStreamResource:
    """Follows the event stream as server-sent events, from a given stream id.

    Each response waits in XREAD BLOCK on one of the worker's pooled Redis
    connections for its whole life, so a worker process serves at most
    ``stream_clients`` of them at once, which leaves the pool to the API. It
    rejects further ones with a 503 whose Retry-After header says when to
    retry, as the WSGI app does.
    """

    def __init__(
        self, settings: Settings, store: AsyncRedisStore, dashboard: DashboardSettings
    ):
        self.store = store
        self.seconds = dashboard.stream_seconds
        self.stream_clients = dashboard.stream_clients
        # One event loop serves every request of a worker, so a plain count
        # of open streams needs no lock.
        self.open_streams = 0
        self.block_ms = block_ms(settings.redis_timeout)

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        try:
            await self._start(req, resp)
        except DambaError as error:
            send_stream_error(resp, error)

    async def _start(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        after = start_id(req.get_header("Last-Event-ID"), req.get_param("after"))
        if after is None:
            after = (await run_async(self.store, queries.last_event_id()))["last_id"]
        if self.open_streams >= self.stream_clients:
            raise streams_busy(self.stream_clients)
        self.open_streams += 1
        start_stream(resp)
        resp.stream = AsyncEventStream(
            self._follow, after, self.seconds, self._release, disconnect_waiter(req)
        )

    def _release(self) -> None:
        self.open_streams -= 1

    async def _follow(self, after: str) -> dict:
        operation = queries.follow_events(after, PAGE, self.block_ms)
        return await run_async(self.store, operation)


def add_routes(
    app: falcon.asgi.App,
    settings: Settings,
    store: AsyncRedisStore,
    dashboard: DashboardSettings | None = None,
) -> None:
    """Register the dashboard and the event stream on ``app``.

    ``dashboard`` defaults to the settings in the environment.
    """
    if dashboard is None:
        dashboard = load_dashboard_settings()
    overview = PageResource(
        store, "overview", lambda: pages.overview_page(settings.limits)
    )
    app.add_route("/", overview)
    app.add_route("/routes/{rid}", PageResource(store, "route", pages.route_page))
    app.add_route("/sessions/{sid}", PageResource(store, "session", pages.session_page))
    app.add_route("/reports", ReportsResource(dashboard))
    app.add_route("/reports/{name}", ReportResource(dashboard))
    app.add_route("/reports/{name}/{path:path}", ReportFileResource(dashboard))
    app.add_route("/favicon.ico", FaviconResource())
    app.add_static_route("/static", str(STATIC_DIR))
    stream = EventStreamResource(settings, store, dashboard)
    app.add_route(API_PREFIX + STREAM_PATH, stream)
