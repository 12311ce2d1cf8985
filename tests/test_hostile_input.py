"""Input meant to leak a key or slip a cut-off body past the checks."""

from __future__ import annotations

from click.testing import CliRunner

from damba.cli import main
from tests.helpers import register, stream_events


def test_key_in_id_slot_is_not_stored(api, redis_client, settings):
    """A key sent where a route or session id belongs never reaches the stream."""
    key = register(api)
    for path in (f"/api/v1/join/uid/{key}/route/{key}", f"/api/v1/stop/uid/{key}/session/{key}"):
        result = api.simulate_post(path)
        assert result.status_code == 400
        assert result.json["code"] == "invalid_id"
        assert key not in result.text
    assert key not in repr(stream_events(redis_client, settings.key_prefix))


def test_key_in_read_path_is_not_echoed(api):
    key = register(api)
    result = api.simulate_get(f"/api/v1/info/route/{key}")
    assert result.status_code == 400
    assert key not in result.text


def test_health_checks_answer_head(api):
    assert api.simulate_head("/healthz").status_code == 200


def test_out_of_range_counts_are_echoed(api):
    """The error names the value sent, not a stand-in."""
    key = register(api)
    steps = api.simulate_post(f"/api/v1/addroute/uid/{key}/steps/99999999999999999999")
    assert steps.json["code"] == "maxsteps_exceeded"
    assert "99999999999999999999" in steps.json["desc"]
    count = api.simulate_get("/api/v1/info/events", params={"count": "99999999999"})
    assert count.json["code"] == "invalid_query"
    assert "99999999999" in count.json["desc"]


def test_rebuild_without_stream_fails(settings):
    """A prefix with no event stream is reported, not rebuilt as empty."""
    env = {"DAMBA_REDIS_URL": settings.redis_url, "DAMBA_KEY_PREFIX": settings.key_prefix}
    for command in ("rebuild", "verify"):
        result = CliRunner().invoke(main, [command], env=env)
        assert result.exit_code == 1
        assert "There is no event stream" in result.output


def test_stream_and_events_check_after_alike(api):
    """The event stream rejects the same bad ids as /info/events."""
    for after in ("99999999999999999999-0", "", "abc"):
        page = api.simulate_get("/api/v1/info/events", params={"after": after})
        stream = api.simulate_get("/api/v1/events/stream", params={"after": after})
        assert page.status_code == 400, after
        assert stream.status_code == 400, after
        assert stream.json["code"] == page.json["code"] == "invalid_query"
