"""The dashboard's Falcon WSGI resources: thin shells over pages.py and reports.py.

``add_routes`` registers the pages at ``/``, the static files at
``/static``, the reports at ``/reports`` and the event stream at
``/api/v1/events/stream`` on an existing app.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import falcon

from damba import queries
from damba.config import Settings
from damba.dashboard import pages, reports
from damba.dashboard.config import DashboardSettings, load_dashboard_settings
from damba.dashboard.render import PAGE_HEADERS, render
from damba.dashboard.stream import (
    BUSY_RETRY_SECONDS,
    PAGE,
    STREAM_PATH,
    EventStream,
    block_ms,
    start_id,
    streams_busy,
)
from damba.driver import run
from damba.errors import DambaError
from damba.store.sync_store import RedisStore
from damba.web import errors
from damba.web.endpoints import API_PREFIX


STATIC_DIR = Path(__file__).parent / "static"

# Headers for a report file. A report's HTML is served in a sandbox: it may
# run its own scripts but, as a page of no origin, it cannot read the
# dashboard or call the API with the browser's credentials.
REPORT_FILE_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts allow-popups",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def wants_html(req: falcon.Request) -> bool:
    """Tell whether the client prefers an HTML page to JSON, as browsers do."""
    return req.client_prefers(("application/json", "text/html")) == "text/html"


def send_page(resp: falcon.Response, html: str, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_HTML
    resp.set_headers(PAGE_HEADERS)
    resp.text = html


def send_error(req: falcon.Request, resp: falcon.Response, error: DambaError) -> None:
    """Send ``error`` as an HTML page to a browser and as the API's JSON to anyone else."""
    if wants_html(req):
        template = "error_part.html" if req.get_param("part") == "live" else "error.html"
        send_page(resp, render(template, error=error), error.status)
    else:
        errors.render_damba_error(resp, error)


def page_template(req: falcon.Request, page: str) -> str:
    """Name the template of ``page``, or of its live part for ``?part=live``."""
    if req.get_param("part") == "live":
        return f"{page}_live.html"
    return f"{page}.html"


class PageResource:
    """Serves one page, or with ``?part=live`` only its live part."""

    def __init__(self, store: RedisStore, template: str, build) -> None:
        self.store = store
        self.template = template
        self.build = build

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        try:
            context = run(self.store, self.build(**params))
        except DambaError as error:
            send_error(req, resp, error)
            return
        send_page(resp, render(page_template(req, self.template), **context))


class ReportsResource:
    """Lists the report folders."""

    def __init__(self, dashboard: DashboardSettings) -> None:
        self.dashboard = dashboard

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        listed = reports.list_reports(self.dashboard.reports_dir)
        html = render(
            "reports.html", reports=listed, reports_dir=str(self.dashboard.reports_dir)
        )
        send_page(resp, html)


class ReportResource:
    """Shows one report folder: its summary and its files."""

    def __init__(self, dashboard: DashboardSettings) -> None:
        self.dashboard = dashboard

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        try:
            report = reports.open_report(self.dashboard.reports_dir, name)
        except DambaError as error:
            send_error(req, resp, error)
            return
        send_page(resp, render("report.html", report=report))


class ReportFileResource:
    """Serves one file of a report, read-only."""

    def __init__(self, dashboard: DashboardSettings) -> None:
        self.dashboard = dashboard

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str, path: str) -> None:
        try:
            target = reports.report_file(self.dashboard.reports_dir, name, path)
        except DambaError as error:
            send_error(req, resp, error)
            return
        resp.content_type = reports.content_type(target)
        resp.set_headers(REPORT_FILE_HEADERS)
        resp.set_stream(target.open("rb"), target.stat().st_size)


class FaviconResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPMovedPermanently("/static/favicon.svg")


def disconnect_probe(env: dict) -> Callable[[], bool]:
    """Return a check of whether the client has closed the connection.

    The check peeks at the client socket that gunicorn puts in the WSGI
    environ. Under another server it always returns False, so a closed
    connection shows only when a write fails.
    """
    sock = env.get("gunicorn.socket")
    if sock is None:
        return lambda: False

    def client_gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            # A readable socket with nothing to read has reached end of file.
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except (OSError, ValueError):
            return True

    return client_gone


def start_stream(resp: falcon.Response) -> None:
    """Set the headers of an event-stream response."""
    resp.content_type = "text/event-stream; charset=utf-8"
    resp.set_header("Cache-Control", "no-store")
    # Asks nginx and similar proxies to pass each event on at once.
    resp.set_header("X-Accel-Buffering", "no")


def send_stream_error(resp: falcon.Response, error: DambaError) -> None:
    """Send an error that ended an event stream before it started, as the API's JSON."""
    if error.code == "streams_busy":
        resp.set_header("Retry-After", str(BUSY_RETRY_SECONDS))
    errors.render_damba_error(resp, error)


class EventStreamResource:
    """Follows the event stream as server-sent events, from a given stream id.

    Each response occupies a worker thread until it ends, so a worker
    process serves at most ``stream_clients`` of them at once and rejects
    further ones with a 503 whose Retry-After header says when to retry.
    """

    def __init__(self, settings: Settings, store: RedisStore, dashboard: DashboardSettings):
        self.store = store
        self.seconds = dashboard.stream_seconds
        self.slots = threading.BoundedSemaphore(dashboard.stream_clients)
        self.stream_clients = dashboard.stream_clients
        self.block_ms = block_ms(settings.redis_timeout)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            self._start(req, resp)
        except DambaError as error:
            send_stream_error(resp, error)

    def _start(self, req: falcon.Request, resp: falcon.Response) -> None:
        after = start_id(req.get_header("Last-Event-ID"), req.get_param("after"))
        if not req.env.get("wsgi.multithread"):
            raise DambaError(
                "streams_unsupported",
                "This server runs single-threaded workers, which cannot hold an event "
                "stream open; serve with --threads 2 or more.",
            )
        if after is None:
            after = run(self.store, queries.last_event_id())["last_id"]
        if not self.slots.acquire(blocking=False):
            raise streams_busy(self.stream_clients)
        start_stream(resp)
        resp.stream = EventStream(
            self._follow, after, self.seconds, self.slots.release, disconnect_probe(req.env)
        )

    def _follow(self, after: str) -> dict:
        return run(self.store, queries.follow_events(after, PAGE, self.block_ms))


def add_routes(
    app: falcon.App,
    settings: Settings,
    store: RedisStore,
    dashboard: DashboardSettings | None = None,
) -> None:
    """Register the dashboard and the event stream on ``app``.

    ``dashboard`` defaults to the settings in the environment.
    """
    if dashboard is None:
        dashboard = load_dashboard_settings()
    app.add_route(
        "/", PageResource(store, "overview", lambda: pages.overview_page(settings.limits))
    )
    app.add_route("/routes/{rid}", PageResource(store, "route", pages.route_page))
    app.add_route("/sessions/{sid}", PageResource(store, "session", pages.session_page))
    app.add_route("/reports", ReportsResource(dashboard))
    app.add_route("/reports/{name}", ReportResource(dashboard))
    app.add_route("/reports/{name}/{path:path}", ReportFileResource(dashboard))
    app.add_route("/favicon.ico", FaviconResource())
    app.add_static_route("/static", str(STATIC_DIR))
    app.add_route(API_PREFIX + STREAM_PATH, EventStreamResource(settings, store, dashboard))
