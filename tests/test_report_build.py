"""``damba report`` end to end against a real Redis: files, privacy, errors."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from damba.cli import main
from damba.config import Settings
from damba.store.sync_store import connect
from damba.keys import hash_key
from tests.helpers import add_route, join, register
from reports.build import build_report, new_folder
from reports.locust import read_locust_csv
from reports.stream import ReportError, inspect_stream, read_pages

LOCUST_STATS = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,\
50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
POST,/join/uid/[key]/route/[rid],120,2,4,5.5,1,96,180.0,4.0,0.07,4,5,5,6,9,14,20,30,96,96,96
GET,/info,10,0,2,2.4,1,8,310.0,0.3,0.0,2,2,3,3,4,8,8,8,8,8,8
,Aggregated,130,2,4,5.3,1,96,190.0,4.3,0.07,4,5,5,6,9,13,20,30,96,96,96
"""
LOCUST_FAILURES = """\
Method,Name,Error,Occurrences
POST,/join/uid/[key]/route/[rid],"expected HTTP 201, got HTTP 409 session_active",2
"""


def drive(api) -> list[str]:
    """Run a little of everything through the API; return the access keys used."""
    olga = register(api, "Ольга")
    jurgen = register(api, "Jürgen")
    rid = add_route(api, olga)
    sid = join(api, olga, rid)
    for _ in range(3):
        assert api.simulate_post(f"/api/v1/step/uid/{olga}/session/{sid}").status_code == 200
    join(api, jurgen, rid)
    assert api.simulate_post(f"/api/v1/stop/uid/{jurgen}/route/{rid}").status_code == 200
    # A deliberate wrong move, which the stream records as an error event.
    assert api.simulate_post(f"/api/v1/step/uid/{olga}/session/{sid}").status_code == 409
    return [olga, jurgen]


def test_report_counts_sessions(api, redis_client, settings, tmp_path):
    """A report of a stream written through the API counts its sessions."""
    drive(api)
    report = build_report(redis_client, settings.stream_key, tmp_path / "out")
    sessions = report.summary["sessions"]
    assert sessions["started"] == 2
    assert sessions["finished"] == 1
    assert sessions["stopped"] == 1
    assert report.summary["errors_by_code"] == {"session_ended": 1}
    assert report.summary["participants"] == 2
    assert report.summary["stream"] == settings.stream_key


def test_report_writes_all_files(api, redis_client, settings, tmp_path):
    """The folder contains the page, a CSV file per table and the summary."""
    drive(api)
    report = build_report(redis_client, settings.stream_key, tmp_path / "out")
    names = {path.name for path in report.folder.iterdir()}
    assert names == {
        "report.html", "summary.json", "events.csv", "sessions.csv",
        "session_durations.csv", "routes.csv", "step_times.csv",
        "step_times_by_number.csv", "events_per_second.csv", "active_sessions.csv",
        "errors.csv", "participants.csv",
    }
    summary = json.loads((report.folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["events"] == report.summary["events"]
    participants = (report.folder / "participants.csv").read_text(encoding="utf-8")
    assert "Ольга" in participants


def test_report_hides_keys(api, redis_client, settings, tmp_path):
    """No file of the report contains an access key or a uid hash."""
    keys = drive(api)
    report = build_report(redis_client, settings.stream_key, tmp_path / "out")
    secrets = keys + [hash_key(key) for key in keys] + [hash_key(key)[:16] for key in keys]
    for path in report.folder.iterdir():
        text = path.read_text(encoding="utf-8")
        for secret in secrets:
            assert secret not in text, f"{path.name} contains a key or uid hash"


def test_report_page_self_contained(api, redis_client, settings, tmp_path):
    """The page embeds its charts and loads nothing from elsewhere."""
    drive(api)
    page = build_report(redis_client, settings.stream_key, tmp_path / "out").page
    text = page.read_text(encoding="utf-8")
    assert text.count('<img src="data:image/png;base64,') >= 5
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script" not in text
    assert "<link" not in text


def test_report_escapes_names(api, redis_client, settings, tmp_path):
    """A participant's name is shown as text, never as markup."""
    key = register(api)
    name = "<b>Bold</b> & co"
    result = api.simulate_post("/api/v1/user/addme", json={"name": name})
    assert result.status_code == 201
    join(api, key, add_route(api, key))
    text = build_report(redis_client, settings.stream_key, tmp_path / "out").page.read_text(
        encoding="utf-8")
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in text
    assert "<b>Bold</b>" not in text


def test_report_with_locust_csv(api, redis_client, settings, tmp_path):
    """Locust's CSV files add the request latencies and failures."""
    drive(api)
    (tmp_path / "run_stats.csv").write_text(LOCUST_STATS, encoding="utf-8")
    (tmp_path / "run_failures.csv").write_text(LOCUST_FAILURES, encoding="utf-8")
    report = build_report(redis_client, settings.stream_key, tmp_path / "out",
                          locust_prefix=str(tmp_path / "run"))
    assert report.summary["locust"]["requests"] == 130
    assert report.summary["locust"]["failures"] == 2
    assert report.summary["locust"]["p99"] == 30.0
    assert (report.folder / "locust_requests.csv").exists()
    text = report.page.read_text(encoding="utf-8")
    assert "as Locust measured them" in text
    assert "session_active" in text


def test_locust_csv_tables(tmp_path):
    """The Aggregated row becomes the total and leaves the request table."""
    (tmp_path / "run_stats.csv").write_text(LOCUST_STATS, encoding="utf-8")
    (tmp_path / "run_failures.csv").write_text(LOCUST_FAILURES, encoding="utf-8")
    stats = read_locust_csv(tmp_path / "run")
    assert list(stats.requests["name"]) == ["/join/uid/[key]/route/[rid]", "/info"]
    assert list(stats.requests["p90"]) == [9, 4]
    assert stats.total["requests"] == 130
    assert stats.total["p50"] == 4.0
    assert stats.failures["occurrences"].sum() == 2


def test_locust_csv_missing(tmp_path):
    """A wrong Locust prefix names the file it looked for."""
    with pytest.raises(ReportError, match="run_stats.csv"):
        read_locust_csv(tmp_path / "run")


# ---------------------------------------------------------------- reading


def test_empty_stream_rejected(redis_client, settings):
    """A prefix with no stream gets an error that states what to do."""
    with pytest.raises(ReportError, match="empty or missing.*DAMBA_KEY_PREFIX"):
        inspect_stream(redis_client, settings.stream_key)


def test_wrong_key_type_rejected(redis_client, settings):
    """A key of another type than a stream is named in the error."""
    redis_client.set(settings.stream_key, "not a stream")
    with pytest.raises(ReportError, match="is a Redis string, not a stream"):
        inspect_stream(redis_client, settings.stream_key)


def test_unreachable_store_rejected():
    """A Redis that refuses connections gets an error naming DAMBA_REDIS_URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = connect(Settings(), f"redis://127.0.0.1:{port}")
    with pytest.raises(ReportError, match="unreachable.*DAMBA_REDIS_URL"):
        inspect_stream(client, "damba:events")


def test_pages_stop_at_last_entry(redis_client, settings):
    """Pages hold at most page_size entries and end where the stream ended at the start."""
    for number in range(25):
        redis_client.xadd(settings.stream_key, {"event": "init", "n": str(number)})
    info = inspect_stream(redis_client, settings.stream_key)
    for number in range(5):
        redis_client.xadd(settings.stream_key, {"event": "init", "n": f"late {number}"})
    pages = list(read_pages(redis_client, info, page_size=10, progress=False))
    assert [len(page) for page in pages] == [10, 10, 5]
    assert pages[-1][-1][1]["n"] == "24"


def test_progress_bar_on_request(redis_client, settings, capsys):
    """progress=True draws a progress bar on standard error."""
    for number in range(30):
        redis_client.xadd(settings.stream_key, {"event": "init"})
    info = inspect_stream(redis_client, settings.stream_key)
    list(read_pages(redis_client, info, page_size=10, progress=True))
    assert "Reading events" in capsys.readouterr().err


def test_new_folder_unique(tmp_path):
    """Two reports in the same second get two folders."""
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    first = new_folder(tmp_path, now)
    second = new_folder(tmp_path, now)
    assert first.name == "20250301-120000"
    assert second.name == "20250301-120000-2"


# ---------------------------------------------------------------- command line


def test_cli_report(api, settings, tmp_path):
    """`damba report` writes the report and prints where it is."""
    drive(api)
    env = {"DAMBA_REDIS_URL": settings.redis_url, "DAMBA_KEY_PREFIX": settings.key_prefix}
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "out")], env=env)
    assert result.exit_code == 0, result.output
    assert "2 sessions started, 1 finished, 1 stopped" in result.output
    assert str(tmp_path / "out" / "report.html") in result.output
    assert (tmp_path / "out" / "report.html").exists()


def test_cli_report_empty_stream(settings, tmp_path):
    """`damba report` on an empty prefix exits 1 with the reason."""
    env = {"DAMBA_REDIS_URL": settings.redis_url, "DAMBA_KEY_PREFIX": settings.key_prefix}
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "out")], env=env)
    assert result.exit_code == 1
    assert "empty or missing" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_report_needs_redis_url(tmp_path):
    """Without DAMBA_REDIS_URL, `damba report` names the variable to set."""
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "out")],
                                env={"DAMBA_REDIS_URL": ""})
    assert result.exit_code == 2
    assert "DAMBA_REDIS_URL" in result.output
