"""End to end: a real ``damba serve`` process of each app kind, over HTTP.

The tests take the ``start_server`` fixture, which conftest parametrises
over the WSGI server (gunicorn) and the ASGI one (uvicorn). The last test
checks a command-line rule and starts nothing.
"""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner
from tests.helpers import ROUTE_TEXT, stream_events
from tests.app_servers import child_pids

from damba.cli import main

TIMEOUT = 30


def post(server, path: str, **kwargs) -> requests.Response:
    return requests.post(server.url(path), timeout=TIMEOUT, **kwargs)


def get(server, path: str) -> requests.Response:
    return requests.get(server.url(path), timeout=TIMEOUT)


def test_server_full_flow(start_server, settings, redis_client):
    """A participant walks a route to the end and leaves, over real HTTP."""
    server = start_server()
    added = post(server, "/user/addme", json={"name": "ann"})
    assert added.status_code == 201
    key = added.json()["uid"]
    route = post(
        server,
        f"/addroute/uid/{key}",
        data=ROUTE_TEXT.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    assert route.status_code == 201
    rid = route.json()["rid"]
    sid = post(server, f"/join/uid/{key}/route/{rid}").json()["sid"]
    statuses = [
        post(server, f"/step/uid/{key}/route/{rid}").json()["status"] for _ in range(3)
    ]
    assert statuses == ["running", "running", "finished"]
    session = get(server, f"/info/session/{sid}").json()
    assert [entry["step"] for entry in session["trace"]] == [0, 1, 2, 999]
    assert post(server, f"/user/killme/uid/{key}").status_code == 200

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
    missing = get(server, "/nowhere")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    wrong = get(server, "/user/addme")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
    bad = post(
        server, "/user/addme", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_json"


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
    key = post(server, "/user/addme").json()["uid"]
    assert get(server, f"/info/user/{key}").status_code == 200
    assert post(server, f"/addroute/uid/{key}/steps/2").status_code == 201
    server.stop()
    output = server.stdout() + server.stderr()
    assert key not in output
    assert "/info/user/*** 200" in server.stderr()
    assert "/addroute/uid/***/steps/2" in server.stdout()


@pytest.mark.parametrize("workers", [1, 2])
def test_server_embedded_valkey(start_server, workers):
    """Without DAMBA_REDIS_URL the server runs a Valkey and stops it on SIGTERM."""
    server = start_server(workers=workers, DAMBA_REDIS_URL=None)
    assert post(server, "/user/addme?name=solo").status_code == 201
    assert get(server, "/info").json()["counts"]["users"] == 1
    assert child_pids(server.process.pid)
    assert server.stop() == 0
    assert server.leftovers == []
    assert "embedded Valkey" in server.stderr()


def test_serve_asgi_rejects_threads():
    """--threads with --asgi is a usage error, since ASGI workers run no threads."""
    result = CliRunner().invoke(main, ["serve", "--asgi", "--threads", "8"])
    assert result.exit_code == 2
    assert "--threads applies to the WSGI server only" in result.output
