"""The dashboard in a real headless Chromium, driven by Playwright.

Playwright drives Debian's /usr/bin/chromium and never downloads a browser.
Each test saves screenshots to test-artifacts/ for a person to review.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from tests.servers import running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Milliseconds Playwright waits for a page to show what a test expects.
EXPECT_TIMEOUT = 20_000
ROUTE_TEXT = "START order\nSTEP check stock\nSTEP take payment\nSTOP\n"

if not CHROMIUM.exists():
    # CI installs chromium in .ci/run, so there a missing browser is a failure.
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing; install it with apt-get install chromium.")
    pytest.skip(f"{CHROMIUM} is missing; apt-get install chromium", allow_module_level=True)

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def server(app_kind, redis_url, key_prefix, tmp_path):
    reports = tmp_path / "reports-out"
    (reports / "run-1").mkdir(parents=True)
    (reports / "run-1" / "index.html").write_text("<h1>Run 1</h1>")
    (reports / "run-1" / "summary.json").write_text('{"sessions": 3, "finished": 1}')
    env = {"DAMBA_REPORTS_DIR": str(reports)}
    with running_server(redis_url, key_prefix, tmp_path, env, kind=app_kind) as server:
        yield server


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def _post(server, path: str, **options) -> dict:
    reply = requests.post(f"{server.url}/api/v1{path}", timeout=30, **options)
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def _shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_overview_updates_live(server, browser):
    """The overview shows a session created through the API and follows its steps live."""
    key = _post(server, "/user/addme?name=alice")["uid"]
    rid = _post(server, f"/addroute/uid/{key}", data=ROUTE_TEXT,
                headers={"Content-Type": "text/plain"})["rid"]
    sid = _post(server, f"/join/uid/{key}/route/{rid}")["sid"]
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/")
    expect = playwright_api.expect
    row = page.locator(f'tr[data-sid="{sid}"]')
    expect(row).to_contain_text("START", timeout=EXPECT_TIMEOUT)
    expect(page.locator("#live-status")).to_have_text("live", timeout=EXPECT_TIMEOUT)

    _post(server, f"/step/uid/{key}/route/{rid}")
    expect(row).to_contain_text("1 of 2", timeout=EXPECT_TIMEOUT)
    expect(row).to_contain_text("check stock", timeout=EXPECT_TIMEOUT)
    expect(page.locator("#events-body tr").first).to_contain_text(
        "Moved to step 1 of 2", timeout=EXPECT_TIMEOUT
    )
    _shoot(page, "overview")

    _post(server, f"/step/uid/{key}/route/{rid}")
    _post(server, f"/step/uid/{key}/route/{rid}")
    expect(row).to_have_count(0, timeout=EXPECT_TIMEOUT)
    expect(page.locator("#live")).to_contain_text("No session is running",
                                                  timeout=EXPECT_TIMEOUT)
    assert key not in page.content()
    assert errors == []


def test_route_and_session_pages(server, browser):
    """The route and session pages draw the flow and update when the session steps."""
    key = _post(server, "/user/addme?name=alice")["uid"]
    rid = _post(server, f"/addroute/uid/{key}", data=ROUTE_TEXT,
                headers={"Content-Type": "text/plain"})["rid"]
    sid = _post(server, f"/join/uid/{key}/route/{rid}")["sid"]
    expect = playwright_api.expect
    page = browser.new_page(viewport={"width": 1100, "height": 900})

    page.goto(f"{server.url}/routes/{rid}")
    start = page.locator('g.node-start')
    expect(start).to_have_attribute("data-active", "1", timeout=EXPECT_TIMEOUT)
    expect(page.locator("#live-status")).to_have_text("live", timeout=EXPECT_TIMEOUT)
    _post(server, f"/step/uid/{key}/route/{rid}")
    expect(page.locator('g[data-step="1"]')).to_have_attribute(
        "data-active", "1", timeout=EXPECT_TIMEOUT
    )
    expect(start).to_have_attribute("data-active", "0", timeout=EXPECT_TIMEOUT)
    _shoot(page, "route")

    page.goto(f"{server.url}/sessions/{sid}")
    current = page.locator("g.state-current")
    expect(current).to_have_attribute("data-step", "1", timeout=EXPECT_TIMEOUT)
    expect(page.locator("#live-status")).to_have_text("live", timeout=EXPECT_TIMEOUT)
    _post(server, f"/step/uid/{key}/session/{sid}")
    expect(current).to_have_attribute("data-step", "2", timeout=EXPECT_TIMEOUT)
    expect(page.locator("table.trace tbody tr")).to_have_count(3, timeout=EXPECT_TIMEOUT)
    _shoot(page, "session")


def test_reports_and_phone(server, browser):
    """The reports page opens a report, and the overview fits a phone's width."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(server.url + "/reports")
    playwright_api.expect(page.locator("ul.reports li")).to_have_count(1)
    _shoot(page, "reports")
    page.click("text=open the report")
    playwright_api.expect(page.locator("h1")).to_have_text("Run 1")

    _post(server, "/user/addme?name=a-participant-with-a-long-name")
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.goto(server.url + "/")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    _shoot(phone, "overview-phone")
