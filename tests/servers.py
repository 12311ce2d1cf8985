"""Real processes for tests: start one, wait until it is ready, stop it by PID.

``ServerProcess`` runs any command, such as a Locust master or a
redis-server. ``start_damba`` runs ``damba serve`` of one app kind, "wsgi"
(gunicorn) or "asgi" (uvicorn), on a free loopback port and waits until
``/readyz`` returns 200. Every process runs in its own session and writes
its standard output and error to files in the test's folder, so the test
can read them during the run and after ``stop()``.

A process is stopped by its PID with SIGTERM, so it shuts down as in
production. SIGKILL follows only for a process that outlives the deadline,
and for any child it leaves behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

# The folder of this virtualenv's executables: damba, locust, python.
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent

# Deadlines for a server to start and to exit after SIGTERM. They are
# generous so a slow machine never fails a test; a healthy start takes
# about a second.
START_SECONDS = 60.0
STOP_SECONDS = 30.0

# How often ``start_damba`` picks a new port when the server exits before
# it is ready, which is what happens when another process took the port
# between free_port() and the bind.
START_ATTEMPTS = 3


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resolve(argv: list[str]) -> list[str]:
    """Run a command's executable from this virtualenv when it is there."""
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    local = BIN / argv[0]
    return [str(local), *argv[1:]] if local.exists() else list(argv)


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
    """Return True if ``pid`` is a running process; a zombie counts as exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def command_line(pid: int) -> str:
    """Return the command line of ``pid``, or "" once it has exited."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def damba_env(
    redis_url: str, key_prefix: str, port: int, **extra: str | None
) -> dict[str, str]:
    """Return this process's environment with Damba aimed at a test Redis and port.

    Every DAMBA_ variable of the test run itself is left out. An ``extra``
    value of None removes that variable, so ``DAMBA_REDIS_URL=None`` makes
    ``damba serve`` start its own embedded Valkey.
    """
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
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class ServerProcess:
    """A command started by a test, stopped by its own PID and nothing else."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log_dir: Path,
        cwd: Path = REPO,
    ) -> None:
        self.name = name
        self.argv = resolve(argv)
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        # PIDs of the children still running after the process itself exited.
        self.leftovers: list[int] = []
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                self.argv,
                env=dict(env),
                cwd=cwd,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        """Return the standard output followed by the standard error."""
        stdout = self.stdout()
        if stdout and not stdout.endswith("\n"):
            stdout += "\n"
        return stdout + self.stderr()

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signum)

    def wait(self, seconds: float = STOP_SECONDS) -> int:
        return self.popen.wait(timeout=seconds)

    def stop(self) -> int | None:
        """Stop the process by its PID and return its exit code.

        Children still running once the deadline has passed are recorded in
        ``leftovers`` and then killed by their PIDs, so a failing test leaks
        no process.
        """
        if self.popen.poll() is not None:
            return self.popen.returncode
        children = child_pids(self.popen.pid)
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=STOP_SECONDS)
        # Children such as multiprocessing's resource tracker exit on their
        # own just after the parent; give them until the deadline.
        deadline = time.monotonic() + STOP_SECONDS
        while any(pid_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.leftovers = [pid for pid in children if pid_alive(pid)]
        for pid in self.leftovers:
            os.kill(pid, signal.SIGKILL)
        return self.popen.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


class DambaServer(ServerProcess):
    """One ``damba serve`` process of an app kind on a loopback port."""

    def __init__(self, kind: str, port: int, argv, env, log_dir: Path) -> None:
        self.kind = kind
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        super().__init__(f"{kind}-{port}", argv, env, log_dir)

    def api(self, path: str) -> str:
        """Return the URL of ``path`` under /api/v1 on this server."""
        return f"{self.url}/api/v1{path}"

    def log(self) -> str:
        return self.output()


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
                f"before {what}:\n{process.output()}"
            )
        time.sleep(0.1)
    detail = f":\n{process.output()}" if process is not None else ""
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}{detail}")


def answers(url: str, status: int = 200) -> Callable[[], bool]:
    """Build a check that GET ``url`` returns ``status``."""

    def check() -> bool:
        try:
            return requests.get(url, timeout=2).status_code == status
        except requests.RequestException:
            return False

    return check


def start_damba(
    kind: str,
    redis_url: str,
    key_prefix: str,
    log_dir: Path,
    *args: str,
    workers: int | None = None,
    threads: int | None = None,
    **env: str | None,
) -> DambaServer:
    """Start ``damba serve`` of ``kind`` ("wsgi" or "asgi") and wait until it is ready.

    ``args`` are extra ``damba serve`` options; ``workers`` and ``threads``
    are left to the defaults of ``damba serve`` unless given. ``env``
    overrides the environment as ``damba_env`` does, None meaning unset.
    """
    if kind not in ("wsgi", "asgi"):
        raise ValueError(f"unknown app kind {kind!r}; expected 'wsgi' or 'asgi'")
    options = list(args)
    if workers is not None:
        options += ["--workers", str(workers)]
    if threads is not None:
        options += ["--threads", str(threads)]
    if kind == "asgi":
        options.append("--asgi")

    for _attempt in range(START_ATTEMPTS):
        port = free_port()
        argv = [sys.executable, "-m", "damba", "serve", "--port", str(port), *options]
        environment = damba_env(redis_url, key_prefix, port, **env)
        server = DambaServer(kind, port, argv, environment, log_dir)
        try:
            wait_until(
                answers(server.url + "/readyz"),
                f"{server.url}/readyz to return 200",
                process=server,
            )
            return server
        except AssertionError:
            exited_early = server.popen.poll() is not None
            server.stop()
            if not exited_early:
                raise
            failure = server.output()
    raise AssertionError(
        f"damba serve ({kind}) exited before it was ready, {START_ATTEMPTS} times; "
        f"its last output:\n{failure}"
    )


@contextmanager
def running_server(
    redis_url: str,
    key_prefix: str,
    log_dir: Path,
    env: Mapping[str, str | None] | None = None,
    threads: int = 6,
    kind: str = "wsgi",
) -> Iterator[DambaServer]:
    """Run ``damba serve`` with one worker until the block ends.

    ``threads`` applies to the WSGI server only, since ASGI workers run no
    threads.
    """
    server = start_damba(
        kind,
        redis_url,
        key_prefix,
        log_dir,
        workers=1,
        threads=threads if kind == "wsgi" else None,
        **(env or {}),
    )
    try:
        yield server
    finally:
        server.stop()
