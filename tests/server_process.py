"""Real server processes for tests: start one, wait until it is ready, stop it by PID.

Every process writes its output to a log file in the test's temporary folder,
so a failing test can show what the server printed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

# The folder of this virtualenv's executables: damba, locust, python.
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent

# Upper bound for a server to start or to stop. Generous, because a slow
# machine must not fail a test; a healthy run takes about a second.
START_SECONDS = 60.0
STOP_SECONDS = 30.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resolve(argv: list[str]) -> list[str]:
    """Run a command's executable from this virtualenv when it is there."""
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    local = BIN / argv[0]
    return [str(local), *argv[1:]] if local.exists() else list(argv)


def wait_until(
    check: Callable[[], bool],
    what: str,
    seconds: float = START_SECONDS,
    process: ServerProcess | None = None,
) -> None:
    """Call ``check`` until it returns True, or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.popen.poll() is not None:
            raise AssertionError(
                f"{process.name} exited with {process.popen.returncode} "
                f"before {what}:\n"
                f"{process.output()}"
            )
        time.sleep(0.1)
    detail = f":\n{process.output()}" if process is not None else ""
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}{detail}")


class ServerProcess:
    """A command started by a test, stopped by its own PID and nothing else."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_dir: Path,
        cwd: Path = REPO,
    ) -> None:
        self.name = name
        self.argv = resolve(argv)
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            self.argv,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signum)

    def wait(self, seconds: float = STOP_SECONDS) -> int:
        return self.popen.wait(timeout=seconds)

    def stop(self) -> int | None:
        """Send SIGTERM, wait, and send SIGKILL if the process is still there."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(timeout=STOP_SECONDS)
        self._log.close()
        return self.popen.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def answers(url: str, status: int = 200) -> Callable[[], bool]:
    """Build a check that GET ``url`` returns ``status``."""

    def check() -> bool:
        try:
            return requests.get(url, timeout=2).status_code == status
        except requests.RequestException:
            return False

    return check


def damba_env(
    redis_url: str, key_prefix: str, port: int, **extra: str
) -> dict[str, str]:
    """Return this process's environment with Damba pointed at a test Redis and port."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DAMBA_")
    }
    env.update(
        DAMBA_REDIS_URL=redis_url,
        DAMBA_KEY_PREFIX=key_prefix,
        DAMBA_HOST="127.0.0.1",
        DAMBA_PORT=str(port),
    )
    env.update(extra)
    return env


def start_damba(
    redis_url: str,
    key_prefix: str,
    log_dir: Path,
    *args: str,
    name: str = "damba-serve",
    **extra_env: str,
) -> tuple[ServerProcess, str]:
    """Start ``damba serve`` on a free port and wait until /readyz returns 200.

    Returns the process and its base URL.
    """
    port = free_port()
    env = damba_env(redis_url, key_prefix, port, **extra_env)
    process = ServerProcess(name, ["damba", "serve", *args], env, log_dir)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            answers(base + "/readyz"), f"{base}/readyz to return 200", process=process
        )
    except BaseException:
        process.stop()
        raise
    return process, base
