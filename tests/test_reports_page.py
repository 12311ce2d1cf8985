"""The reports pages of both apps: listing report folders and serving their files read-only."""

from __future__ import annotations

import json
import os

import pytest
from falcon import testing

from damba.dashboard.config import DashboardSettings
from tests.helpers import dashboard_app

HTML = {"Accept": "text/html"}


@pytest.fixture
def reports_dir(tmp_path):
    root = tmp_path / "reports-out"
    run = root / "run-2026-01-01"
    (run / "tables").mkdir(parents=True)
    (run / "index.html").write_text("<h1>Run report</h1>", encoding="utf-8")
    (run / "summary.json").write_text(
        json.dumps({"sessions": 120, "p95_step_ms": 4.5, "ok": True, "by_route": {"a": 1}})
    )
    (run / "tables" / "steps.csv").write_text("step,count\n1,5\n", encoding="utf-8")
    (run / ".hidden").write_text("secret")
    (root / "empty-run").mkdir()
    (tmp_path / "outside.txt").write_text("outside the reports folder")
    return root


@pytest.fixture
def client(app_kind, settings, reports_dir, request):
    dashboard = DashboardSettings(reports_dir=reports_dir)
    return testing.TestClient(dashboard_app(app_kind, settings, request, dashboard))


def test_reports_list(client):
    """The reports page lists each report folder, its summary, and a link to open it."""
    page = client.simulate_get("/reports", headers=HTML)
    assert page.status_code == 200
    assert 'href="/reports/run-2026-01-01"' in page.text
    assert 'href="/reports/run-2026-01-01/index.html"' in page.text
    assert "p95_step_ms" in page.text
    assert "120" in page.text
    assert "by_route" not in page.text
    assert 'href="/reports/empty-run"' in page.text


def test_reports_missing_folder(app_kind, settings, tmp_path, request):
    """A reports folder that does not exist yet gives an empty list, not an error."""
    dashboard = DashboardSettings(reports_dir=tmp_path / "none")
    app = dashboard_app(app_kind, settings, request, dashboard)
    page = testing.TestClient(app).simulate_get("/reports", headers=HTML)
    assert page.status_code == 200
    assert "No reports in" in page.text


def test_report_page_files(client):
    """A report's page lists its files, hidden ones left out."""
    page = client.simulate_get("/reports/run-2026-01-01", headers=HTML)
    assert page.status_code == 200
    assert 'href="/reports/run-2026-01-01/tables/steps.csv"' in page.text
    assert "summary.json" in page.text
    assert ".hidden" not in page.text


def test_report_file_served(client):
    """A report's files are served with their media type; HTML runs in a sandbox."""
    index = client.simulate_get("/reports/run-2026-01-01/index.html")
    assert index.status_code == 200
    assert index.text == "<h1>Run report</h1>"
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["content-security-policy"].startswith("sandbox")
    table = client.simulate_get("/reports/run-2026-01-01/tables/steps.csv")
    assert table.status_code == 200
    assert table.headers["content-type"].startswith("text/csv")
    assert table.text == "step,count\n1,5\n"


def test_report_file_read_only(client):
    """Report files accept no writes."""
    result = client.simulate_post("/reports/run-2026-01-01/index.html", body="x")
    assert result.status_code == 405
    assert result.json["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "path",
    [
        "/reports/run-2026-01-01/../../outside.txt",
        "/reports/run-2026-01-01/%2e%2e/%2e%2e/outside.txt",
        "/reports/run-2026-01-01/tables/..%2f..%2f..%2foutside.txt",
        "/reports/run-2026-01-01/.hidden",
        "/reports/..",
        "/reports/run-2026-01-01/..%5c..%5coutside.txt",
    ],
)
def test_report_path_traversal(client, path):
    """A path that climbs out of the reports folder or names a hidden file is rejected."""
    result = client.simulate_get(path)
    assert result.status_code in (400, 404), result.text
    assert result.json["result"] == "error"
    assert "outside the reports folder" not in result.text
    assert "secret" not in result.text


def test_report_symlink_out(client, reports_dir, tmp_path):
    """A symbolic link inside a report that points out of the folder is not followed."""
    os.symlink(tmp_path / "outside.txt", reports_dir / "run-2026-01-01" / "link.txt")
    result = client.simulate_get("/reports/run-2026-01-01/link.txt")
    assert result.status_code == 404
    assert result.json["code"] == "unknown_report"
    page = client.simulate_get("/reports/run-2026-01-01", headers=HTML)
    assert "link.txt" not in page.text


def test_report_unknown(client):
    """An unknown report or file is a 404 with code unknown_report."""
    for path in ("/reports/nope", "/reports/run-2026-01-01/nope.csv"):
        result = client.simulate_get(path)
        assert result.status_code == 404
        assert result.json["code"] == "unknown_report"


def test_report_large_file(client, reports_dir):
    """A report file of several read chunks is served whole, with its length."""
    rows = "".join(f"{number},{number * 7}\n" for number in range(40_000))
    (reports_dir / "run-2026-01-01" / "tables" / "big.csv").write_text(rows)
    result = client.simulate_get("/reports/run-2026-01-01/tables/big.csv")
    assert result.status_code == 200
    assert len(rows) > 4 * 64 * 1024
    assert result.headers["content-length"] == str(len(rows))
    assert result.text == rows
