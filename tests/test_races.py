"""Concurrency: many threads race on the same data through a real server.

Every test takes the ``start_server`` fixture, parametrised over the WSGI
server (gunicorn, threads in two worker processes) and the ASGI one
(uvicorn, one event loop in each of two worker processes). The threads wait
at a barrier and then send their requests together, so the requests
overlap in both worker processes. Each test checks the outcome that must
hold whatever the interleaving, never how long anything took.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from tests.helpers import stream_events

from damba.replay import verify

TIMEOUT = 60


def race(count: int, send) -> list[requests.Response]:
    """Call ``send(index)`` from ``count`` threads at once; return the responses."""
    barrier = threading.Barrier(count)

    def call(index: int) -> requests.Response:
        barrier.wait(timeout=TIMEOUT)
        return send(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def outcomes(responses) -> Counter:
    """Count the responses by status and error code."""
    return Counter(
        (response.status_code, response.json().get("code", "ok"))
        for response in responses
    )


def register(server, name: str) -> str:
    result = requests.post(server.api(f"/user/addme?name={name}"), timeout=TIMEOUT)
    assert result.status_code == 201, result.text
    return result.json()["uid"]


def test_addme_race_maxusers(start_server, settings, redis_client):
    """Racing registrations stop exactly at maxusers."""
    server = start_server(DAMBA_MAXUSERS="5")
    responses = race(
        24,
        lambda i: requests.post(
            server.api(f"/user/addme?name=racer{i}"), timeout=TIMEOUT
        ),
    )
    assert outcomes(responses) == Counter(
        {(201, "ok"): 5, (409, "maxusers_reached"): 19}
    )
    info = requests.get(server.api("/info"), timeout=TIMEOUT).json()
    assert info["counts"]["users"] == 5
    events = stream_events(redis_client, settings.key_prefix)
    assert sum(event["event"] == "adduser" for event in events) == 5
    assert sum(event["code"] == "maxusers_reached" for event in events) == 19
    assert verify(redis_client, settings.key_prefix) == []


def test_addme_race_same_name(start_server, settings, redis_client):
    """Of many racing registrations under one name, exactly one succeeds."""
    server = start_server()
    responses = race(
        16,
        lambda i: requests.post(server.api("/user/addme?name=twin"), timeout=TIMEOUT),
    )
    assert outcomes(responses) == Counter({(201, "ok"): 1, (409, "name_taken"): 15})
    users = requests.get(server.api("/info/users"), timeout=TIMEOUT).json()["users"]
    assert [user["name"] for user in users] == ["twin"]


def test_step_race_one_session(start_server, settings, redis_client):
    """Racing steps by route and by session id take each step once, then STOP once."""
    server = start_server(DAMBA_MAXSTEPS="20")
    key = register(server, "walker")
    rid = requests.post(
        server.api(f"/addroute/uid/{key}/steps/20"), timeout=TIMEOUT
    ).json()["rid"]
    sid = requests.post(
        server.api(f"/join/uid/{key}/route/{rid}"), timeout=TIMEOUT
    ).json()["sid"]

    def send(index: int) -> requests.Response:
        by = f"route/{rid}" if index % 2 else f"session/{sid}"
        return requests.post(server.api(f"/step/uid/{key}/{by}"), timeout=TIMEOUT)

    responses = race(40, send)
    results = outcomes(responses)
    assert results[(200, "ok")] == 21
    # A step by route after the end finds no running session; a step by
    # session id finds the session ended.
    assert set(results) <= {
        (200, "ok"),
        (409, "session_ended"),
        (404, "no_active_session"),
    }
    by_session = [r for i, r in enumerate(responses) if not i % 2]
    assert all(
        r.json()["code"] == "session_ended" for r in by_session if r.status_code != 200
    )
    steps = sorted(r.json()["step"] for r in responses if r.status_code == 200)
    assert steps == [*range(1, 21), 999]

    session = requests.get(server.api(f"/info/session/{sid}"), timeout=TIMEOUT).json()
    assert [entry["step"] for entry in session["trace"]] == [*range(0, 21), 999]
    assert session["status"] == "finished"
    events = stream_events(redis_client, settings.key_prefix)
    assert (
        sum(event["event"] == "stepsess" and event["sid"] == sid for event in events)
        == 21
    )
    assert verify(redis_client, settings.key_prefix) == []


def test_step_stop_race(start_server, settings, redis_client):
    """Racing steps and stops on one session end it exactly once, as stopped."""
    server = start_server()
    key = register(server, "stopper")
    rid = requests.post(
        server.api(f"/addroute/uid/{key}/steps/10"), timeout=TIMEOUT
    ).json()["rid"]
    sid = requests.post(
        server.api(f"/join/uid/{key}/route/{rid}"), timeout=TIMEOUT
    ).json()["sid"]

    def send(index: int) -> requests.Response:
        action = "stop" if index % 2 else "step"
        return requests.post(
            server.api(f"/{action}/uid/{key}/session/{sid}"), timeout=TIMEOUT
        )

    responses = race(16, send)
    stops = [r for i, r in enumerate(responses) if i % 2 and r.status_code == 200]
    assert len(stops) == 1
    moved = [
        r.json()["step"]
        for i, r in enumerate(responses)
        if not i % 2 and r.status_code == 200
    ]
    assert sorted(moved) == list(range(1, len(moved) + 1))
    assert all(
        r.json()["code"] == "session_ended" for r in responses if r.status_code != 200
    )

    session = requests.get(server.api(f"/info/session/{sid}"), timeout=TIMEOUT).json()
    assert session["status"] == "stopped"
    assert [entry["step"] for entry in session["trace"]] == [
        0,
        *range(1, len(moved) + 1),
        999,
    ]
    events = stream_events(redis_client, settings.key_prefix)
    stopped = [event for event in events if event["event"] == "stopsess"]
    assert len(stopped) == 1
    assert json.loads(stopped[0]["data"])["from_step"] == len(moved)


def test_join_race_one_route(start_server, settings, redis_client):
    """Of many racing joins by one participant on one route, exactly one wins."""
    server = start_server()
    key = register(server, "joiner")
    rid = requests.post(
        server.api(f"/addroute/uid/{key}/steps/2"), timeout=TIMEOUT
    ).json()["rid"]
    responses = race(
        12,
        lambda i: requests.post(
            server.api(f"/join/uid/{key}/route/{rid}"), timeout=TIMEOUT
        ),
    )
    assert outcomes(responses) == Counter({(201, "ok"): 1, (409, "session_active"): 11})
    info = requests.get(server.api("/info"), timeout=TIMEOUT).json()
    assert info["counts"]["active_sessions"] == 1
    assert info["counts"]["sessions"] == 1
    assert verify(redis_client, settings.key_prefix) == []


def test_delroute_join_race(start_server, settings, redis_client):
    """Joins racing a route's deletion either stop with it or fail: none survive."""
    server = start_server()
    owner = register(server, "owner")
    guests = [register(server, f"guest{i}") for i in range(4)]
    rid = requests.post(
        server.api(f"/addroute/uid/{owner}/steps/3"), timeout=TIMEOUT
    ).json()["rid"]

    def send(index: int) -> requests.Response:
        if index == 8:
            path = f"/delroute/uid/{owner}/route/{rid}"
        else:
            path = f"/join/uid/{guests[index % 4]}/route/{rid}"
        return requests.post(server.api(path), timeout=TIMEOUT)

    responses = race(16, send)
    assert responses[8].status_code == 200, responses[8].text
    counts = requests.get(server.api("/info"), timeout=TIMEOUT).json()["counts"]
    assert counts["routes"] == 0
    assert counts["active_sessions"] == 0
    assert verify(redis_client, settings.key_prefix) == []
