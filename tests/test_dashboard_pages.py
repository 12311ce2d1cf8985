"""Dashboard pages, rendered by the WSGI and the ASGI app against a real Redis."""

from __future__ import annotations

import re

import falcon.inspect
import pytest
from falcon import testing

from damba.dashboard.config import DashboardSettings, load_dashboard_settings
from damba.keys import hash_key
from damba import wsgi
from tests.helpers import add_route, dashboard_app, join, register

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def reports_dir(tmp_path):
    return tmp_path / "reports"


@pytest.fixture
def client(app_kind, settings, reports_dir, request):
    dashboard = DashboardSettings(reports_dir=reports_dir)
    return testing.TestClient(dashboard_app(app_kind, settings, request, dashboard))


def _step(client, key, rid):
    result = client.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}")
    assert result.status_code == 200, result.json
    return result.json


def _page(client, path):
    result = client.simulate_get(path, headers=HTML)
    assert result.status_code == 200, result.text
    assert result.headers["content-type"].startswith("text/html")
    return result.text


def test_overview_lists_everything(client):
    """The overview shows counts against limits, routes, sessions and recent events."""
    key = register(client, "alice")
    rid = add_route(client, key)
    sid = join(client, key, rid)
    _step(client, key, rid)
    page = _page(client, "/")
    assert re.search(r'participants</div>\s*<div class="meter-value">1<span class="of"> / 10', page)
    assert f'href="/routes/{rid}"' in page
    assert f'href="/sessions/{sid}"' in page
    assert "1 of 2" in page
    assert "check stock" in page
    assert 'class="badge ev-stepsess"' in page
    assert 'id="live" data-live-url="/?part=live"' in page


def test_overview_records_newest_event(client, store):
    """The overview starts its live updates after the newest event it shows."""
    key = register(client)
    add_route(client, key)
    newest = store.client.xrevrange(store.stream, count=1)[0][0]
    assert f'data-after="{newest}"' in _page(client, "/")


def test_overview_empty_service(client):
    """An empty service gets an overview with empty-state messages."""
    page = _page(client, "/")
    assert "No routes yet" in page
    assert "No session is running" in page
    assert 'data-after="0-0"' in page


def test_overview_live_part(client):
    """The live part is a fragment with the counts and tables, without the page around it."""
    key = register(client)
    add_route(client, key)
    part = _page(client, "/?part=live")
    assert "<html" not in part
    assert 'class="meters"' in part
    assert "<h2>Routes</h2>" in part


def test_route_page_flow(client):
    """A route's page draws START, each STEP and STOP, with the sessions on each step."""
    alice, bob = register(client, "alice"), register(client, "bob")
    rid = add_route(client, alice)
    join(client, alice, rid)
    join(client, bob, rid)
    _step(client, bob, rid)
    page = _page(client, f"/routes/{rid}")
    assert "<svg" in page
    nodes = re.findall(r'<g class="node node-(\w+)[^"]*" data-step="(\d+)" data-active="(\d+)"', page)
    assert nodes == [("start", "0", "1"), ("step", "1", "1"), ("step", "2", "0"), ("stop", "999", "0")]
    assert "START order" in page
    assert "2. take payment" in page
    assert "STEP check stock" in page


def test_route_page_live_part(client):
    """A route's live part contains the flow, and the page watches that route's events."""
    key = register(client)
    rid = add_route(client, key)
    assert f'data-rid="{rid}"' in _page(client, f"/routes/{rid}")
    part = _page(client, f"/routes/{rid}?part=live")
    assert "<svg" in part
    assert "<html" not in part


def test_session_page_running(client):
    """A running session's page marks its step as current and lists its trace."""
    key = register(client, "alice")
    rid = add_route(client, key)
    sid = join(client, key, rid)
    _step(client, key, rid)
    page = _page(client, f"/sessions/{sid}")
    states = re.findall(r'<g class="node node-\w+ state-(\w+)"', page)
    assert states == ["reached", "current", "pending", "pending"]
    assert "◀ here" in page
    assert page.count("<tr>") >= 3
    assert "run by alice" in page


def test_session_page_finished(client):
    """A finished session's page shows every node reached and STOP finished."""
    key = register(client)
    rid = add_route(client, key)
    sid = join(client, key, rid)
    for _ in range(3):
        _step(client, key, rid)
    page = _page(client, f"/sessions/{sid}")
    states = re.findall(r'<g class="node node-\w+ state-(\w+)"', page)
    assert states == ["reached", "reached", "reached", "finished"]
    assert "status-finished" in page
    assert "reached STOP" in page


def test_session_page_stopped(client):
    """A stopped session's page marks the step it stopped at and skips the rest."""
    key = register(client)
    rid = add_route(client, key)
    sid = join(client, key, rid)
    _step(client, key, rid)
    assert client.simulate_post(f"/api/v1/stop/uid/{key}/route/{rid}").status_code == 200
    page = _page(client, f"/sessions/{sid}")
    states = re.findall(r'<g class="node node-\w+ state-(\w+)"', page)
    assert states == ["reached", "stopped", "skipped", "skipped"]
    assert "at 1 of 2" in page


def test_session_page_after_route_deleted(client):
    """A session's page still draws its route after the route is deleted."""
    key = register(client)
    rid = add_route(client, key)
    sid = join(client, key, rid)
    assert client.simulate_post(f"/api/v1/delroute/uid/{key}/route/{rid}").status_code == 200
    page = _page(client, f"/sessions/{sid}")
    assert "1. check stock" in page
    assert "status-stopped" in page


@pytest.mark.parametrize(
    "path,status,code",
    [
        ("/routes/r000000000000", 404, "unknown_route"),
        ("/routes/nonsense", 400, "invalid_id"),
        ("/sessions/s0000000000000000", 404, "unknown_session"),
        ("/sessions/x", 400, "invalid_id"),
    ],
)
def test_page_errors(client, path, status, code):
    """A bad id gets an HTML error page in a browser and the API's JSON otherwise."""
    page = client.simulate_get(path, headers=HTML)
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert f"code {code}" in page.text
    data = client.simulate_get(path)
    assert data.status_code == status
    assert data.json["result"] == "error"
    assert data.json["code"] == code


def test_pages_never_show_keys(client, reports_dir):
    """No page, part or link the dashboard builds contains an access key or its hash."""
    key = register(client, "alice")
    rid = add_route(client, key)
    sid = join(client, key, rid)
    _step(client, key, rid)
    client.simulate_post(f"/api/v1/step/uid/{key}/route/r000000000000")
    (reports_dir / "run1").mkdir(parents=True)
    (reports_dir / "run1" / "index.html").write_text("<p>report</p>")
    paths = [
        "/", "/?part=live", f"/routes/{rid}", f"/routes/{rid}?part=live",
        f"/sessions/{sid}", f"/sessions/{sid}?part=live", "/reports", "/reports/run1",
    ]
    for path in paths:
        page = _page(client, path)
        assert key not in page, path
        assert hash_key(key) not in page, path


def test_pages_fetch_nothing_external(client):
    """Pages load scripts, styles and images from this server alone, under a strict policy."""
    key = register(client)
    rid = add_route(client, key)
    result = client.simulate_get(f"/routes/{rid}", headers=HTML)
    policy = result.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    sources = re.findall(r'(?:src|href)="([^"]+)"', result.text)
    assert sources
    assert all(source.startswith("/") for source in sources), sources
    assert "<script>" not in result.text
    assert ' style="' not in result.text


@pytest.mark.parametrize(
    "name,kind", [("dashboard.css", "text/css"), ("dashboard.js", "javascript"),
                  ("favicon.svg", "image/svg+xml")],
)
def test_static_files(client, name, kind):
    """The stylesheet, the script and the icon ship in the package and are served."""
    result = client.simulate_get(f"/static/{name}")
    assert result.status_code == 200
    assert kind in result.headers["content-type"]
    assert len(result.content) > 100


def test_openapi_lists_api_routes(client):
    """Every route the app serves under /api/v1, the event stream included, is documented."""
    document = client.simulate_get("/api/v1/openapi.json").json
    served = {route.path for route in falcon.inspect.inspect_routes(client.app)}
    api_paths = {path for path in served if path.startswith("/api/v1/")}
    assert "/api/v1/events/stream" in api_paths
    assert api_paths <= set(document["paths"])
    assert "Last-Event-ID" in str(document["paths"]["/api/v1/events/stream"])


def test_dashboard_settings_from_env():
    """The reports folder and stream limits come from the environment, with defaults."""
    defaults = load_dashboard_settings({})
    assert str(defaults.reports_dir) == "reports-out"
    assert defaults.stream_seconds == 240
    assert defaults.stream_clients == 2
    custom = load_dashboard_settings(
        {"DAMBA_REPORTS_DIR": "/srv/reports", "DAMBA_STREAM_SECONDS": "30",
         "DAMBA_STREAM_CLIENTS": "5"}
    )
    assert str(custom.reports_dir) == "/srv/reports"
    assert custom.stream_seconds == 30
    assert custom.stream_clients == 5


def test_stream_rejects_bad_id(client):
    """The event stream rejects a malformed start id with the API's JSON error."""
    result = client.simulate_get("/api/v1/events/stream", params={"after": "yesterday"})
    assert result.status_code == 400
    assert result.json["code"] == "invalid_query"
    header = client.simulate_get("/api/v1/events/stream", headers={"Last-Event-ID": "x"})
    assert header.status_code == 400
    assert "Last-Event-ID" in header.json["desc"]


def test_stream_needs_threads(settings, store):
    """A single-threaded WSGI server rejects the event stream rather than block its worker."""
    client = testing.TestClient(wsgi.create_app(settings, store, DashboardSettings()))
    result = client.simulate_get("/api/v1/events/stream")
    assert result.status_code == 503
    assert result.json["code"] == "streams_unsupported"
