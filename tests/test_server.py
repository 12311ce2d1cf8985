"""End to end: a real ``damba serve`` process of each app kind, over HTTP.

The tests take the ``start_server`` fixture, which conftest parametrises
over the WSGI server (gunicorn) and the ASGI one (uvicorn). The last two
tests check a catalogue and a command-line rule and start nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from urllib.parse import urlsplit

import orjson
import pytest
import requests
from click.testing import CliRunner
from tests.helpers import ROUTE_TEXT, stream_events
from tests.servers import child_pids, command_line, pid_alive, wait_until

from damba.cli import main

TIMEOUT = 30


def post(server, path: str, **kwargs) -> requests.Response:
    return requests.post(server.api(path), timeout=TIMEOUT, **kwargs)


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(server.api(path), timeout=TIMEOUT, **kwargs)


def walk_a_session(server) -> dict:
    """Register, add a route, run a session to its end; return what was seen."""
    added = post(server, "/user/addme", params={"name": "Мария"})
    assert added.status_code == 201, added.text
    key = added.json()["uid"]
    route = post(
        server,
        f"/addroute/uid/{key}",
        data=ROUTE_TEXT.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    assert route.status_code == 201, route.text
    rid = route.json()["rid"]
    joined = post(server, f"/join/uid/{key}/route/{rid}").json()
    steps = [post(server, f"/step/uid/{key}/route/{rid}").json() for _ in range(3)]
    late = post(server, f"/step/uid/{key}/route/{rid}")
    session = get(server, f"/info/session/{joined['sid']}").json()
    events = get(server, "/info/events").json()["events"]
    return {
        "key": key,
        "name": added.json()["name"],
        "rid": rid,
        "joined": joined,
        "steps": steps,
        "late": late,
        "session": session,
        "events": events,
    }


def test_server_full_flow(start_server, settings, redis_client):
    """A participant walks a route to the end and leaves, over real HTTP."""
    server = start_server()
    seen = walk_a_session(server)
    assert seen["name"] == "Мария"
    assert seen["joined"]["step"] == 0
    assert [step["step"] for step in seen["steps"]] == [1, 2, 999]
    assert [step["status"] for step in seen["steps"]] == [
        "running",
        "running",
        "finished",
    ]
    assert seen["late"].status_code == 404
    assert seen["late"].json()["code"] == "no_active_session"
    assert [entry["step"] for entry in seen["session"]["trace"]] == [0, 1, 2, 999]
    # The API's own event page and the stream in Redis agree.
    assert [event["event"] for event in seen["events"]] == [
        "init",
        "adduser",
        "addroute",
        "startsess",
        "stepsess",
        "stepsess",
        "stepsess",
        "error",
    ]
    assert post(server, f"/user/killme/uid/{seen['key']}").status_code == 200

    events = [
        event["event"] for event in stream_events(redis_client, settings.key_prefix)
    ]
    assert events == [
        "init",
        "adduser",
        "addroute",
        "startsess",
        "stepsess",
        "stepsess",
        "stepsess",
        "error",
        "deluser",
    ]


def test_server_single_worker(start_server):
    """A server with one worker, run in its own process, serves and stops cleanly."""
    server = start_server(workers=1)
    key = post(server, "/user/addme").json()["uid"]
    assert post(server, f"/addroute/uid/{key}/steps/1").status_code == 201
    assert server.stop() == 0
    assert "with 1 workers" in server.stderr()


def test_server_errors_are_json(start_server):
    """Unknown paths, wrong methods and bad input get JSON errors from the server."""
    server = start_server()
    for path in ("/api/v1/nowhere", "/api/nothing"):
        missing = requests.get(server.url + path, timeout=TIMEOUT)
        assert missing.status_code == 404, path
        assert missing.json()["code"] == "not_found", path
    wrong = get(server, "/user/addme")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
    bad = post(
        server, "/user/addme", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_json"


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


# Raw requests the HTTP server rejects before the app receives them, with
# the status and error code each must get.
MALFORMED = [
    (
        b"POST /api/v1/user/addme HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        400,
        "bad_request",
    ),
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (
        b"GET /api/v1/info HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
        431,
        "headers_too_large",
    ),
    (
        b"GET /api/v1/info/user/" + b"K" * 32 + b" HTTP/9\r\nHost: x\r\n\r\n",
        400,
        "bad_request",
    ),
    (
        b"POST /api/v1/user/addme HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b'Content-Type: application/json\r\nConnection: close\r\n\r\n{"na',
        400,
        "bad_request",  # the body ends before its Content-Length: cut off
    ),
    (
        b"POST /api/v1/user/addme HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
]


def test_server_malformed_http(start_server, app_kind, request):
    """Requests the HTTP server itself rejects still get Damba's JSON error body."""
    server = start_server()
    for request_bytes, status, code in MALFORMED:
        case = request_bytes[:40]
        if app_kind == "asgi" and status == 431:
            # uvicorn accepts larger headers than gunicorn, so this one passes.
            continue
        if app_kind == "asgi" and b"Content-Length: 5" in request_bytes:
            # uvicorn takes the closed sending side for a disconnect and sends
            # nothing back; the cut-off body is still not acted on.
            assert raw_exchange(server.url, request_bytes) == (b"", b"")
            continue
        head, body = raw_exchange(server.url, request_bytes)
        assert head.startswith(f"HTTP/1.1 {status}".encode()), (case, head)
        assert b"application/json" in head, (case, head)
        error = orjson.loads(body)
        assert error["result"] == "error", case
        assert error["code"] == code, case
        assert b"K" * 32 not in body, case
    # None of the malformed requests, the cut-off addme included, registered anyone.
    info = requests.get(server.url + "/api/v1/info", timeout=10).json()
    assert info["counts"]["users"] == 0
    server.stop()
    assert "K" * 32 not in server.log()


def test_server_body_limit(start_server, settings, redis_client):
    """A body over DAMBA_MAX_BODY gets 413 and leaves an error event."""
    server = start_server(DAMBA_MAX_BODY="1024")
    big = json.dumps({"name": "x" * 4000}).encode()
    result = post(
        server, "/user/addme", data=big, headers={"Content-Type": "application/json"}
    )
    assert result.status_code == 413
    assert result.json()["code"] == "body_too_large"
    last = stream_events(redis_client, settings.key_prefix)[-1]
    assert last["code"] == "body_too_large"


def test_server_chunked_body_limit(start_server):
    """A chunked body with no Content-Length is held to the same limit."""
    server = start_server(DAMBA_MAX_BODY="1024")

    def chunks():
        for _ in range(8):
            yield b"STEP " + b"x" * 500 + b"\n"

    key = post(server, "/user/addme").json()["uid"]
    result = post(
        server,
        f"/addroute/uid/{key}",
        data=chunks(),
        headers={"Content-Type": "text/plain"},
    )
    assert result.status_code == 413
    assert result.json()["code"] == "body_too_large"


def test_server_chunked_route(start_server):
    """A route sent as a chunked body, with no Content-Length, is stored."""
    server = start_server()

    def chunks():
        for line in ROUTE_TEXT.splitlines(keepends=True):
            yield line.encode()

    key = post(server, "/user/addme").json()["uid"]
    result = post(
        server,
        f"/addroute/uid/{key}",
        data=chunks(),
        headers={"Content-Type": "text/plain"},
    )
    assert result.status_code == 201
    assert result.json()["route"]["steps"] == ["check stock", "take payment"]


def test_server_logs_hide_keys(start_server):
    """Neither the request log nor the access log shows an access key."""
    server = start_server("--access-log")
    seen = walk_a_session(server)
    key = seen["key"]
    assert get(server, f"/info/user/{key}").status_code == 200
    assert post(server, f"/addroute/uid/{key}/steps/2").status_code == 201
    server.stop()
    assert key not in server.output()
    # The request log, on standard error.
    assert "Redis in use:" in server.stderr()
    assert " adduser ok " in server.stderr()
    assert f"POST /api/v1/step/uid/***/route/{seen['rid']} 200" in server.stderr()
    assert "/info/user/*** 200" in server.stderr()
    # The access log, on standard output.
    assert '"POST /api/v1/join/uid/***/route/' in server.stdout()
    assert "/addroute/uid/***/steps/2" in server.stdout()


@pytest.mark.parametrize("workers", [1, 2])
def test_server_embedded_valkey(start_server, workers):
    """Without DAMBA_REDIS_URL the server runs a Valkey and stops it on SIGTERM."""
    server = start_server(workers=workers, DAMBA_REDIS_URL=None)
    seen = walk_a_session(server)
    assert seen["steps"][-1]["status"] == "finished"
    assert get(server, "/info").json()["counts"]["users"] == 1
    assert child_pids(server.pid)
    assert server.stop() == 0
    assert server.leftovers == []

    log = server.stderr()
    marker = "Redis in use: embedded Valkey at redis://127.0.0.1:"
    assert marker in log
    port = int(log.split(marker)[1].split(";")[0].split("/")[0])
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "Valkey listens after exit"


def worker_pids(server) -> list[int]:
    """Return the PIDs of the server's workers: its children but Valkey and helpers."""
    return [
        pid
        for pid in child_pids(server.pid)
        if "valkey" not in command_line(pid)
        and "resource_tracker" not in command_line(pid)
    ]


def test_server_worker_exit(start_server):
    """A worker that exits does not stop the Valkey its master started."""
    server = start_server(DAMBA_REDIS_URL=None)
    first = post(server, "/user/addme")
    assert first.status_code == 201
    workers = worker_pids(server)
    assert len(workers) == 2, [command_line(pid) for pid in workers]

    victim = workers[0]
    os.kill(victim, signal.SIGTERM)
    wait_until(lambda: not pid_alive(victim), f"worker {victim} to exit", process=server)
    info = get(server, "/info").json()
    assert info["counts"]["users"] == 1
    assert server.stop() == 0
    assert server.stderr().count("stopped embedded Valkey") == 1


def test_worker_error_codes_are_in_catalogue():
    """Every status gunicorn's workers turn into JSON maps to a catalogued code."""
    from damba.errors import STATUS_BY_CODE
    from damba.gunicorn_workers import _CODE_BY_STATUS

    for status, code in _CODE_BY_STATUS.items():
        assert STATUS_BY_CODE[code] == status


def test_serve_asgi_rejects_threads():
    """--threads with --asgi is a usage error, since ASGI workers run no threads."""
    result = CliRunner().invoke(main, ["serve", "--asgi", "--threads", "8"])
    assert result.exit_code == 2
    assert "--threads applies to the WSGI server only" in result.output
