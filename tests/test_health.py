"""The health endpoints /healthz and /readyz, and the OpenAPI document."""

from __future__ import annotations

from falcon import testing
from tests.servers import free_port

from damba import __version__, commands
from damba.config import Settings
from damba.store.sync_store import RedisStore, connect
from damba.web.openapi import openapi_document
from damba.wsgi import create_app


def open_stream(store, settings) -> str:
    return store.open_stream(commands.init(__version__, settings.limits))


def test_liveness_ok(api):
    """/healthz returns 200 with the version, even before any stream exists."""
    result = api.simulate_get("/healthz")
    assert result.status_code == 200
    assert result.json["result"] == "ok"
    assert result.json["status"] == "alive"
    assert result.json["version"] == __version__


def test_readiness_ok(api, store, settings):
    """/readyz returns 200 and describes the stream once its init event is in."""
    init_id = open_stream(store, settings)
    result = api.simulate_get("/readyz")
    assert result.status_code == 200, result.json
    assert result.json["result"] == "ok"
    assert result.json["status"] == "ready"
    assert result.json["stream"]["key"] == settings.stream_key
    assert result.json["stream"]["length"] == 1
    assert result.json["stream"]["first_id"] == init_id
    assert result.json["stream"]["last_id"] == init_id


def test_readiness_follows_stream(api, store, settings):
    """After an action, /readyz reports the new last id and length."""
    open_stream(store, settings)
    registered = api.simulate_post("/api/v1/user/addme")
    assert registered.status_code == 201
    result = api.simulate_get("/readyz")
    assert result.status_code == 200
    assert result.json["stream"]["length"] == 2
    assert result.json["stream"]["last_id"] != result.json["stream"]["first_id"]


def test_readiness_missing_stream(api, settings):
    """/readyz returns 503 not_ready, naming the stream, when it does not exist."""
    result = api.simulate_get("/readyz")
    assert result.status_code == 503
    assert result.json["result"] == "error"
    assert result.json["code"] == "not_ready"
    assert settings.stream_key in result.json["desc"]


def test_readiness_foreign_stream(api, redis_client, settings):
    """/readyz returns 503 when the stream's first event is not init."""
    redis_client.xadd(settings.stream_key, {"event": "adduser", "dt": "x"})
    result = api.simulate_get("/readyz")
    assert result.status_code == 503
    assert result.json["code"] == "not_ready"
    assert "'adduser'" in result.json["desc"]


def test_readiness_appends_nothing(api, store, settings, redis_client):
    """Probing /readyz and /healthz adds no event to the stream."""
    open_stream(store, settings)
    for _ in range(3):
        api.simulate_get("/readyz")
        api.simulate_get("/healthz")
    assert redis_client.xlen(settings.stream_key) == 1


def test_redis_down_probes(key_prefix):
    """With Redis down, /readyz returns 503 store_unavailable and /healthz 200."""
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        key_prefix=key_prefix,
        redis_timeout=1.0,
    )
    client = connect(settings, settings.redis_url)
    api = testing.TestClient(create_app(settings, RedisStore(client, key_prefix)))

    ready = api.simulate_get("/readyz")
    assert ready.status_code == 503
    assert ready.json["code"] == "store_unavailable"
    assert api.simulate_get("/healthz").status_code == 200
    client.close()

def test_openapi_health_schemas(api):
    """The health operations name responses whose schemas the document defines."""
    document = openapi_document()
    schemas = document["components"]["schemas"]
    readiness = document["paths"]["/readyz"]["get"]["responses"]
    assert set(readiness) == {"200", "503"}
    for response in readiness.values():
        reference = response["content"]["application/json"]["schema"]["$ref"]
        assert reference.rsplit("/", 1)[1] in schemas
    assert "not_ready" in schemas["Error"]["properties"]["code"]["enum"]
