"""API v1 through falcon.testing, against a real Valkey or Redis.

Most tests take the ``api`` fixture, which conftest parametrises over the
WSGI and the ASGI app, so both apps must pass the same checks. The rest
build the apps themselves: one per app kind, or both to compare replies.
"""

from __future__ import annotations

import functools
import json
import uuid

import falcon
import orjson
import pytest
from falcon import testing

from damba import asgi, wsgi
from damba.config import Limits, Settings
from damba.keys import hash_key
from damba.store import async_store
from damba.store.sync_store import RedisStore, connect
from tests.helpers import ROUTE_TEXT, add_route, join, register, stream_events


def assert_error(result, status: int, code: str) -> None:
    assert result.status_code == status, result.text
    body = result.json
    assert body["result"] == "error"
    assert body["code"] == code
    assert isinstance(body["desc"], str) and len(body["desc"]) > 10


# ---------------------------------------------------------------- participants


def test_addme_returns_key_and_name(api):
    """addme returns a 32-character key and the chosen name."""
    result = api.simulate_post("/api/v1/user/addme", params={"name": "Анна"})
    assert result.status_code == 201
    assert result.json["result"] == "ok"
    assert result.json["name"] == "Анна"
    assert len(result.json["uid"]) == 32


def test_addme_name_from_json_body(api):
    """The name may come in a JSON body."""
    result = api.simulate_post("/api/v1/user/addme", json={"name": "Boris"})
    assert result.status_code == 201
    assert result.json["name"] == "Boris"


def test_addme_without_name_generates_one(api):
    result = api.simulate_post("/api/v1/user/addme")
    assert result.status_code == 201
    assert result.json["name"].startswith("user-")


def test_addme_keys_are_distinct(api):
    keys = {register(api) for _ in range(5)}
    assert len(keys) == 5


@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"params": {"name": "x" * 81}}, "invalid_name"),
        ({"params": {"name": "   "}}, "invalid_name"),
        ({"json": {"name": 5}}, "bad_request"),
        ({"body": "{not json", "headers": {"Content-Type": "application/json"}}, "invalid_json"),
        ({"body": "[1]", "headers": {"Content-Type": "application/json"}}, "invalid_json"),
    ],
)
def test_addme_rejects_bad_names(api, kwargs, code):
    assert_error(api.simulate_post("/api/v1/user/addme", **kwargs), 400, code)


def test_addme_rejects_control_characters(api):
    result = api.simulate_post("/api/v1/user/addme", json={"name": "a\nb"})
    assert_error(result, 400, "invalid_name")


@pytest.mark.parametrize(
    "media_type,body",
    [("application/xml", "<name/>"), ("application/x-www-form-urlencoded", "name=x")],
)
def test_addme_rejects_other_media(api, media_type, body):
    """A name sent as XML or form data gets 415 unsupported_media_type."""
    result = api.simulate_post(
        "/api/v1/user/addme", body=body, headers={"Content-Type": media_type}
    )
    assert_error(result, 415, "unsupported_media_type")


def test_addme_rejects_taken_name(api):
    register(api, "dup")
    assert_error(api.simulate_post("/api/v1/user/addme?name=dup"), 409, "name_taken")


@pytest.mark.parametrize("limits", [Limits(maxusers=2)])
def test_addme_rejects_past_maxusers(api):
    """The participant after maxusers gets a 409 naming the limit."""
    register(api)
    register(api)
    result = api.simulate_post("/api/v1/user/addme")
    assert_error(result, 409, "maxusers_reached")
    assert "2" in result.json["desc"]


def test_addme_body_too_large(api, settings, redis_client):
    """A JSON body over DAMBA_MAX_BODY gets 413 and an error event naming adduser."""
    body = json.dumps({"name": "x" * (settings.max_body + 10)})
    result = api.simulate_post(
        "/api/v1/user/addme", body=body, headers={"Content-Type": "application/json"}
    )
    assert_error(result, 413, "body_too_large")
    last = stream_events(redis_client, settings.key_prefix)[-1]
    assert last["event"] == "error"
    assert last["code"] == "body_too_large"
    assert json.loads(last["data"])["action"] == "adduser"


def test_killme_removes_participant(api):
    """killme removes the participant, their routes and running sessions."""
    key = register(api, "leaver")
    rid = add_route(api, key)
    join(api, key, rid)
    result = api.simulate_post(f"/api/v1/user/killme/uid/{key}")
    assert result.status_code == 200
    assert result.json["routes_deleted"] == [rid]
    assert result.json["sessions_stopped"] == 1
    assert api.simulate_get("/api/v1/info/users").json["users"] == []
    assert_error(api.simulate_get(f"/api/v1/info/user/{key}"), 404, "unknown_user")
    assert_error(api.simulate_get(f"/api/v1/info/route/{rid}"), 404, "unknown_route")
    assert_error(api.simulate_post(f"/api/v1/user/killme/uid/{key}"), 404, "unknown_user")


def test_killme_frees_the_name(api):
    key = register(api, "again")
    api.simulate_post(f"/api/v1/user/killme/uid/{key}")
    assert register(api, "again")


def test_killme_stops_other_participants_sessions_on_owned_routes(api):
    owner = register(api, "owner")
    guest = register(api, "guest")
    rid = add_route(api, owner)
    sid = join(api, guest, rid)
    api.simulate_post(f"/api/v1/user/killme/uid/{owner}")
    session = api.simulate_get(f"/api/v1/info/session/{sid}").json
    assert session["status"] == "stopped"
    assert session["step"] == 999
    guest_info = api.simulate_get(f"/api/v1/info/user/{guest}").json["user"]
    assert guest_info["sessions"] == []
    assert guest_info["sessions_stopped"] == 1


def test_unknown_and_malformed_keys(api):
    """A well-formed unknown key gets 404 unknown_user; a malformed one 400 invalid_key."""
    unknown = "A" * 32
    assert_error(api.simulate_post(f"/api/v1/user/killme/uid/{unknown}"), 404, "unknown_user")
    assert_error(api.simulate_post("/api/v1/user/killme/uid/short"), 400, "invalid_key")
    assert_error(api.simulate_post("/api/v1/addroute/uid/short/steps/2"), 400, "invalid_key")
    assert_error(api.simulate_get(f"/api/v1/info/user/{unknown}"), 404, "unknown_user")


# ---------------------------------------------------------------- routes


def test_addroute_from_text(api):
    key = register(api, "author")
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}", body=ROUTE_TEXT, headers={"Content-Type": "text/plain"}
    )
    assert result.status_code == 201
    route = result.json["route"]
    assert route["rid"] == result.json["rid"]
    assert route["name"] == "order"
    assert route["steps"] == ["check stock", "take payment"]
    assert route["owner"] == "author"
    assert route["text"] == ROUTE_TEXT


def test_addroute_from_json_text(api):
    key = register(api)
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}", json={"text": "START а\nSTEP б\nSTOP"}
    )
    assert result.status_code == 201
    assert result.json["route"]["steps"] == ["б"]


def test_addroute_from_step_count(api):
    key = register(api)
    result = api.simulate_post(f"/api/v1/addroute/uid/{key}/steps/3")
    assert result.status_code == 201
    assert result.json["route"]["steps"] == ["step 1", "step 2", "step 3"]


@pytest.mark.parametrize(
    "steps,status,code",
    [("0", 400, "invalid_steps"), ("-1", 400, "invalid_steps"), ("abc", 400, "invalid_steps"),
     ("1_0", 400, "invalid_steps"), ("+3", 400, "invalid_steps"), ("%D9%A3", 400, "invalid_steps"),
     ("11", 409, "maxsteps_exceeded"), ("9" * 5000, 409, "maxsteps_exceeded")],
)
def test_addroute_rejects_bad_step_counts(api, steps, status, code):
    key = register(api)
    assert_error(api.simulate_post(f"/api/v1/addroute/uid/{key}/steps/{steps}"), status, code)


@pytest.mark.parametrize(
    "text,line",
    [("START a\nSTEP b\nFINISH\n", "Line 3:"), ("START a\nJUMP b\nSTOP", "Line 2:")],
)
def test_addroute_invalid_text_gives_422_with_line(api, text, line):
    """Invalid route text gets 422 invalid_route naming the first bad line."""
    key = register(api)
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}", body=text, headers={"Content-Type": "text/plain"}
    )
    assert_error(result, 422, "invalid_route")
    assert result.json["desc"].startswith(line)


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"}])
def test_addroute_empty_body(api, headers):
    """addroute with no text gets 400 bad_request, with or without a media type."""
    key = register(api)
    result = api.simulate_post(f"/api/v1/addroute/uid/{key}", body="", headers=headers)
    assert_error(result, 400, "bad_request")


def test_addroute_invalid_utf8(api):
    key = register(api)
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}", body=b"START \xff\nSTEP a\nSTOP",
        headers={"Content-Type": "text/plain"},
    )
    assert_error(result, 400, "bad_request")


def test_addroute_unknown_user(api):
    result = api.simulate_post(f"/api/v1/addroute/uid/{'B' * 32}/steps/2")
    assert_error(result, 404, "unknown_user")


@pytest.mark.parametrize("limits", [Limits(maxroutes=1)])
def test_addroute_rejects_past_maxroutes(api):
    key = register(api)
    add_route(api, key)
    assert_error(api.simulate_post(f"/api/v1/addroute/uid/{key}/steps/2"), 409, "maxroutes_reached")


def test_body_over_limit_gives_413(api, settings):
    key = register(api)
    body = "START a\n" + "#" * settings.max_body + "\nSTEP b\nSTOP"
    result = api.simulate_post(
        f"/api/v1/addroute/uid/{key}", body=body, headers={"Content-Type": "text/plain"}
    )
    assert_error(result, 413, "body_too_large")


def test_delroute_by_owner_stops_sessions(api):
    """Deleting a route stops the sessions on it, the owner's and a guest's."""
    owner = register(api)
    guest = register(api)
    rid = add_route(api, owner)
    sid = join(api, guest, rid)
    own_sid = join(api, owner, rid)
    result = api.simulate_post(f"/api/v1/delroute/uid/{owner}/route/{rid}")
    assert result.status_code == 200
    assert result.json["sessions_stopped"] == 2
    for stopped in (sid, own_sid):
        session = api.simulate_get(f"/api/v1/info/session/{stopped}").json
        assert session["status"] == "stopped"
        assert session["step"] == 999
    assert api.simulate_get("/api/v1/info/routes").json["routes"] == []
    # The guest may join another route later: the stopped session no longer blocks.
    assert api.simulate_get(f"/api/v1/info/user/{guest}").json["user"]["sessions"] == []


def test_delroute_by_other_participant_is_403(api):
    owner = register(api)
    other = register(api)
    rid = add_route(api, owner)
    assert_error(api.simulate_post(f"/api/v1/delroute/uid/{other}/route/{rid}"), 403, "not_owner")
    assert api.simulate_get(f"/api/v1/info/route/{rid}").status_code == 200


def test_delroute_unknown_and_malformed(api):
    key = register(api)
    assert_error(api.simulate_post(f"/api/v1/delroute/uid/{key}/route/r000000000000"), 404, "unknown_route")
    assert_error(api.simulate_post(f"/api/v1/delroute/uid/{key}/route/nope"), 400, "invalid_id")


def test_info_routes_and_route(api):
    key = register(api, "lister")
    rid = add_route(api, key)
    join(api, key, rid)
    routes = api.simulate_get("/api/v1/info/routes").json["routes"]
    assert [route["rid"] for route in routes] == [rid]
    assert routes[0]["active_sessions"] == 1
    assert routes[0]["owner"] == "lister"
    detail = api.simulate_get(f"/api/v1/info/route/{rid}")
    assert detail.status_code == 200
    route = detail.json["route"]
    assert route["steps"] == ["check stock", "take payment"]
    assert route["text"] == ROUTE_TEXT
    assert route["active_by_step"] == {"0": 1}


# ---------------------------------------------------------------- sessions


def test_session_walks_to_finish(api):
    """join starts at START; steps reach each STEP, then STOP as finished."""
    key = register(api)
    rid = add_route(api, key)
    started = api.simulate_post(f"/api/v1/join/uid/{key}/route/{rid}")
    assert started.status_code == 201
    joined = started.json
    assert (joined["step"], joined["name"], joined["status"]) == (0, "order", "running")
    first = api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}").json
    assert (first["step"], first["name"], first["status"]) == (1, "check stock", "running")
    second = api.simulate_post(f"/api/v1/step/uid/{key}/session/{joined['sid']}").json
    assert (second["step"], second["name"]) == (2, "take payment")
    last = api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}").json
    assert (last["step"], last["name"], last["status"]) == (999, "STOP", "finished")
    assert last["sid"] == joined["sid"]


def test_session_results_have_trace(api):
    key = register(api, "tracer")
    rid = add_route(api, key)
    sid = join(api, key, rid)
    for _ in range(3):
        api.simulate_post(f"/api/v1/step/uid/{key}/session/{sid}")
    reply = api.simulate_get(f"/api/v1/info/session/{sid}")
    assert reply.status_code == 200
    result = reply.json
    assert result["status"] == "finished"
    assert result["user"] == "tracer"
    assert [entry["step"] for entry in result["trace"]] == [0, 1, 2, 999]
    assert [entry["name"] for entry in result["trace"]] == ["order", "check stock", "take payment", "STOP"]
    times = [entry["at"] for entry in result["trace"]]
    assert times == sorted(times)
    assert result["ended"] == times[-1]
    assert "uid" not in result


def test_step_after_finish_is_409(api):
    key = register(api)
    rid = add_route(api, key, "START a\nSTEP b\nSTOP")
    sid = join(api, key, rid)
    api.simulate_post(f"/api/v1/step/uid/{key}/session/{sid}")
    api.simulate_post(f"/api/v1/step/uid/{key}/session/{sid}")
    assert_error(api.simulate_post(f"/api/v1/step/uid/{key}/session/{sid}"), 409, "session_ended")
    assert_error(api.simulate_post(f"/api/v1/stop/uid/{key}/session/{sid}"), 409, "session_ended")
    assert_error(api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}"), 404, "no_active_session")


def test_stop_ends_session_as_stopped(api):
    key = register(api)
    rid = add_route(api, key)
    sid = join(api, key, rid)
    api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}")
    result = api.simulate_post(f"/api/v1/stop/uid/{key}/route/{rid}")
    assert result.status_code == 200
    assert (result.json["step"], result.json["status"]) == (999, "stopped")
    info = api.simulate_get(f"/api/v1/info/session/{sid}").json
    assert info["status"] == "stopped"
    assert [entry["step"] for entry in info["trace"]] == [0, 1, 999]


def test_join_twice_is_409_until_session_ends(api):
    key = register(api)
    rid = add_route(api, key)
    sid = join(api, key, rid)
    result = api.simulate_post(f"/api/v1/join/uid/{key}/route/{rid}")
    assert_error(result, 409, "session_active")
    assert sid in result.json["desc"]
    api.simulate_post(f"/api/v1/stop/uid/{key}/session/{sid}")
    assert join(api, key, rid) != sid


def test_many_sessions_on_different_routes(api):
    key = register(api)
    first, second = add_route(api, key), add_route(api, key)
    sids = {join(api, key, first), join(api, key, second)}
    assert len(sids) == 2
    assert api.simulate_get("/api/v1/info").json["counts"]["active_sessions"] == 2


def test_other_participants_session_is_403(api):
    owner = register(api)
    other = register(api)
    rid = add_route(api, owner)
    sid = join(api, owner, rid)
    assert_error(api.simulate_post(f"/api/v1/step/uid/{other}/session/{sid}"), 403, "not_your_session")
    assert_error(api.simulate_post(f"/api/v1/stop/uid/{other}/session/{sid}"), 403, "not_your_session")
    assert_error(api.simulate_post(f"/api/v1/step/uid/{other}/route/{rid}"), 404, "no_active_session")


def test_session_errors_for_unknown_ids(api):
    key = register(api)
    assert_error(api.simulate_post(f"/api/v1/join/uid/{key}/route/r000000000000"), 404, "unknown_route")
    assert_error(api.simulate_post(f"/api/v1/step/uid/{key}/session/s0000000000000000"), 404, "unknown_session")
    assert_error(api.simulate_post(f"/api/v1/step/uid/{key}/session/xyz"), 400, "invalid_id")
    assert_error(api.simulate_get("/api/v1/info/session/s0000000000000000"), 404, "unknown_session")
    assert_error(api.simulate_get("/api/v1/info/session/bad"), 400, "invalid_id")


# ---------------------------------------------------------------- info and events


def test_info_summary(api, settings):
    key = register(api)
    add_route(api, key)
    info = api.simulate_get("/api/v1/info").json
    assert info["limits"] == {"maxusers": 10, "maxroutes": 10, "maxsteps": 10}
    assert info["counts"]["users"] == 1
    assert info["counts"]["routes"] == 1
    assert info["stream"]["length"] == 2
    assert info["version"]


def test_info_users_show_names_never_keys(api):
    """/info/users lists names and never a key or its hash."""
    key = register(api, "visible")
    result = api.simulate_get("/api/v1/info/users")
    assert result.status_code == 200
    assert [user["name"] for user in result.json["users"]] == ["visible"]
    body = result.text
    assert "visible" in body
    assert key not in body
    assert hash_key(key) not in body


def test_events_page_shows_the_run(api):
    key = register(api)
    rid = add_route(api, key)
    join(api, key, rid)
    events = api.simulate_get("/api/v1/info/events").json["events"]
    assert [event["event"] for event in events] == ["adduser", "addroute", "startsess"]
    after = events[0]["id"]
    rest = api.simulate_get("/api/v1/info/events", params={"after": after, "count": "1"}).json
    assert [event["event"] for event in rest["events"]] == ["addroute"]
    newest = api.simulate_get("/api/v1/info/events", params={"order": "desc", "count": "1"}).json
    assert newest["events"][0]["event"] == "startsess"


@pytest.mark.parametrize(
    "params",
    [{"after": "0-0", "order": "desc"}, {"after": "18446744073709551615-18446744073709551615"}],
)
def test_events_page_beyond_the_ends_is_empty(api, params):
    """Reading past either end of the id space returns an empty page."""
    register(api)
    result = api.simulate_get("/api/v1/info/events", params=params)
    assert result.status_code == 200
    assert result.json["events"] == []


@pytest.mark.parametrize(
    "params",
    [{"count": "0"}, {"count": "x"}, {"after": "abc"}, {"count": "5000"}, {"count": "1_0"},
     {"count": "9" * 5000}, {"order": "DESC"}, {"order": "sideways"}, {"after": "1\n"},
     {"after": "99999999999999999999"}],
)
def test_events_rejects_bad_query(api, params):
    assert_error(api.simulate_get("/api/v1/info/events", params=params), 400, "invalid_query")


# ---------------------------------------------------------------- the event stream


def test_every_action_appends_one_event(api, redis_client, settings):
    """Accepted and rejected actions each append exactly one event."""
    key = register(api)
    rid = add_route(api, key)
    join(api, key, rid)
    api.simulate_post(f"/api/v1/join/uid/{key}/route/{rid}")  # rejected: already running
    api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}")
    api.simulate_post(f"/api/v1/stop/uid/{key}/route/{rid}")
    api.simulate_post(f"/api/v1/delroute/uid/{key}/route/{rid}")
    api.simulate_post(f"/api/v1/user/killme/uid/{key}")
    api.simulate_get("/api/v1/info")  # reads append nothing
    events = stream_events(redis_client, settings.key_prefix)
    assert [e["event"] for e in events] == [
        "adduser", "addroute", "startsess", "error", "stepsess", "stopsess", "delroute", "deluser",
    ]
    error = events[3]
    assert error["result"] == "error"
    assert error["code"] == "session_active"
    assert orjson.loads(error["data"])["action"] == "startsess"


def test_rejected_requests_are_recorded(api, redis_client, settings):
    """Malformed input and oversize bodies on actions append error events."""
    api.simulate_post("/api/v1/user/addme", json={"name": ""})
    api.simulate_post("/api/v1/addroute/uid/short/steps/2")
    api.simulate_post(f"/api/v1/addroute/uid/{'C' * 32}", body="x" * (settings.max_body + 1))
    events = stream_events(redis_client, settings.key_prefix)
    assert [e["code"] for e in events] == ["invalid_name", "invalid_key", "body_too_large"]
    assert all(e["event"] == "error" for e in events)


def test_stream_never_holds_the_key(api, redis_client, settings):
    key = register(api, "secretive")
    rid = add_route(api, key)
    join(api, key, rid)
    api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}")
    api.simulate_post(f"/api/v1/user/killme/uid/{key}")
    dump = repr(redis_client.xrange(f"{settings.key_prefix}:events"))
    for stored in redis_client.scan_iter(match=f"{settings.key_prefix}:*"):
        if redis_client.type(stored) == "string":
            dump += redis_client.get(stored)
    assert key not in dump
    assert hash_key(key) in dump


# ---------------------------------------------------------------- HTTP edges


@pytest.mark.parametrize(
    "method,path,status,code",
    [
        ("GET", "/api/nothing", 404, "not_found"),
        ("GET", "/api/v1/nothing", 404, "not_found"),
        ("GET", "/api/v1/user/addme", 405, "method_not_allowed"),
        ("POST", "/api/v1/info", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/info/routes", 405, "method_not_allowed"),
        ("PUT", "/api/v1/join/uid/x/route/y", 405, "method_not_allowed"),
    ],
)
def test_http_errors_are_json(api, method, path, status, code):
    result = api.simulate_request(method, path, headers={"Accept": "text/html"})
    assert_error(result, status, code)
    assert result.headers["content-type"].startswith("application/json")


def test_trailing_slash_is_accepted(api):
    assert api.simulate_get("/api/v1/info/").status_code == 200


def test_store_down_gives_503(app_kind, settings):
    """With Redis unreachable, requests get a JSON 503, not a 500."""
    dead = "redis://127.0.0.1:1"
    down = Settings(redis_url=dead, key_prefix=settings.key_prefix, redis_timeout=0.5)
    if app_kind == "wsgi":
        app = wsgi.create_app(down, RedisStore(connect(down, dead), down.key_prefix))
    else:
        store = async_store.AsyncRedisStore(
            lambda: async_store.connect(down, dead), down.key_prefix
        )
        app = asgi.create_app(down, store)
    api = testing.TestClient(app)
    assert_error(api.simulate_get("/api/v1/info"), 503, "store_unavailable")
    assert_error(api.simulate_post("/api/v1/user/addme"), 503, "store_unavailable")


def test_head_is_served_where_get_is(api):
    result = api.simulate_head("/api/v1/info")
    assert result.status_code == 200
    assert result.text == ""


def test_options_lists_methods_as_json(api):
    result = api.simulate_options("/api/v1/info")
    assert result.status_code == 200
    assert result.json["allow"] == ["GET", "HEAD", "OPTIONS"]
    assert result.headers["allow"] == "GET, HEAD, OPTIONS"
    action = api.simulate_options("/api/v1/user/addme")
    assert action.json["allow"] == ["POST", "OPTIONS"]


def test_method_not_allowed_names_allowed_methods(api):
    """A 405 names the allowed methods in its message and its Allow header."""
    result = api.simulate_post("/api/v1/info")
    assert_error(result, 405, "method_not_allowed")
    assert "GET, HEAD, OPTIONS" in result.json["desc"]
    action = api.simulate_get("/api/v1/user/addme")
    assert_error(action, 405, "method_not_allowed")
    assert "POST" in action.json["desc"]
    assert "POST" in action.headers["allow"]


def test_invalid_ids_with_newline_are_malformed(api):
    """A trailing newline does not slip past the id and key checks."""
    key = register(api)
    assert_error(api.simulate_get("/api/v1/info/session/s0000000000000000%0A"), 400, "invalid_id")
    assert_error(api.simulate_post(f"/api/v1/join/uid/{key}/route/r000000000000%0A"), 400, "invalid_id")
    assert_error(api.simulate_post(f"/api/v1/user/killme/uid/{key}%0A"), 400, "invalid_key")


def test_names_are_normalized_before_uniqueness(api):
    """The same name in NFC and NFD is one name."""
    register(api, "Am%C3%A9lie")
    assert_error(api.simulate_post("/api/v1/user/addme?name=Ame%CC%81lie"), 409, "name_taken")


@pytest.mark.parametrize(
    "name",
    ["%D9%85%DB%8C%E2%80%8C%D8%AE%D9%88%D8%A7%D9%87%D9%85", "%F0%9F%91%A9%E2%80%8D%F0%9F%92%BB",
     "Anna%C2%A0Maria", "a%E3%80%80b"],
)
def test_addme_accepts_names_of_any_script(api, name):
    assert api.simulate_post(f"/api/v1/user/addme?name={name}").status_code == 201


@pytest.mark.parametrize("name", ["%FF%FE", "%ED%A0%80", "%C0%AF"])
def test_addme_rejects_invalid_utf8_query(api, name):
    assert_error(api.simulate_post(f"/api/v1/user/addme?name={name}"), 400, "bad_request")


def test_user_record_lists_recent_sessions(api):
    """Ended sessions stay findable from the participant's record."""
    key = register(api)
    rid = add_route(api, key, "START a\nSTEP b\nSTOP")
    first = join(api, key, rid)
    api.simulate_post(f"/api/v1/stop/uid/{key}/session/{first}")
    second = join(api, key, rid)
    user = api.simulate_get(f"/api/v1/info/user/{key}").json["user"]
    assert [s["sid"] for s in user["sessions"]] == [second]
    assert [s["sid"] for s in user["recent_sessions"]] == [first]
    assert user["routes_owned"] == 1
    assert user["recent_sessions"][0]["status"] == "stopped"


@pytest.mark.parametrize(
    "first,second",
    [("Anna", "anna"), ("Anna", "ANNA"), ("An%20na", "An%20%20na"), ("Anna", "Anna%C2%A0")],
)
def test_names_differing_in_case_or_spacing_are_taken(api, first, second):
    """Names that differ only in case or spacing count as the same name."""
    register(api, first)
    assert_error(api.simulate_post(f"/api/v1/user/addme?name={second}"), 409, "name_taken")


# ---------------------------------------------------------------- more sessions and reads


def test_stop_by_session(api):
    """stop by session id ends that session."""
    key = register(api)
    rid = add_route(api, key)
    sid = join(api, key, rid)
    result = api.simulate_post(f"/api/v1/stop/uid/{key}/session/{sid}")
    assert result.status_code == 200
    assert result.json["sid"] == sid
    assert result.json["status"] == "stopped"


def test_step_without_session(api):
    """Stepping a route with no running session gets 404 no_active_session."""
    key = register(api)
    rid = add_route(api, key)
    result = api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}")
    assert_error(result, 404, "no_active_session")


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


def test_events_newest_first(api):
    """/info/events pages through the stream, newest first with order=desc."""
    register(api, "hal")
    register(api, "ida")
    result = api.simulate_get("/api/v1/info/events?order=desc&count=2")
    assert result.status_code == 200
    names = [event["data"]["name"] for event in result.json["events"]]
    assert names == ["ida", "hal"]


# ---------------------------------------------------------------- both apps


def run_script(api) -> list[tuple[int, dict]]:
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


def normalised(replies, values: dict[str, str]) -> str:
    """Return the replies as JSON with generated ids and times replaced by names."""
    text = json.dumps(replies, sort_keys=True)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, values[value])
    return text


def generated_values(replies) -> dict[str, str]:
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
            replies = run_script(testing.TestClient(app))
        finally:
            if kind == "asgi":
                falcon.async_to_sync(store.aclose)
            leftovers = list(client.scan_iter(match=f"{prefix}:*"))
            if leftovers:
                client.delete(*leftovers)
            client.close()
        texts[kind] = normalised(replies, generated_values(replies))
    assert texts["wsgi"] == texts["asgi"]


@pytest.mark.parametrize("path", ["/api/v1/info", "/api/v1/info/users"])
def test_reads_append_nothing(api, settings, redis_client, path):
    """Reads leave the event stream as it was."""
    register(api)
    before = len(stream_events(redis_client, settings.key_prefix))
    assert api.simulate_get(path).status_code == 200
    assert len(stream_events(redis_client, settings.key_prefix)) == before
