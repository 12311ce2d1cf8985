"""End to end: a real ``damba serve`` process, spoken to over HTTP."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import orjson
import pytest
import requests

from tests.helpers import ROUTE_TEXT
from tests.servers import start_server


def walk_a_session(url: str) -> dict:
    """Register, add a route, run a session to its end; return what was seen."""
    api = url + "/api/v1"
    user = requests.post(f"{api}/user/addme", params={"name": "Мария"}, timeout=10).json()
    key = user["uid"]
    route = requests.post(
        f"{api}/addroute/uid/{key}", data=ROUTE_TEXT.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=10,
    ).json()
    rid = route["rid"]
    joined = requests.post(f"{api}/join/uid/{key}/route/{rid}", timeout=10).json()
    steps = [requests.post(f"{api}/step/uid/{key}/route/{rid}", timeout=10).json() for _ in range(3)]
    late = requests.post(f"{api}/step/uid/{key}/route/{rid}", timeout=10)
    session = requests.get(f"{api}/info/session/{joined['sid']}", timeout=10).json()
    events = requests.get(f"{api}/info/events", timeout=10).json()["events"]
    return {"key": key, "rid": rid, "joined": joined, "steps": steps, "late": late,
            "session": session, "events": events}


def test_serve_runs_a_session_to_its_end(server):
    seen = walk_a_session(server.url)
    assert seen["joined"]["step"] == 0
    assert [s["step"] for s in seen["steps"]] == [1, 2, 999]
    assert seen["steps"][-1]["status"] == "finished"
    assert seen["late"].status_code == 404
    assert seen["late"].json()["code"] == "no_active_session"
    assert [entry["step"] for entry in seen["session"]["trace"]] == [0, 1, 2, 999]
    assert [e["event"] for e in seen["events"]] == [
        "init", "adduser", "addroute", "startsess", "stepsess", "stepsess", "stepsess", "error",
    ]


def test_serve_logs_requests_without_keys(server):
    seen = walk_a_session(server.url)
    server.stop()
    log = server.log()
    assert seen["key"] not in log
    assert f"POST /api/v1/step/uid/***/route/{seen['rid']} 200" in log
    assert "Redis in use:" in log
    assert " adduser ok " in log


def test_serve_access_log_redacts_keys(server_env):
    process = start_server(server_env, ("--access-log",))
    try:
        seen = walk_a_session(process.url)
    finally:
        process.stop()
    log = process.log()
    assert seen["key"] not in log
    assert '"POST /api/v1/join/uid/***/route/' in log


def test_serve_starts_embedded_valkey(key_prefix):
    """Without DAMBA_REDIS_URL the service brings its own Valkey and stops it on exit."""
    process = start_server({"DAMBA_REDIS_URL": None, "DAMBA_KEY_PREFIX": key_prefix})
    try:
        seen = walk_a_session(process.url)
    finally:
        assert process.stop() == 0
    assert seen["steps"][-1]["status"] == "finished"
    log = process.log()
    assert "Redis in use: embedded Valkey at redis://127.0.0.1:" in log
    port = int(log.split("embedded Valkey at redis://127.0.0.1:")[1].split(";")[0])
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "Valkey still listens after exit"


def raw_exchange(url: str, request: bytes) -> tuple[bytes, bytes]:
    """Send raw bytes to the server; return the reply's head and body."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize(
    "request_bytes,status,code",
    [
        (b"POST /api/v1/user/addme HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
         400, "bad_request"),
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET /api/v1/info HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
         431, "headers_too_large"),
        (b"GET /api/v1/info/user/" + b"K" * 32 + b" HTTP/9\r\nHost: x\r\n\r\n",
         400, "bad_request"),
        (b"POST /api/v1/user/addme HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
         b"Content-Type: application/json\r\nConnection: close\r\n\r\n{\"na", 400, "invalid_json"),
    ],
)
def test_serve_malformed_http_gets_json(server, request_bytes, status, code):
    """Requests gunicorn itself rejects still get Damba's JSON error body."""
    head, body = raw_exchange(server.url, request_bytes)
    assert head.startswith(f"HTTP/1.1 {status}".encode())
    assert b"application/json" in head
    error = orjson.loads(body)
    assert error["result"] == "error"
    assert error["code"] == code
    assert b"K" * 32 not in body
    server.stop()
    assert "K" * 32 not in server.log()


def test_worker_error_codes_are_in_catalogue():
    from damba.errors import STATUS_BY_CODE
    from damba.gunicorn_workers import _CODE_BY_STATUS

    for status, code in _CODE_BY_STATUS.items():
        assert STATUS_BY_CODE[code] == status


def test_serve_unknown_path_is_json_404(server):
    result = requests.get(server.url + "/api/nothing", timeout=10)
    assert result.status_code == 404
    assert result.json()["code"] == "not_found"


def test_worker_exit_leaves_embedded_valkey(key_prefix):
    """A worker that exits does not stop the Valkey its master started."""
    import os
    import signal
    import time

    process = start_server({"DAMBA_REDIS_URL": None, "DAMBA_KEY_PREFIX": key_prefix})
    try:
        first = requests.post(process.url + "/api/v1/user/addme", timeout=10)
        assert first.status_code == 201
        workers = [
            int(line.split("Booting worker with pid: ")[1])
            for line in process.log().splitlines()
            if "Booting worker with pid: " in line
        ]
        os.kill(workers[0], signal.SIGTERM)
        time.sleep(2)
        info = requests.get(process.url + "/api/v1/info", timeout=10).json()
        assert info["counts"]["users"] == 1
    finally:
        process.stop()
    assert process.log().count("stopped embedded Valkey") == 1
