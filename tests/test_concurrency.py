"""Races between concurrent requests on a real multi-worker server.

The server runs gunicorn with 2 worker processes of 4 threads, and each
test fires its requests from 16 client threads at once.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from damba.replay import verify
from tests.servers import start_server

THREADS = 16


def fire(count: int, send) -> list[requests.Response]:
    """Call ``send(i)`` for i in range(count) from THREADS threads released together."""
    barrier = threading.Barrier(min(count, THREADS))

    def call(i):
        if i < THREADS:
            barrier.wait(timeout=30)
        return send(i)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(call, range(count)))


@pytest.fixture
def limited_server(server_env):
    process = start_server({**server_env, "DAMBA_MAXUSERS": "5", "DAMBA_MAXSTEPS": "20"})
    yield process
    process.stop()


def test_racing_steps_never_skip_or_pass_stop(limited_server, redis_client, settings):
    """40 racing steps on a 20-step session: each step once, then STOP once."""
    api = limited_server.url + "/api/v1"
    key = requests.post(f"{api}/user/addme", timeout=10).json()["uid"]
    rid = requests.post(f"{api}/addroute/uid/{key}/steps/20", timeout=10).json()["rid"]
    sid = requests.post(f"{api}/join/uid/{key}/route/{rid}", timeout=10).json()["sid"]

    def send(i):
        by = f"route/{rid}" if i % 2 else f"session/{sid}"
        return requests.post(f"{api}/step/uid/{key}/{by}", timeout=30)

    replies = fire(40, send)
    ok = [r.json() for r in replies if r.status_code == 200]
    rejected = Counter(r.json()["code"] for r in replies if r.status_code != 200)
    assert sorted(reply["step"] for reply in ok) == list(range(1, 21)) + [999]
    assert sum(rejected.values()) == 40 - 21
    assert set(rejected) <= {"session_ended", "no_active_session"}

    trace = requests.get(f"{api}/info/session/{sid}", timeout=10).json()["trace"]
    assert [entry["step"] for entry in trace] == list(range(0, 21)) + [999]
    assert verify(redis_client, settings.key_prefix) == []


def test_racing_addme_never_exceeds_maxusers(limited_server, redis_client, settings):
    api = limited_server.url + "/api/v1"
    replies = fire(30, lambda i: requests.post(f"{api}/user/addme", timeout=30))
    statuses = Counter(r.status_code for r in replies)
    assert statuses[201] == 5
    assert statuses[409] == 25
    assert {r.json()["code"] for r in replies if r.status_code == 409} == {"maxusers_reached"}
    assert requests.get(f"{api}/info", timeout=10).json()["counts"]["users"] == 5
    assert verify(redis_client, settings.key_prefix) == []


def test_racing_addme_same_name_registers_once(limited_server):
    api = limited_server.url + "/api/v1"
    replies = fire(16, lambda i: requests.post(f"{api}/user/addme?name=twin", timeout=30))
    assert sorted(r.status_code for r in replies) == [201] + [409] * 15
    assert {r.json()["code"] for r in replies if r.status_code == 409} == {"name_taken"}


def test_racing_joins_start_one_session(limited_server, redis_client, settings):
    api = limited_server.url + "/api/v1"
    key = requests.post(f"{api}/user/addme", timeout=10).json()["uid"]
    rid = requests.post(f"{api}/addroute/uid/{key}/steps/2", timeout=10).json()["rid"]
    replies = fire(16, lambda i: requests.post(f"{api}/join/uid/{key}/route/{rid}", timeout=30))
    assert sorted(r.status_code for r in replies) == [201] + [409] * 15
    assert requests.get(f"{api}/info", timeout=10).json()["counts"]["sessions"] == 1
    assert verify(redis_client, settings.key_prefix) == []


def test_racing_delroute_and_joins_stay_consistent(limited_server, redis_client, settings):
    """Joins racing a route's deletion either stop with it or fail: none survive."""
    api = limited_server.url + "/api/v1"
    owner = requests.post(f"{api}/user/addme", timeout=10).json()["uid"]
    guests = [requests.post(f"{api}/user/addme", timeout=10).json()["uid"] for _ in range(4)]
    rid = requests.post(f"{api}/addroute/uid/{owner}/steps/3", timeout=10).json()["rid"]

    def send(i):
        if i == 8:
            return requests.post(f"{api}/delroute/uid/{owner}/route/{rid}", timeout=30)
        return requests.post(f"{api}/join/uid/{guests[i % 4]}/route/{rid}", timeout=30)

    fire(16, send)
    info = requests.get(f"{api}/info", timeout=10).json()["counts"]
    assert info["routes"] == 0
    assert info["active_sessions"] == 0
    assert verify(redis_client, settings.key_prefix) == []
