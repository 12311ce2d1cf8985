"""The commit and read scripts against a real server."""

from __future__ import annotations

import hashlib

from damba.events import Event
from damba.protocol import Commit, Follow, Read
from damba.state import Add, Put
from damba.store import scripts

COMMIT_SHA = hashlib.sha1(scripts.COMMIT_SCRIPT.encode()).hexdigest().encode()


def _commit(event_name="adduser", checks=(), changes=()):
    event = Event(event_name, "2026-01-01T00:00:00.000000Z", uid="u" * 32, data={"name": "n"})
    return Commit(event=event, changes=list(changes), checks=list(checks))


def test_commit_appends_and_applies(store, redis_client, settings):
    stream_id = store.commit(_commit(changes=[Put("doc:a", {"x": 1}), Add("things", "a")]))
    assert stream_id
    assert redis_client.xlen(settings.stream_key) == 1
    assert redis_client.get(f"{settings.key_prefix}:doc:a") == '{"x":1}'
    assert redis_client.smembers(f"{settings.key_prefix}:things") == {"a"}


def test_commit_resend_applies_once(store, redis_client, settings):
    """Resending a commit with the same receipt returns the first stream id."""
    receipt, payload = scripts.encode_commit(_commit(changes=[Add("things", "a")]))
    commit = redis_client.register_script(scripts.COMMIT_SCRIPT)
    first = commit(args=[settings.key_prefix, payload])
    again = commit(args=[settings.key_prefix, payload])
    assert first[0] == "ok"
    assert again == ["applied", first[1]]
    assert redis_client.xlen(settings.stream_key) == 1


def test_commit_conflicts_when_document_changed(store, redis_client, settings):
    redis_client.set(f"{settings.key_prefix}:doc:a", '{"v":2}')
    stale = _commit(checks=[("doc", "doc:a", '{"v":1}')], changes=[Put("doc:a", {"v": 3})])
    assert store.commit(stale) is None
    assert redis_client.get(f"{settings.key_prefix}:doc:a") == '{"v":2}'
    assert redis_client.xlen(settings.stream_key) == 0


def test_commit_conflicts_when_document_appeared(store, redis_client, settings):
    redis_client.set(f"{settings.key_prefix}:doc:a", "{}")
    assert store.commit(_commit(checks=[("doc", "doc:a", None)])) is None


def test_commit_checks_set_members_and_size(store, redis_client, settings):
    redis_client.sadd(f"{settings.key_prefix}:things", "a", "b")
    assert store.commit(_commit(checks=[("members", "things", ["a"])])) is None
    assert store.commit(_commit(checks=[("card_lt", "things", 2)])) is None
    assert store.commit(_commit(checks=[("members", "things", ["a", "b"]), ("card_lt", "things", 3)]))


def test_commit_compares_unicode_documents_exactly(store, redis_client, settings):
    """A document read back unchanged passes its check, whatever its script."""
    store.commit(_commit(changes=[Put("doc:u", {"name": "Анна 支付 \u2028"})]))
    snapshot = store.read(Read(docs=("doc:u",)))
    assert store.commit(_commit(checks=snapshot.checks()))


def test_read_follows_a_reference(store, redis_client, settings):
    prefix = settings.key_prefix
    redis_client.set(f"{prefix}:user:u", '{"active":{"r1":"s1"}}')
    redis_client.set(f"{prefix}:session:s1", '{"step":3}')
    found = store.read(Read(docs=("user:u",), follow=(Follow("user:u", "active", "r1", "session:"),)))
    assert found.doc("session:s1") == {"step": 3}
    missing = store.read(Read(docs=("user:u",), follow=(Follow("user:u", "active", "r2", "session:"),)))
    assert "session:s1" not in missing.raw


def test_client_does_not_retry_by_itself(store):
    """redis-py's own retries are off, so a commit is never resent blindly."""
    retry = store.client.get_connection_kwargs()["retry"]
    assert retry.get_retries() == 0


def test_lost_commit_reply_is_resent_once(redis_url, key_prefix, redis_client):
    """A commit whose reply times out is resent with its receipt and appended once."""
    from damba.config import Settings
    from damba.store.sync_store import RedisStore, connect
    from tests.proxy import ReplyDroppingProxy

    proxy = ReplyDroppingProxy(redis_url)
    try:
        settings = Settings(redis_timeout=0.5)
        client = connect(settings, proxy.url)
        store = RedisStore(client, key_prefix)
        # Load the commit script first, so the lost call is an EVALSHA.
        first_id = store.commit(_commit(changes=[Add("things", "a")]))
        proxy.drop_replies(COMMIT_SHA, count=1, close=False)
        stream_id = store.commit(_commit(changes=[Add("things", "b")]))
        client.close()
    finally:
        proxy.close()
    assert proxy.dropped == 1
    entries = redis_client.xrange(f"{key_prefix}:events")
    assert [entry_id for entry_id, _ in entries] == [first_id, stream_id]
    assert redis_client.smembers(f"{key_prefix}:things") == {"a", "b"}


def test_commit_to_unreachable_store_is_503(key_prefix):
    import pytest

    from damba.config import Settings
    from damba.errors import DambaError
    from damba.store.sync_store import RedisStore, connect

    settings = Settings(redis_timeout=0.5)
    store = RedisStore(connect(settings, "redis://127.0.0.1:1/0"), key_prefix)
    with pytest.raises(DambaError) as caught:
        store.commit(_commit())
    assert caught.value.code == "store_unavailable"


class CountingStore:
    """Wraps a real store and counts the round trips each kind of request makes."""

    def __init__(self, store) -> None:
        self.store = store
        self.calls: list[str] = []

    def read(self, request):
        self.calls.append("read")
        return self.store.read(request)

    def commit(self, request):
        self.calls.append("commit")
        return self.store.commit(request)


def test_step_costs_two_round_trips(store):
    """Stepping by route or by session id is one read and one commit."""
    from damba import commands
    from damba.config import Limits
    from damba.driver import run

    key = run(store, commands.add_user(Limits(), "counted"))["uid"]
    rid = run(store, commands.add_route(Limits(), key, steps="3"))["rid"]
    sid = run(store, commands.join(key, rid))["sid"]
    for operation in (commands.step(key, rid=rid), commands.step(key, sid=sid),
                      commands.stop(key, rid=rid)):
        counting = CountingStore(store)
        run(counting, operation)
        assert counting.calls == ["read", "commit"]
