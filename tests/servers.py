"""Start a real ``damba serve`` process for a test, and stop it by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

DAMBA = str(Path(sys.executable).with_name("damba"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """Send SIGTERM to the server's PID and wait for it to exit."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode


def start_server(env: dict[str, str], extra_args: tuple[str, ...] = (), timeout: float = 30) -> ServerProcess:
    """Run ``damba serve`` on a free port and wait until /api/v1/info returns 200."""
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="damba-serve-", suffix=".log")[1])
    full_env = {**os.environ, **env}
    for name, value in env.items():
        if value is None:
            full_env.pop(name, None)
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        [DAMBA, "serve", "--port", str(port), *extra_args],
        env=full_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    log_file.close()
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"damba serve exited early:\n{server.log()}")
        try:
            if requests.get(server.url + "/api/v1/info", timeout=1).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"damba serve did not answer within {timeout}s:\n{server.log()}")
