"""Start a real `damba serve` process for a test, and stop it by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

# Seconds a server may take to respond to its first request before the test fails.
START_TIMEOUT = 30.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(
    redis_url: str,
    key_prefix: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    threads: int = 6,
    kind: str = "wsgi",
) -> Iterator[Server]:
    """Run `damba serve` with one worker on a free port until the block ends.

    ``kind`` is "wsgi" (gunicorn) or "asgi" (uvicorn). ``threads`` applies to
    the WSGI server only, since ASGI workers run no threads.
    """
    port = free_port()
    environment = {
        **os.environ,
        "DAMBA_REDIS_URL": redis_url,
        "DAMBA_KEY_PREFIX": key_prefix,
        **(env or {}),
    }
    log_path = log_dir / f"serve-{port}.log"
    command = [
        sys.executable, "-m", "damba", "serve",
        "--port", str(port), "--workers", "1",
    ]
    command += ["--asgi"] if kind == "asgi" else ["--threads", str(threads)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        _stop(process)


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"damba serve exited early:\n{server.log()}")
        try:
            requests.get(server.url + "/api/v1/info", timeout=1).raise_for_status()
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"damba serve did not answer in {START_TIMEOUT} s:\n{server.log()}")


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's main process by its PID; it stops its workers itself."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
