"""Graceful shutdown of `damba serve`: SIGTERM lets in-flight requests finish.

The tests send SIGTERM to the PID of the `damba serve` process they started,
which is gunicorn's master, as `docker stop` and Kubernetes do.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time

import orjson
import requests
from tests.servers import BIN, damba_env, start_damba, wait_until

from damba.serve import gunicorn_options

ROUTE_TEXT = b"START order\nSTEP check stock\nSTEP take payment\nSTOP\n"


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length body from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed before a full response: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("connection closed inside the response body")
        body += chunk
    return int(status_line.split()[1]), headers, body[:length]


def get_health(sock: socket.socket) -> dict[str, str]:
    """Send GET /healthz on a kept-alive connection; return the response headers."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    status, headers, _ = read_response(sock)
    assert status == 200
    return headers


def verify(redis_url: str, key_prefix: str) -> subprocess.CompletedProcess:
    env = damba_env(redis_url, key_prefix, 0)
    return subprocess.run(
        [str(BIN / "damba"), "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_graceful_timeout_passed():
    """DAMBA_GRACEFUL_TIMEOUT reaches gunicorn's graceful_timeout option."""
    options = gunicorn_options("127.0.0.1", 0, 1, 4, False, graceful_timeout=7)
    assert options["graceful_timeout"] == 7


def test_sigterm_finishes_inflight(redis_url, key_prefix, tmp_path):
    """A request in flight when SIGTERM arrives still gets its full reply and event."""
    process = start_damba(
        "wsgi", redis_url, key_prefix, tmp_path, workers=1, threads=4
    )
    base = process.url
    with process:
        key = requests.post(base + "/api/v1/user/addme", timeout=10).json()["uid"]

        # 1. Start a request and hold back half of its body, so the worker
        # blocks inside the app reading it.
        inflight = connect(base)
        half = len(ROUTE_TEXT) // 2
        inflight.sendall(
            f"POST /api/v1/addroute/uid/{key} HTTP/1.1\r\nHost: test\r\n"
            f"Content-Type: text/plain\r\n"
            f"Content-Length: {len(ROUTE_TEXT)}\r\n\r\n".encode()
            + ROUTE_TEXT[:half]
        )
        # 2. A second connection. The single worker accepts connections in
        # order, so once this one gets a reply, the held request is in flight.
        watcher = connect(base)
        assert get_health(watcher).get("connection") != "close"

        # 3. SIGTERM to gunicorn's master. Once the worker is shutting down,
        # its replies on the kept-alive connection carry "Connection: close".
        process.signal(signal.SIGTERM)
        wait_until(
            lambda: get_health(watcher).get("connection") == "close",
            "the worker to begin its graceful shutdown",
            process=process,
        )
        watcher.close()

        # 4. The rest of the body: the request completes during shutdown.
        inflight.sendall(ROUTE_TEXT[half:])
        status, headers, body = read_response(inflight)
        inflight.close()
        assert status == 201, body
        # gunicorn picks keep-alive or close as a request begins, so
        # keep-alive here shows that this request began before SIGTERM.
        assert headers.get("connection") == "keep-alive"
        reply = orjson.loads(body)
        assert reply["result"] == "ok"
        assert reply["route"]["steps"] == ["check stock", "take payment"]

        assert process.wait() == 0, process.output()

    assert "Handling signal: term" in process.output()
    checked = verify(redis_url, key_prefix)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_sigterm_during_writes(redis_url, key_prefix, tmp_path, redis_client):
    """SIGTERM amid writes leaves the read models valid and every acknowledged join."""
    process = start_damba(
        "wsgi", redis_url, key_prefix, tmp_path, workers=2, threads=2
    )
    base = process.url
    acknowledged: list[str] = []
    stop_writing = threading.Event()

    def write() -> None:
        # Bounded: at most 300 sessions of up to 12 requests each, and the loop
        # ends at the first failed connection once the server stops.
        session = requests.Session()
        try:
            key = session.post(base + "/api/v1/user/addme", timeout=10).json()["uid"]
            rid = session.post(
                f"{base}/api/v1/addroute/uid/{key}/steps/10", timeout=10
            ).json()["rid"]
            for _ in range(300):
                if stop_writing.is_set():
                    return
                reply = session.post(
                    f"{base}/api/v1/join/uid/{key}/route/{rid}", timeout=10
                )
                if reply.status_code == 201:
                    acknowledged.append(reply.json()["sid"])
                for _ in range(11):
                    step = session.post(
                        f"{base}/api/v1/step/uid/{key}/route/{rid}", timeout=10
                    )
                    if step.status_code != 200:
                        break
        except requests.RequestException:
            return

    with process:
        writer = threading.Thread(target=write)
        writer.start()
        wait_until(
            lambda: len(acknowledged) >= 3,
            "the first sessions to start",
            process=process,
        )
        process.signal(signal.SIGTERM)
        assert process.wait() == 0, process.output()
        stop_writing.set()
        writer.join(timeout=60)
        assert not writer.is_alive()

    checked = verify(redis_url, key_prefix)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    started = {
        fields["sid"]
        for _, fields in redis_client.xrange(f"{key_prefix}:events")
        if fields["event"] == "startsess" and fields["result"] == "ok"
    }
    assert set(acknowledged) <= started


def test_sigterm_exits_promptly_when_idle(redis_url, key_prefix, tmp_path):
    """An idle server exits with status 0 well before the graceful timeout."""
    process = start_damba(
        "wsgi", redis_url, key_prefix, tmp_path, workers=1, DAMBA_GRACEFUL_TIMEOUT="60"
    )
    with process:
        started = time.monotonic()
        process.signal(signal.SIGTERM)
        assert process.wait() == 0
        # With nothing in flight, gunicorn does not wait out the 60 s timeout.
        assert time.monotonic() - started < 30
