"""Revocation behaviour pinned by mutation testing (docs/security.md, "Mutation testing").

Each test kills mutants of drf_oidc_jwks/revocation.py that tests/test_revocation.py let survive: the store on
real Django caches (LocMem, a real Redis), an injected clock, entries written by hand where another writer's
state (a hole, a junk entry, an older snapshot) is the point.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from drf_oidc_jwks import revocation
from drf_oidc_jwks.frozen import freeze
from drf_oidc_jwks.revocation import HOLE_GRACE, SNAPSHOT_EVERY, RevocationStore
from tests.counting_cache import CountingLocMemCache
from tests.services import RedisServer
from tests.test_revocation import ISS, Clock, store

P = RevocationStore.prefix


@pytest.fixture
def cache() -> CountingLocMemCache:
    c = CountingLocMemCache("revocation-kills", {})
    c.clear()
    return c


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def redis_cache(redis_server: RedisServer) -> Iterator[tuple[RedisCache, redis.Redis]]:
    with redis_server.cache(8) as pair:
        yield pair


def ttl_of(raw: redis.Redis, pattern: str) -> int:
    (key,) = raw.keys(pattern)
    return int(raw.ttl(key))


# ---------------------------------------------------------------------------
# What the shared cache holds, and for how long


def test_entries_and_snapshots_live_revocation_ttl_and_the_epoch_and_counter_forever(redis_cache, clock):
    c, raw = redis_cache
    s = store(c, clock, ttl=60)
    s.revoke(ISS, sub="user-0")
    assert ttl_of(raw, "*:e:*:1") == 60
    for i in range(1, SNAPSHOT_EVERY):
        s.revoke(ISS, sub=f"user-{i}")
    assert ttl_of(raw, "*:snap:*") == 60
    assert ttl_of(raw, "*:epoch") == -1  # no expiry: losing it starts a new log
    assert ttl_of(raw, "*:gen") == -1


@pytest.mark.parametrize(("ttl", "seconds"), [(0.5, 1), (59.5, 60)])
def test_a_ttl_is_rounded_up_to_whole_seconds(redis_cache, clock, ttl, seconds):
    c, raw = redis_cache
    store(c, clock, ttl=ttl).revoke(ISS, sub="alice")
    assert ttl_of(raw, "*:e:*") == seconds


def test_a_revoke_on_an_existing_log_is_one_get_one_incr_one_set(cache, clock):
    s = store(cache, clock)
    s.revoke(ISS, sub="first")
    cache.reset_counts()
    s.revoke(ISS, sub="second")
    assert dict(cache.calls) == {"get": 1, "set": 1}  # incr is not counted by CountingLocMemCache


# ---------------------------------------------------------------------------
# Reading the log


def test_a_poll_with_nothing_new_reads_only_the_counter_and_the_epoch(cache, clock):
    writer, reader = store(cache, clock), store(cache, clock)
    for user in ("a", "b", "c"):
        writer.revoke(ISS, sub=user)
    reader.refresh()
    cache.reset_counts()
    reader.refresh()
    assert cache.calls["get"] == 2


def test_a_counter_that_went_back_in_the_same_epoch_is_read_again_from_one(cache, clock):
    writer, reader = store(cache, clock, poll=1), store(cache, clock, poll=1)
    for user in ("a", "b", "c"):
        writer.revoke(ISS, sub=user)
    reader.refresh()
    cache.delete(P + "gen")  # the counter evicted, the epoch kept: the next number is 1 again
    writer.revoke(ISS, sub="late")
    reader.refresh()
    assert reader.is_revoked(ISS, "late", None, None, clock.wall - 1)


def test_an_epoch_without_a_counter_yet_is_no_error(cache, clock):
    cache.add(P + "epoch", "0" * 32, None)  # a writer between starting the epoch and taking a number
    reader = store(cache, clock)
    reader.refresh()
    assert not reader.is_revoked(ISS, "alice", None, None, clock.wall)


def make_hole(cache: Any, writer: RevocationStore, reader: RevocationStore) -> tuple[str, int]:
    """A revoker between incr and set: the number is taken, its entry not yet written."""
    writer.revoke(ISS, sub="first")
    reader.refresh()
    n = int(cache.incr(P + "gen"))
    reader.refresh()
    return str(cache.get(P + "epoch")), n


def late_entry(clock: Clock, user: str = "late") -> tuple[Any, ...]:
    return ("sub", ISS, user, clock.wall, clock.wall + 600)


def test_a_hole_is_read_for_hole_grace_seconds_and_not_at_hole_grace(cache, clock):
    writer, reader = store(cache, clock, poll=1), store(cache, clock, poll=1)
    epoch, n = make_hole(cache, writer, reader)
    clock.advance(HOLE_GRACE)
    cache.set(f"{P}e:{epoch}:{n}", late_entry(clock), 600)
    reader.refresh()
    assert not reader.is_revoked(ISS, "late", None, None, clock.wall - 1)


def test_a_filled_hole_is_not_read_again(cache, clock):
    writer, reader = store(cache, clock, poll=1), store(cache, clock, poll=1)
    epoch, n = make_hole(cache, writer, reader)
    cache.set(f"{P}e:{epoch}:{n}", late_entry(clock), 600)
    reader.refresh()
    assert reader.is_revoked(ISS, "late", None, None, clock.wall - 1)
    cache.reset_counts()
    reader.refresh()
    assert cache.calls["get"] == 2


def test_a_hole_in_the_snapshot_is_read_by_a_new_process_once_filled(cache, clock):
    writer = store(cache, clock)
    writer.revoke(ISS, sub="first")
    hole = int(cache.incr(P + "gen"))  # taken, never written yet
    for i in range(SNAPSHOT_EVERY - hole):
        writer.revoke(ISS, sub=f"user-{i}")  # the last one writes the snapshot, the hole in it
    fresh = store(cache, clock)
    fresh.refresh()
    assert fresh.is_revoked(ISS, "user-0", None, None, clock.wall - 1)
    epoch = cache.get(P + "epoch")
    cache.set(f"{P}e:{epoch}:{hole}", late_entry(clock), 600)
    fresh.refresh()
    assert fresh.is_revoked(ISS, "late", None, None, clock.wall - 1)


@pytest.mark.parametrize("missing", ["entries", "holes"])
def test_a_snapshot_without_its_entries_or_holes_is_still_loaded(cache, clock, missing):
    writer = store(cache, clock)
    writer.revoke(ISS, sub="a")
    writer.revoke(ISS, sub="b")
    epoch = cache.get(P + "epoch")
    snapshot: dict[str, Any] = {"gen": 1, "entries": [late_entry(clock, "a")], "holes": []}
    del snapshot[missing]
    cache.set(f"{P}snap:{epoch}", snapshot, 600)
    fresh = store(cache, clock)
    fresh.refresh()
    assert fresh.is_revoked(ISS, "b", None, None, clock.wall - 1)  # the entry after the snapshot


def test_a_snapshot_entry_of_the_wrong_shape_is_skipped(cache, clock):
    writer = store(cache, clock)
    writer.revoke(ISS, sub="a")
    epoch = cache.get(P + "epoch")
    entries = [("sub", ISS, "short"), late_entry(clock, "a")]
    cache.set(f"{P}snap:{epoch}", {"gen": 1, "entries": entries, "holes": []}, 600)
    fresh = store(cache, clock)
    fresh.refresh()
    assert fresh.is_revoked(ISS, "a", None, None, clock.wall - 1)


@pytest.mark.parametrize(
    "junk",
    [("bogus", ISS, "alice"), ("sub", None, "alice"), ("sub", ISS, 42)],
    ids=["unknown-kind", "issuer-not-a-string", "value-not-a-string"],
)
def test_a_junk_entry_in_the_log_is_ignored_and_the_others_apply(cache, clock, junk):
    writer, reader = store(cache, clock), store(cache, clock)
    writer.revoke(ISS, sub="bob")
    epoch = cache.get(P + "epoch")
    n = int(cache.incr(P + "gen"))
    cache.set(f"{P}e:{epoch}:{n}", (*junk, clock.wall, clock.wall + 600), 600)
    writer.revoke(ISS, sub="carol")
    reader.refresh()
    assert reader.is_revoked(ISS, "bob", None, None, clock.wall - 1)
    assert reader.is_revoked(ISS, "carol", None, None, clock.wall - 1)
    assert not reader.covers({"iss": None, "sub": "alice", "iat": clock.wall - 1})
    assert not reader.is_revoked(ISS, "alice", None, None, clock.wall - 1)


def test_the_latest_revocation_wins_whatever_the_order_they_arrive_in(cache, clock):
    s = store(cache, clock)
    s.revoke(ISS, sub="alice")
    s.revoke(ISS, sub="alice", at=clock.wall - 100)  # an older one recorded later
    assert s.is_revoked(ISS, "alice", None, None, clock.wall - 50)
    fresh = store(cache, clock)
    fresh.refresh()
    assert fresh.is_revoked(ISS, "alice", None, None, clock.wall - 50)


def test_a_revocation_is_forgotten_at_exactly_its_ttl(cache, clock):
    s = store(cache, clock, ttl=60, poll=1)
    s.revoke(ISS, sub="alice")
    clock.advance(60)
    assert not s.is_revoked(ISS, "alice", None, None, clock.wall - 3600)
    assert len(s) == 0


# ---------------------------------------------------------------------------
# The hot path


def test_an_unhashable_claim_is_not_revoked(cache, clock):
    s = store(cache, clock)
    s.revoke(ISS, sub="alice")
    s.revoke(ISS, jti="j-1")
    assert not s.covers({"iss": ISS, "sub": ["alice"], "iat": clock.wall - 1})
    assert not s.covers({"iss": ISS, "jti": {"j": 1}, "iat": clock.wall - 1})


def test_a_frozen_payload_found_clean_is_not_looked_up_again_until_the_view_changes(cache, clock, monkeypatch):
    looked_up: list[Any] = []
    real = RevocationStore._revoked_in

    def counting(index: Any, payload: Any) -> bool:
        looked_up.append(payload)
        return real(index, payload)

    monkeypatch.setattr(RevocationStore, "_revoked_in", staticmethod(counting))
    s = store(cache, clock)
    s.revoke(ISS, sub="someone-else")
    payload = freeze({"iss": ISS, "sub": "alice", "iat": clock.wall - 1})
    for _ in range(3):
        assert not s.covers(payload)
    assert len(looked_up) == 1
    other = freeze({"iss": ISS, "sub": "bob", "iat": clock.wall - 1})
    assert not s.covers(other) and not s.covers(other)
    assert len(looked_up) == 2
    s.revoke(ISS, sub="alice")
    assert s.covers(payload)
    assert len(looked_up) == 3


def test_a_request_during_a_slow_poll_answers_from_the_current_view_without_waiting(clock):
    class Slow(LocMemCache):
        """A real LocMem whose get_many waits on ``gate`` once armed (a cache answering slowly)."""

        armed = False
        gate = threading.Event()
        entered = threading.Event()

        def get_many(self, keys: Any, version: Any = None) -> Any:
            if self.armed:
                self.entered.set()
                self.gate.wait(10)
            return super().get_many(keys, version)

    slow = Slow("revocation-slow", {})
    slow.clear()
    s = store(slow, clock, poll=5)
    s.revoke(ISS, sub="alice")
    s.refresh()
    slow.armed = True
    clock.advance(6)
    polling = threading.Thread(target=s.is_revoked, args=(ISS, "bob", None, None, clock.wall))
    polling.start()
    assert slow.entered.wait(5)
    clock.advance(6)  # past the next poll too: this request would poll, but one is under way
    answers: list[bool] = []
    other = threading.Thread(target=lambda: answers.append(s.is_revoked(ISS, "alice", None, None, clock.wall - 60)))
    other.start()
    other.join(2)
    waited = other.is_alive()
    slow.gate.set()
    polling.join(5)
    other.join(5)
    assert not waited
    assert answers == [True]


# ---------------------------------------------------------------------------
# The module API


def test_the_process_store_follows_revocation_ttl_and_poll(oidc_settings):
    oidc_settings(REVOCATION_TTL=60, REVOCATION_POLL=2)
    s = revocation.get_store()
    assert (s.ttl, s.poll) == (60, 2)


def test_is_revoked_of_the_module_checks_the_sid():
    revocation.revoke(ISS, sid="session-1")
    now = time.time()
    assert revocation.is_revoked(ISS, "someone", "session-1", None, now - 1)
    assert not revocation.is_revoked(ISS, "someone", "session-2", None, now - 1)
