"""Small helpers for driving the API in tests."""

from __future__ import annotations

ROUTE_TEXT = "START order\nSTEP check stock\nSTEP take payment\nSTOP\n"


def register(api, name: str | None = None) -> str:
    """Register a participant and return their access key."""
    path = "/api/v1/user/addme" + (f"?name={name}" if name else "")
    result = api.simulate_post(path)
    assert result.status_code == 201, result.json
    return result.json["uid"]


def add_route(api, key: str, text: str = ROUTE_TEXT) -> str:
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}", body=text, headers={"Content-Type": "text/plain"}
    )
    assert result.status_code == 201, result.json
    return result.json["rid"]


def join(api, key: str, rid: str) -> str:
    result = api.simulate_post(f"/api/v1/join/uid/{key}/route/{rid}")
    assert result.status_code == 201, result.json
    return result.json["sid"]


def stream_events(redis_client, prefix: str) -> list[dict]:
    return [fields for _id, fields in redis_client.xrange(f"{prefix}:events")]


def dashboard_app(app_kind: str, settings, request, dashboard):
    """Build the app that ``app_kind`` names, with the given dashboard settings.

    ``request`` is pytest's, from which the store fixture of that kind comes.
    """
    from damba import asgi, wsgi

    if app_kind == "wsgi":
        return wsgi.create_app(settings, request.getfixturevalue("store"), dashboard)
    return asgi.create_app(settings, request.getfixturevalue("async_redis_store"), dashboard)
