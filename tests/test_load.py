"""A short, bounded headless Locust run against a real ``damba serve``, then its report.

The server is a separate process on a free loopback port with its own key
prefix, started with the load profile and stopped by its PID. Locust runs
20 participants for 5 seconds; --stop-timeout lets every walk in progress
finish, so each session Locust saw finish is in the stream as finished.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import requests

from reports.build import build_report
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
# Codes the locustfile's participants meet on purpose, or when another
# participant deletes a route they are walking.
EXPECTED_CODES = {"session_ended", "session_active", "no_active_session", "unknown_route"}


def wait_until_serving(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"damba serve exited:\n{log.read_text()[-3000:]}"
        try:
            if requests.get(f"{url}/api/v1/info", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"damba serve did not respond within 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def server(redis_url, key_prefix, tmp_path):
    """Start `damba serve --profile load` on a free port; yield its base URL."""
    port = free_port()
    # The profile sets only the limits the environment leaves unset.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("DAMBA_")}
    env.update(DAMBA_REDIS_URL=redis_url, DAMBA_KEY_PREFIX=key_prefix)
    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "damba", "serve", "--profile", "load", "--port",
             str(port), "--workers", "1", "--threads", "8"],
            env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, url, log)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_locust(url: str, folder: Path) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
        "--host", url, "--users", "20", "--spawn-rate", "20", "--run-time", "5s",
        "--stop-timeout", "60", "--csv", str(folder / "locust"), "--only-summary",
        "--think-min", "0.02", "--think-max", "0.1", "--stop-chance", "0.3",
        "--wrong-move-chance", "0.3", "--route-weight", "2",
        "--record-finished", str(folder / "finished.txt"),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)


def count_stream(redis_client, stream: str) -> dict:
    """Count events and session outcomes straight from XRANGE."""
    events: Counter[tuple[str, str]] = Counter()
    codes: Counter[str] = Counter()
    started = finished = stopped = 0
    for _id, fields in redis_client.xrange(stream):
        event, result = fields["event"], fields["result"]
        events[(event, result)] += 1
        if result == "error":
            codes[fields["code"]] += 1
        elif event == "startsess":
            started += 1
        elif event == "stepsess" and fields["step"] == "999":
            finished += 1
        elif event == "stopsess":
            stopped += 1
        elif event in ("delroute", "deluser"):
            stopped += len(orjson.loads(fields["data"])["stopped"])
    return {"events": events, "codes": codes, "started": started,
            "finished": finished, "stopped": stopped}


def test_serve_load_profile(server):
    """`damba serve --profile load` gives its workers the load limits."""
    limits = requests.get(f"{server}/api/v1/info", timeout=10).json()["limits"]
    assert limits == {"maxusers": 10000, "maxroutes": 100000, "maxsteps": 100}


def test_load_run_report(server, redis_client, settings, tmp_path):
    """The report's counts equal the stream's, and its finished sessions Locust's."""
    result = run_locust(server, tmp_path)
    assert result.returncode == 0, f"Locust failed:\n{result.stderr[-4000:]}"

    report = build_report(redis_client, settings.stream_key, tmp_path / "report",
                          locust_prefix=str(tmp_path / "locust"))
    direct = count_stream(redis_client, settings.stream_key)
    summary = report.summary

    # Every event in the stream, by kind and result.
    assert summary["events"] == sum(direct["events"].values())
    for event, counts in summary["events_by_type"].items():
        assert counts["ok"] == direct["events"][(event, "ok")], event
        assert counts["error"] == direct["events"][(event, "error")], event
    assert summary["errors_by_code"] == dict(direct["codes"])
    assert set(direct["codes"]) <= EXPECTED_CODES

    # Sessions, by outcome.
    assert summary["sessions"]["started"] == direct["started"]
    assert summary["sessions"]["finished"] == direct["finished"]
    assert summary["sessions"]["stopped"] == direct["stopped"]
    assert summary["sessions"]["running"] == (
        direct["started"] - direct["finished"] - direct["stopped"])
    assert direct["finished"] > 0

    # The sessions Locust saw finish are the ones the report counts as finished.
    seen = (tmp_path / "finished.txt").read_text().split()
    assert len(seen) == len(set(seen))
    with open(report.folder / "sessions.csv", newline="", encoding="utf-8") as file:
        finished = {row["sid"] for row in csv.DictReader(file) if row["outcome"] == "finished"}
    assert set(seen) == finished

    # Locust's own figures sit beside the stream's.
    assert summary["locust"]["failures"] == 0
    assert summary["locust"]["requests"] > summary["sessions"]["started"]


def test_demo_script(tmp_path):
    """scripts/demo.py serves, loads, reports, and stops the server it started."""
    folder = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--users", "5",
         "--spawn-rate", "5", "--run-time", "3s", "--workers", "1", "--out", str(folder)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Demo done. Open {folder / 'report.html'}" in result.stdout
    assert (folder / "report.html").exists()
    assert (folder / "locust" / "locust_stats.csv").exists()
    summary = orjson.loads((folder / "summary.json").read_bytes())
    assert summary["sessions"]["started"] > 0
    assert summary["locust"]["failures"] == 0

    # The server's port is closed again: nothing the demo started still serves.
    log = (folder / "serve.log").read_text()
    port = int(log.split("Listening at: http://127.0.0.1:", 1)[1].split()[0])
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/api/v1/info", timeout=5)
