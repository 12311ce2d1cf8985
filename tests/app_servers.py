"""Real ``damba serve`` processes for end-to-end and race tests.

Each server runs in its own session on a free loopback port and writes its
standard output and error to files the test can read. It is stopped by its
PID with SIGTERM, so it shuts down as in production. SIGKILL follows only
for a server that outlives the deadline, and for any child it leaves behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

# Seconds a server may take to respond to its first request, or to exit after
# SIGTERM. Both are deadlines for a broken server, never expected durations.
START_DEADLINE = 60.0
STOP_DEADLINE = 30.0


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """Return the PIDs of the live processes whose parent is ``pid``."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                children.append(int(entry.name))
    return children


def pid_alive(pid: int) -> bool:
    """Tell whether ``pid`` names a running process; a zombie counts as exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


@dataclass
class ServerProcess:
    """One ``damba serve`` process of a given app kind."""

    kind: str
    port: int
    process: subprocess.Popen
    stdout_path: Path
    stderr_path: Path
    # PIDs of the children still running after the server itself exited.
    leftovers: list[int] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @classmethod
    def start(cls, kind: str, folder: Path, env: dict, args=(), workers: int = 2):
        """Start a server of ``kind`` ("wsgi" or "asgi") and wait until it responds."""
        environment = dict(os.environ)
        for name, value in env.items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        for _attempt in range(3):
            port = free_port()
            command = [
                sys.executable,
                "-m",
                "damba",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                *args,
            ]
            if kind == "asgi":
                command.append("--asgi")
            name = f"{kind}-{port}"
            stdout_path = folder / f"{name}.out"
            stderr_path = folder / f"{name}.err"
            with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                process = subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=err,
                    env=environment,
                    start_new_session=True,
                )
            server = cls(kind, port, process, stdout_path, stderr_path)
            if server._wait_ready():
                return server
            # Another process may have taken the port between free_port()
            # and the bind; anything else fails the same way three times.
            server.stop()
        raise RuntimeError(
            f"damba serve ({kind}) did not start; its stderr:\n{server.stderr()}"
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if requests.get(f"{self.base_url}/info", timeout=2).status_code == 200:
                    return True
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> int | None:
        """Stop the server by its PID and return its exit code.

        Children still running once the deadline has passed are recorded in
        ``leftovers`` and then killed by their PIDs, so a failing test leaks
        no process.
        """
        if self.process.poll() is not None:
            return self.process.returncode
        children = child_pids(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # Children such as multiprocessing's resource tracker exit on their
        # own just after the parent; give them until the deadline.
        deadline = time.monotonic() + STOP_DEADLINE
        while any(pid_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.leftovers = [pid for pid in children if pid_alive(pid)]
        for pid in self.leftovers:
            os.kill(pid, signal.SIGKILL)
        return self.process.returncode

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def url(self, path: str) -> str:
        return self.base_url + path
