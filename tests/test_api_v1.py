"""API v1 through falcon.testing, against the WSGI and the ASGI app alike.

Most tests take the ``api`` fixture, which conftest parametrises over both
apps, so each runs twice and both apps must pass the same checks. The rest
build the apps themselves: one per app kind, or both to compare replies.
"""

from __future__ import annotations

import functools
import json
import uuid

import falcon
import pytest
from falcon import testing
from tests.helpers import ROUTE_TEXT, add_route, join, register, stream_events

from damba import asgi, wsgi
from damba.config import Settings
from damba.keys import hash_key
from damba.store import async_store
from damba.store.sync_store import RedisStore, connect


def error_code(result) -> str:
    assert result.json["result"] == "error", result.json
    return result.json["code"]


# ---------------------------------------------------------------- participants


def test_addme_returns_key(api):
    """Registering returns 201, a 32-character key and the chosen name."""
    result = api.simulate_post("/api/v1/user/addme?name=ann")
    assert result.status_code == 201
    assert result.json["result"] == "ok"
    assert result.json["name"] == "ann"
    assert len(result.json["uid"]) == 32


def test_addme_json_name(api):
    """A JSON body may carry the name instead of the query string."""
    result = api.simulate_post("/api/v1/user/addme", json={"name": "bea"})
    assert result.status_code == 201
    assert result.json["name"] == "bea"


def test_addme_generated_name(api):
    """Without a name the participant gets a generated one."""
    result = api.simulate_post("/api/v1/user/addme")
    assert result.status_code == 201
    assert result.json["name"].startswith("user-")


def test_addme_name_taken(api):
    """A second participant with a taken name gets 409 name_taken."""
    register(api, "cy")
    result = api.simulate_post("/api/v1/user/addme?name=cy")
    assert result.status_code == 409
    assert error_code(result) == "name_taken"


def test_addme_invalid_json(api):
    """A body that is not JSON gets 400 invalid_json."""
    result = api.simulate_post(
        "/api/v1/user/addme", body="{nope", headers={"Content-Type": "application/json"}
    )
    assert result.status_code == 400
    assert error_code(result) == "invalid_json"


def test_addme_wrong_media_type(api):
    """A name sent as form data gets 415 unsupported_media_type."""
    result = api.simulate_post(
        "/api/v1/user/addme",
        body="name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert result.status_code == 415
    assert error_code(result) == "unsupported_media_type"


def test_addme_maxusers(api, limits):
    """Registering past maxusers gets 409 maxusers_reached."""
    for number in range(limits.maxusers):
        register(api, f"p{number}")
    result = api.simulate_post("/api/v1/user/addme")
    assert result.status_code == 409
    assert error_code(result) == "maxusers_reached"


def test_body_too_large_recorded(api, settings, redis_client):
    """A body over DAMBA_MAX_BODY gets 413 and an error event naming the action."""
    body = json.dumps({"name": "x" * (settings.max_body + 10)})
    result = api.simulate_post(
        "/api/v1/user/addme", body=body, headers={"Content-Type": "application/json"}
    )
    assert result.status_code == 413
    assert error_code(result) == "body_too_large"
    last = stream_events(redis_client, settings.key_prefix)[-1]
    assert last["event"] == "error"
    assert last["code"] == "body_too_large"
    assert json.loads(last["data"])["action"] == "adduser"


def test_killme_removes_participant(api):
    """killme removes the participant, their routes and running sessions."""
    key = register(api, "dee")
    rid = add_route(api, key)
    join(api, key, rid)
    result = api.simulate_post(f"/api/v1/user/killme/uid/{key}")
    assert result.status_code == 200
    assert result.json["routes_deleted"] == [rid]
    assert result.json["sessions_stopped"] == 1
    assert api.simulate_get(f"/api/v1/info/user/{key}").status_code == 404
    assert api.simulate_get(f"/api/v1/info/route/{rid}").status_code == 404


def test_killme_unknown_key(api):
    """killme with a well-formed but unknown key gets 404 unknown_user."""
    result = api.simulate_post("/api/v1/user/killme/uid/" + "A" * 32)
    assert result.status_code == 404
    assert error_code(result) == "unknown_user"


def test_malformed_key(api):
    """A malformed key gets 400 invalid_key."""
    result = api.simulate_post("/api/v1/addroute/uid/short/steps/2")
    assert result.status_code == 400
    assert error_code(result) == "invalid_key"


# ---------------------------------------------------------------- routes


def test_addroute_text(api):
    """A text/plain route is parsed into its name and steps."""
    key = register(api)
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}",
        body=ROUTE_TEXT,
        headers={"Content-Type": "text/plain"},
    )
    assert result.status_code == 201
    route = result.json["route"]
    assert route["name"] == "order"
    assert route["steps"] == ["check stock", "take payment"]
    assert route["rid"] == result.json["rid"]


def test_addroute_json_text(api):
    """A route may arrive as JSON {"text": ...}."""
    key = register(api)
    result = api.simulate_post(f"/api/v1/addroute/uid/{key}", json={"text": ROUTE_TEXT})
    assert result.status_code == 201
    assert result.json["route"]["steps"] == ["check stock", "take payment"]


def test_addroute_steps(api):
    """A generated route has the requested number of steps."""
    key = register(api)
    result = api.simulate_post(f"/api/v1/addroute/uid/{key}/steps/4")
    assert result.status_code == 201
    assert len(result.json["route"]["steps"]) == 4


def test_addroute_invalid_text(api):
    """Invalid route text gets 422 invalid_route naming the line."""
    key = register(api)
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}",
        body="START a\nJUMP b\nSTOP",
        headers={"Content-Type": "text/plain"},
    )
    assert result.status_code == 422
    assert error_code(result) == "invalid_route"
    assert "Line 2" in result.json["desc"]


def test_addroute_too_many_steps(api, limits):
    """A step count over maxsteps gets 409 maxsteps_exceeded."""
    key = register(api)
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}/steps/{limits.maxsteps + 1}"
    )
    assert result.status_code == 409
    assert error_code(result) == "maxsteps_exceeded"


def test_addroute_bad_step_count(api):
    """A step count that is not a number gets 400 invalid_steps."""
    key = register(api)
    result = api.simulate_post(f"/api/v1/addroute/uid/{key}/steps/many")
    assert result.status_code == 400
    assert error_code(result) == "invalid_steps"


def test_addroute_empty_body(api):
    """addroute with no text gets 400 bad_request."""
    key = register(api)
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}", body="", headers={"Content-Type": "text/plain"}
    )
    assert result.status_code == 400
    assert error_code(result) == "bad_request"


def test_delroute_by_owner(api):
    """The owner deletes a route and its running session stops."""
    key = register(api)
    rid = add_route(api, key)
    sid = join(api, key, rid)
    result = api.simulate_post(f"/api/v1/delroute/uid/{key}/route/{rid}")
    assert result.status_code == 200
    assert result.json["sessions_stopped"] == 1
    session = api.simulate_get(f"/api/v1/info/session/{sid}").json
    assert session["status"] == "stopped"
    assert session["step"] == 999


def test_delroute_not_owner(api):
    """Another participant may not delete a route: 403 not_owner."""
    owner = register(api, "own")
    other = register(api, "oth")
    rid = add_route(api, owner)
    result = api.simulate_post(f"/api/v1/delroute/uid/{other}/route/{rid}")
    assert result.status_code == 403
    assert error_code(result) == "not_owner"


def test_delroute_unknown(api):
    """Deleting a route that does not exist gets 404 unknown_route."""
    key = register(api)
    result = api.simulate_post(f"/api/v1/delroute/uid/{key}/route/r000000000000")
    assert result.status_code == 404
    assert error_code(result) == "unknown_route"


# ---------------------------------------------------------------- sessions


def test_session_walks_to_finish(api):
    """join, then one step per STEP and one more reach STOP as finished."""
    key = register(api)
    rid = add_route(api, key)
    started = api.simulate_post(f"/api/v1/join/uid/{key}/route/{rid}")
    assert started.status_code == 201
    assert started.json["step"] == 0
    assert started.json["status"] == "running"
    first = api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}").json
    assert (first["step"], first["name"]) == (1, "check stock")
    second = api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}").json
    assert (second["step"], second["name"]) == (2, "take payment")
    last = api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}").json
    assert (last["step"], last["status"]) == (999, "finished")


def test_session_trace(api):
    """The session's results list every step reached, in order."""
    key = register(api)
    rid = add_route(api, key)
    sid = join(api, key, rid)
    for _ in range(3):
        api.simulate_post(f"/api/v1/step/uid/{key}/session/{sid}")
    result = api.simulate_get(f"/api/v1/info/session/{sid}")
    assert result.status_code == 200
    assert [entry["step"] for entry in result.json["trace"]] == [0, 1, 2, 999]
    assert result.json["status"] == "finished"


def test_step_ended_session(api):
    """Stepping a finished session gets 409 session_ended."""
    key = register(api)
    rid = add_route(api, key)
    sid = join(api, key, rid)
    for _ in range(3):
        api.simulate_post(f"/api/v1/step/uid/{key}/session/{sid}")
    result = api.simulate_post(f"/api/v1/step/uid/{key}/session/{sid}")
    assert result.status_code == 409
    assert error_code(result) == "session_ended"


def test_stop_by_route(api):
    """stop by route ends the session as stopped at step 999."""
    key = register(api)
    rid = add_route(api, key)
    join(api, key, rid)
    result = api.simulate_post(f"/api/v1/stop/uid/{key}/route/{rid}")
    assert result.status_code == 200
    assert result.json["status"] == "stopped"
    assert result.json["step"] == 999


def test_stop_by_session(api):
    """stop by session id ends that session."""
    key = register(api)
    rid = add_route(api, key)
    sid = join(api, key, rid)
    result = api.simulate_post(f"/api/v1/stop/uid/{key}/session/{sid}")
    assert result.status_code == 200
    assert result.json["sid"] == sid
    assert result.json["status"] == "stopped"


def test_join_twice(api):
    """A second join on a route with a running session gets 409 session_active."""
    key = register(api)
    rid = add_route(api, key)
    join(api, key, rid)
    result = api.simulate_post(f"/api/v1/join/uid/{key}/route/{rid}")
    assert result.status_code == 409
    assert error_code(result) == "session_active"


def test_step_without_session(api):
    """Stepping a route with no running session gets 404 no_active_session."""
    key = register(api)
    rid = add_route(api, key)
    result = api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}")
    assert result.status_code == 404
    assert error_code(result) == "no_active_session"


def test_step_others_session(api):
    """Moving another participant's session gets 403 not_your_session."""
    owner = register(api, "one")
    other = register(api, "two")
    rid = add_route(api, owner)
    sid = join(api, owner, rid)
    result = api.simulate_post(f"/api/v1/step/uid/{other}/session/{sid}")
    assert result.status_code == 403
    assert error_code(result) == "not_your_session"


def test_malformed_session_id(api):
    """A malformed session id gets 400 invalid_id."""
    key = register(api)
    result = api.simulate_post(f"/api/v1/step/uid/{key}/session/nope")
    assert result.status_code == 400
    assert error_code(result) == "invalid_id"


# ---------------------------------------------------------------- reads


def test_info_counts(api):
    """/info counts participants, routes and sessions, and the stream length."""
    key = register(api)
    rid = add_route(api, key)
    join(api, key, rid)
    result = api.simulate_get("/api/v1/info")
    assert result.status_code == 200
    assert result.json["counts"] == {
        "users": 1,
        "routes": 1,
        "sessions": 1,
        "active_sessions": 1,
    }
    assert result.json["stream"]["length"] >= 3


def test_info_users_hide_keys(api):
    """/info/users lists names and never a key or its hash."""
    key = register(api, "eve")
    result = api.simulate_get("/api/v1/info/users")
    assert result.status_code == 200
    assert [user["name"] for user in result.json["users"]] == ["eve"]
    assert key not in result.text
    assert hash_key(key) not in result.text


def test_info_user(api):
    """/info/user shows the key holder their routes and sessions."""
    key = register(api, "fay")
    rid = add_route(api, key)
    join(api, key, rid)
    result = api.simulate_get(f"/api/v1/info/user/{key}")
    assert result.status_code == 200
    assert [route["rid"] for route in result.json["user"]["routes"]] == [rid]
    assert len(result.json["user"]["sessions"]) == 1
    assert key not in result.text


def test_info_routes_and_route(api):
    """/info/routes lists the route and /info/route shows its steps."""
    key = register(api, "gus")
    rid = add_route(api, key)
    listed = api.simulate_get("/api/v1/info/routes").json["routes"]
    assert [route["rid"] for route in listed] == [rid]
    assert listed[0]["owner"] == "gus"
    detail = api.simulate_get(f"/api/v1/info/route/{rid}")
    assert detail.status_code == 200
    assert detail.json["route"]["steps"] == ["check stock", "take payment"]


def test_info_unknown_session(api):
    """An unknown session id gets 404 unknown_session."""
    result = api.simulate_get("/api/v1/info/session/s0000000000000000")
    assert result.status_code == 404
    assert error_code(result) == "unknown_session"


def test_info_events_page(api):
    """/info/events pages through the stream, newest first with order=desc."""
    register(api, "hal")
    register(api, "ida")
    result = api.simulate_get("/api/v1/info/events?order=desc&count=2")
    assert result.status_code == 200
    names = [event["data"]["name"] for event in result.json["events"]]
    assert names == ["ida", "hal"]


def test_info_events_bad_count(api):
    """A count that is not a number gets 400 invalid_query."""
    result = api.simulate_get("/api/v1/info/events?count=lots")
    assert result.status_code == 400
    assert error_code(result) == "invalid_query"


def test_openapi_document(api):
    """The OpenAPI document lists every endpoint."""
    result = api.simulate_get("/api/v1/openapi.json")
    assert result.status_code == 200
    assert result.json["openapi"].startswith("3.")
    assert "/api/v1/join/uid/{uid}/route/{rid}" in result.json["paths"]


# ---------------------------------------------------------------- HTTP errors


def test_unknown_path(api):
    """An unknown path gets a JSON 404 not_found."""
    result = api.simulate_get("/api/v1/nowhere")
    assert result.status_code == 404
    assert error_code(result) == "not_found"
    assert result.headers["content-type"].startswith("application/json")


def test_wrong_method(api):
    """GET on an action gets a JSON 405 naming the allowed method."""
    result = api.simulate_get("/api/v1/user/addme")
    assert result.status_code == 405
    assert error_code(result) == "method_not_allowed"
    assert "POST" in result.json["desc"]
    assert "POST" in result.headers["allow"]


def test_trailing_slash(api):
    """A trailing slash reaches the same endpoint."""
    assert api.simulate_get("/api/v1/info/").status_code == 200


def test_store_down_returns_503(app_kind):
    """With Redis unreachable a request gets a JSON 503 store_unavailable."""
    dead = "redis://127.0.0.1:1"
    settings = Settings(redis_url=dead, key_prefix="unreachable", redis_timeout=1.0)
    if app_kind == "wsgi":
        app = wsgi.create_app(
            settings, RedisStore(connect(settings, dead), "unreachable")
        )
    else:
        store = async_store.AsyncRedisStore(
            lambda: async_store.connect(settings, dead), "unreachable"
        )
        app = asgi.create_app(settings, store)
    result = testing.TestClient(app).simulate_get("/api/v1/info")
    assert result.status_code == 503
    assert error_code(result) == "store_unavailable"


# ---------------------------------------------------------------- both apps


def _script(api) -> list[tuple[int, dict]]:
    """Run one fixed mix of requests, good and bad, and return each reply."""
    replies = []

    def keep(result):
        replies.append((result.status_code, result.json))
        return result.json

    key = keep(api.simulate_post("/api/v1/user/addme?name=ann"))["uid"]
    keep(api.simulate_post("/api/v1/user/addme?name=ann"))
    keep(api.simulate_post("/api/v1/user/addme", json={"name": ""}))
    rid = keep(api.simulate_post(f"/api/v1/addroute/uid/{key}/steps/2"))["rid"]
    keep(
        api.simulate_post(
            f"/api/v1/addroute/uid/{key}",
            body="STEP x",
            headers={"Content-Type": "text/plain"},
        )
    )
    sid = keep(api.simulate_post(f"/api/v1/join/uid/{key}/route/{rid}"))["sid"]
    keep(api.simulate_post(f"/api/v1/join/uid/{key}/route/{rid}"))
    for _ in range(4):
        keep(api.simulate_post(f"/api/v1/step/uid/{key}/session/{sid}"))
    keep(api.simulate_get(f"/api/v1/info/session/{sid}"))
    keep(api.simulate_get(f"/api/v1/info/route/{rid}"))
    keep(api.simulate_get("/api/v1/info/users"))
    keep(api.simulate_get("/api/v1/info"))
    keep(api.simulate_get("/api/v1/info/events?count=100"))
    keep(api.simulate_put("/api/v1/info"))
    keep(api.simulate_post(f"/api/v1/user/killme/uid/{key}"))
    keep(api.simulate_post(f"/api/v1/user/killme/uid/{key}"))
    return replies


def _normalised(replies, values: dict[str, str]) -> str:
    """Return the replies as JSON with generated ids and times replaced by names."""
    text = json.dumps(replies, sort_keys=True)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, values[value])
    return text


def _generated_values(replies) -> dict[str, str]:
    """Collect the ids, keys and times that differ between two runs of the script."""
    values: dict[str, str] = {}

    def visit(node):
        if isinstance(node, dict):
            for field, value in node.items():
                if (
                    field
                    in (
                        "uid",
                        "rid",
                        "sid",
                        "id",
                        "last_id",
                        "dt",
                        "at",
                        "created",
                        "started",
                        "ended",
                        "joined",
                    )
                    and isinstance(value, str)
                    and value
                ):
                    values.setdefault(value, f"<{field}{len(values)}>")
                visit(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                visit(item)

    visit(replies)
    return values


def test_apps_reply_alike(redis_url):
    """The same requests get the same statuses and bodies from both apps."""
    texts = {}
    for kind in ("wsgi", "asgi"):
        prefix = f"test-{uuid.uuid4().hex[:12]}-{kind}"
        settings = Settings(redis_url=redis_url, key_prefix=prefix)
        client = connect(settings, redis_url)
        if kind == "wsgi":
            app = wsgi.create_app(settings, RedisStore(client, prefix))
        else:
            store = async_store.AsyncRedisStore(
                functools.partial(async_store.connect, settings, redis_url), prefix
            )
            app = asgi.create_app(settings, store)
        try:
            replies = _script(testing.TestClient(app))
        finally:
            if kind == "asgi":
                falcon.async_to_sync(store.aclose)
            leftovers = list(client.scan_iter(match=f"{prefix}:*"))
            if leftovers:
                client.delete(*leftovers)
            client.close()
        texts[kind] = _normalised(replies, _generated_values(replies))
    assert texts["wsgi"] == texts["asgi"]


@pytest.mark.parametrize("path", ["/api/v1/info", "/api/v1/info/users"])
def test_reads_append_nothing(api, settings, redis_client, path):
    """Reads leave the event stream as it was."""
    register(api)
    before = len(stream_events(redis_client, settings.key_prefix))
    assert api.simulate_get(path).status_code == 200
    assert len(stream_events(redis_client, settings.key_prefix)) == before
