"""Replaying the stream gives back the live read models, whatever happened."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from damba import commands, queries
from damba.config import Limits
from damba.driver import run
from damba.errors import DambaError
from damba.replay import load_live_state, rebuild, verify
from damba.store.sync_store import RedisStore

LIMITS = Limits(maxusers=4, maxroutes=4, maxsteps=3)

# One action: (kind, participant index, route index, extra number).
actions = st.lists(
    st.tuples(
        st.sampled_from(["addme", "killme", "addroute", "addsteps", "delroute",
                         "join", "step", "stop", "step_sid", "stop_sid", "badroute"]),
        st.integers(0, 4),
        st.integers(0, 4),
        st.integers(0, 4),
    ),
    max_size=40,
)


# Every generated sequence starts from two participants, each running a session.
SETUP = [
    ("addme", 0, 0, 0), ("addme", 0, 0, 1), ("addroute", 0, 0, 0), ("addsteps", 1, 0, 2),
    ("join", 0, 0, 0), ("join", 1, 1, 0),
]


class World:
    """Runs generated actions through the real commands, remembering ids."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.keys: list[str] = []
        self.rids: list[str] = []
        self.sids: list[str] = []

    def pick(self, items, index, fallback):
        return items[index % len(items)] if items else fallback

    def perform(self, kind, who, which, number) -> None:
        key = self.pick(self.keys, who, "Z" * 32)
        rid = self.pick(self.rids, which, "r000000000000")
        sid = self.pick(self.sids, number, "s0000000000000000")
        operations = {
            "addme": lambda: commands.add_user(LIMITS, f"p{number}" if number % 2 else None),
            "killme": lambda: commands.kill_user(key),
            "addroute": lambda: commands.add_route(LIMITS, key, text="START a\nSTEP b\nSTEP c\nSTOP"),
            "addsteps": lambda: commands.add_route(LIMITS, key, steps=str(number)),
            "badroute": lambda: commands.add_route(LIMITS, key, text="START a\nSTOP"),
            "delroute": lambda: commands.delete_route(key, rid),
            "join": lambda: commands.join(key, rid),
            "step": lambda: commands.step(key, rid=rid),
            "stop": lambda: commands.stop(key, rid=rid),
            "step_sid": lambda: commands.step(key, sid=sid),
            "stop_sid": lambda: commands.stop(key, sid=sid),
        }
        try:
            reply = run(self.store, operations[kind]())
        except DambaError:
            return
        if kind == "addme":
            self.keys.append(reply["uid"])
        elif kind in ("addroute", "addsteps"):
            self.rids.append(reply["rid"])
        elif kind == "join":
            self.sids.append(reply["sid"])


def check_invariants(state) -> None:
    """Assert the cross-references between read models agree."""
    sessions = {key[8:]: doc for key, doc in state.docs.items() if key.startswith("session:")}
    running = {sid for sid, doc in sessions.items() if doc["status"] == "running"}
    assert state.members("active") == running
    assert state.members("sessions") == set(sessions)
    for sid, doc in sessions.items():
        steps = [entry["step"] for entry in doc["trace"]]
        assert steps == sorted(steps)
        if doc["status"] == "running":
            assert 0 <= doc["step"] <= len(doc["steps"])
            assert sid in state.members(f"route-active:{doc['rid']}")
            assert state.doc(f"user:{doc['uid']}")["active"][doc["rid"]] == sid
        else:
            assert doc["step"] == 999
            assert doc["ended"] is not None
    for uid in state.members("users"):
        user = state.doc(f"user:{uid}")
        assert state.doc(f"name:{user['name']}") == {"uid": uid}
        for rid in user["routes"]:
            assert state.doc(f"route:{rid}")["owner"] == uid
        assert user["started"] == user["finished"] + user["stopped"] + len(user["active"])
        for rid, sid in user["active"].items():
            assert sid in running
            assert (sessions[sid]["uid"], sessions[sid]["rid"]) == (uid, rid)
    routes = {key[6:] for key in state.docs if key.startswith("route:")}
    assert state.members("routes") == routes


def _wipe(client, prefix):
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@hypothesis_settings(max_examples=100, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=actions)
def test_replay_matches_live_read_models(redis_client, steps):
    """After any sequence of actions, replay equals the read models, before and after rebuild."""
    prefix = f"prop-{uuid.uuid4().hex[:12]}"
    store = RedisStore(redis_client, prefix)
    try:
        world = World(store)
        for action in SETUP + steps:
            world.perform(*action)
        assert verify(redis_client, prefix) == []

        before = load_live_state(redis_client, prefix)
        check_invariants(before)
        listing = run(store, queries.list_routes())
        rebuild(redis_client, prefix)
        after = load_live_state(redis_client, prefix)
        assert after.docs == before.docs
        assert after.sets == before.sets
        assert run(store, queries.list_routes()) == listing
        assert len(before.members("users")) <= LIMITS.maxusers
        assert len(before.members("routes")) <= LIMITS.maxroutes
    finally:
        _wipe(redis_client, prefix)


def test_verify_reports_a_tampered_read_model(store, redis_client, settings):
    """verify lists a document that no longer matches the stream."""
    reply = run(store, commands.add_user(Limits(), "victim"))
    run(store, commands.add_route(Limits(), reply["uid"], steps="2"))
    uid_doc = next(redis_client.scan_iter(match=f"{settings.key_prefix}:user:*"))
    redis_client.set(uid_doc, '{"tampered": true}')
    redis_client.srem(f"{settings.key_prefix}:routes", *redis_client.smembers(f"{settings.key_prefix}:routes"))
    differences = verify(redis_client, settings.key_prefix)
    assert {d.key.split(":")[0] for d in differences} == {"user", "routes"}
    assert "Redis holds" in differences[0].describe() or "missing" in differences[0].describe()
    rebuild(redis_client, settings.key_prefix)
    assert verify(redis_client, settings.key_prefix) == []


def test_cli_verify_and_rebuild(store, redis_client, settings):
    """The damba verify and rebuild commands run against a real server."""
    from click.testing import CliRunner

    from damba.cli import main

    run(store, commands.add_user(Limits(), "cli"))
    env = {"DAMBA_REDIS_URL": settings.redis_url, "DAMBA_KEY_PREFIX": settings.key_prefix}
    runner = CliRunner()
    ok = runner.invoke(main, ["verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "match" in ok.output
    redis_client.delete(f"{settings.key_prefix}:users")
    broken = runner.invoke(main, ["verify"], env=env)
    assert broken.exit_code == 1
    assert "users" in broken.output
    rebuilt = runner.invoke(main, ["rebuild"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert runner.invoke(main, ["verify"], env=env).exit_code == 0


def test_rebuild_leaves_other_prefixes_alone(store, redis_client, settings):
    """A prefix that starts like this one keeps its keys through a rebuild."""
    from damba.store.sync_store import RedisStore

    neighbour = RedisStore(redis_client, settings.key_prefix + "-2")
    try:
        run(neighbour, commands.add_user(Limits(), "neighbour"))
        before = redis_client.xlen(f"{settings.key_prefix}-2:events")
        rebuild(redis_client, settings.key_prefix)
        assert redis_client.xlen(f"{settings.key_prefix}-2:events") == before
        assert verify(redis_client, settings.key_prefix + "-2") == []
    finally:
        _wipe(redis_client, settings.key_prefix + "-2")


@pytest.mark.parametrize("prefix", ["a:b", "x*", "q?", "sp ace", "[z]", "x" * 65])
def test_key_prefix_rejects_unsafe_values(prefix):
    from damba.config import SettingsError, load_settings

    with pytest.raises(SettingsError):
        load_settings({"DAMBA_KEY_PREFIX": prefix})


def test_cli_reports_unreachable_redis_in_one_line(settings):
    from click.testing import CliRunner

    from damba.cli import main

    env = {"DAMBA_REDIS_URL": "redis://127.0.0.1:1/0", "DAMBA_KEY_PREFIX": settings.key_prefix}
    result = CliRunner().invoke(main, ["verify"], env=env)
    assert result.exit_code == 1
    assert "Cannot reach the Redis at DAMBA_REDIS_URL" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "env,fragment",
    [({"DAMBA_LOG_LEVEL": "LOUD"}, "DAMBA_LOG_LEVEL"),
     ({"DAMBA_REDIS_URL": "http://127.0.0.1:6379"}, "DAMBA_REDIS_URL"),
     ({"DAMBA_MAXUSERS": "ten"}, "DAMBA_MAXUSERS")],
)
def test_cli_rejects_bad_settings(env, fragment):
    from click.testing import CliRunner

    from damba.cli import main

    result = CliRunner().invoke(main, ["verify"], env=env)
    assert result.exit_code == 2
    assert fragment in result.output
