"""Revocations in the shared cache: what they cover, how they reach other processes, what the hot path costs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError

from drf_oidc_jwks import revocation
from drf_oidc_jwks.exceptions import TokenRevoked
from drf_oidc_jwks.frozen import freeze
from drf_oidc_jwks.revocation import SNAPSHOT_EVERY, RevocationStore
from tests.counting_cache import CountingLocMemCache

ISS = "https://issuer.test"


class Clock:
    def __init__(self) -> None:
        self.wall, self.mono = 1_700_000_000.0, 100.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def cache() -> CountingLocMemCache:
    c = CountingLocMemCache("revocation-tests", {})
    c.clear()
    return c


def store(cache: Any, clock: Clock, **kwargs: Any) -> RevocationStore:
    return RevocationStore(cache, clock=lambda: clock.wall, monotonic=lambda: clock.mono, **kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_sub_revocation_covers_tokens_issued_at_or_before_it_and_not_later_ones(cache, clock):
    s = store(cache, clock)
    s.revoke(ISS, sub="alice")
    t = clock.wall
    assert s.is_revoked(ISS, "alice", None, None, t - 60)
    assert s.is_revoked(ISS, "alice", None, None, t)
    assert not s.is_revoked(ISS, "alice", None, None, t + 1)
    assert not s.is_revoked(ISS, "bob", None, None, t - 60)
    assert not s.is_revoked("https://other.test", "alice", None, None, t - 60)


def test_a_sid_revocation_covers_that_session_only(cache, clock):
    s = store(cache, clock)
    s.revoke(ISS, sid="session-1", at=clock.wall - 10)
    assert s.is_revoked(ISS, "alice", "session-1", None, clock.wall - 20)
    assert not s.is_revoked(ISS, "alice", "session-1", None, clock.wall - 5)
    assert not s.is_revoked(ISS, "alice", "session-2", None, clock.wall - 20)


def test_a_jti_revocation_covers_that_token_whatever_its_iat(cache, clock):
    s = store(cache, clock)
    s.revoke(ISS, jti="token-1")
    assert s.is_revoked(ISS, None, None, "token-1", clock.wall + 3600)
    assert not s.is_revoked(ISS, None, None, "token-2", None)


@pytest.mark.parametrize("iat", [None, "yesterday", True, float("nan"), float("inf")])
def test_a_token_without_a_usable_iat_is_covered_by_its_subs_revocation(cache, clock, iat):
    s = store(cache, clock)
    s.revoke(ISS, sub="alice")
    assert s.is_revoked(ISS, "alice", None, None, iat)


def test_revoke_needs_an_issuer_and_something_to_revoke(cache, clock):
    s = store(cache, clock)
    for kwargs in ({}, {"sub": ""}, {"sub": 42}):
        with pytest.raises(ValueError):
            s.revoke(ISS, **kwargs)
    with pytest.raises(ValueError):
        s.revoke("", sub="alice")


def test_another_process_sees_a_revocation_within_one_poll_and_not_before(cache, clock):
    writer, reader = store(cache, clock, poll=5), store(cache, clock, poll=5)
    assert not reader.is_revoked(ISS, "alice", None, None, clock.wall)  # first look: polls
    writer.revoke(ISS, sub="alice")
    assert writer.is_revoked(ISS, "alice", None, None, clock.wall)  # at once in the revoking process
    clock.advance(4.9)
    assert not reader.is_revoked(ISS, "alice", None, None, clock.wall - 10)
    clock.advance(0.2)
    assert reader.is_revoked(ISS, "alice", None, None, clock.wall - 10)


def test_a_payload_found_clean_is_revoked_once_a_revocation_reaches_this_process(cache, clock):
    # The memoised path hands the same (frozen) payload on every request; the store remembers it was clean
    # against its current view, and must forget that the moment the view changes, here or by a poll.
    writer, reader = store(cache, clock, poll=5), store(cache, clock, poll=5)
    writer.revoke(ISS, sub="someone-else")
    payload = freeze({"iss": ISS, "sub": "alice", "iat": clock.wall - 10})
    assert not reader.covers(payload) and not reader.covers(payload)  # the second answer remembered
    writer.revoke(ISS, sub="alice")
    clock.advance(5.1)
    assert reader.covers(payload)  # the poll brought it: the remembered answer is gone with the old view
    reader.revoke(ISS, jti="later")  # a change made here drops remembered answers too
    assert reader.covers(payload)
    plain = {"iss": ISS, "sub": "bob", "iat": clock.wall - 10}
    assert not reader.covers(plain)
    plain["sub"] = "alice"  # a mutable payload is never remembered
    assert reader.covers(plain)


def test_between_polls_the_hot_path_makes_no_cache_call(cache, clock):
    s = store(cache, clock, poll=5)
    s.revoke(ISS, sub="alice")
    s.is_revoked(ISS, "bob", None, None, clock.wall)
    cache.reset_counts()
    for i in range(1000):
        s.is_revoked(ISS, f"user-{i}", f"sid-{i}", f"jti-{i}", clock.wall)
    assert sum(cache.calls.values()) == 0
    assert s.polls == 1
    clock.advance(5)
    s.is_revoked(ISS, "bob", None, None, clock.wall)
    assert s.polls == 2


def test_revocations_are_forgotten_after_the_ttl(cache, clock):
    s = store(cache, clock, ttl=60, poll=1)
    s.revoke(ISS, sub="alice")
    clock.advance(61)
    assert not s.is_revoked(ISS, "alice", None, None, clock.wall - 3600)
    assert len(s) == 0


def test_a_new_process_starts_from_the_snapshot_and_the_entries_after_it(cache, clock):
    writer = store(cache, clock)
    for i in range(SNAPSHOT_EVERY + 3):
        writer.revoke(ISS, sub=f"user-{i}")
    fresh = store(cache, clock)
    cache.reset_counts()
    fresh.refresh()
    assert len(fresh) == SNAPSHOT_EVERY + 3
    assert fresh.is_revoked(ISS, "user-0", None, None, clock.wall)
    assert fresh.is_revoked(ISS, f"user-{SNAPSHOT_EVERY + 2}", None, None, clock.wall)
    # LocMem's get_many is one get per key: gen and epoch, the snapshot, the three entries after it, not 259.
    assert cache.calls["get"] == 6


def test_a_slot_taken_but_not_yet_written_is_read_on_a_later_poll(cache, clock):
    writer, reader = store(cache, clock, poll=1), store(cache, clock, poll=1)
    writer.revoke(ISS, sub="first")
    reader.refresh()
    # A revoker between incr and set: the number exists, its entry not yet.
    cache.incr(RevocationStore.prefix + "gen")
    epoch = cache.get(RevocationStore.prefix + "epoch")
    reader.refresh()
    cache.set(f"{RevocationStore.prefix}e:{epoch}:2", ("sub", ISS, "late", clock.wall, clock.wall + 60), 60)
    assert not reader.is_revoked(ISS, "late", None, None, clock.wall - 1)
    clock.advance(1)
    assert reader.is_revoked(ISS, "late", None, None, clock.wall - 1)


def test_a_flushed_cache_keeps_what_a_process_knew_and_new_revocations_still_arrive(cache, clock):
    writer, reader = store(cache, clock, poll=1), store(cache, clock, poll=1)
    writer.revoke(ISS, sub="alice")
    reader.refresh()
    cache.clear()  # the cache restarted
    writer2 = store(cache, clock)
    writer2.revoke(ISS, sub="bob")
    clock.advance(1)
    assert reader.is_revoked(ISS, "alice", None, None, clock.wall - 5)
    assert reader.is_revoked(ISS, "bob", None, None, clock.wall - 5)


def test_a_cache_outage_during_a_poll_keeps_the_last_view(cache, clock):
    s = store(cache, clock, poll=1)
    s.revoke(ISS, sub="alice")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    cache.get_many = broken  # type: ignore[method-assign]
    clock.advance(2)
    assert s.is_revoked(ISS, "alice", None, None, clock.wall - 5)


def test_module_api_uses_the_default_cache_and_check_raises_token_revoked():
    revocation.revoke(ISS, sub="carol")
    now = time.time()
    assert revocation.is_revoked(ISS, "carol", None, None, now - 1)
    with pytest.raises(TokenRevoked) as info:
        revocation.check({"iss": ISS, "sub": "carol", "iat": now - 1})
    assert (info.value.code, info.value.status) == ("token_revoked", 401)
    revocation.check({"iss": ISS, "sub": "carol", "iat": now + 5})
    assert caches["default"].get(RevocationStore.prefix + "gen") == 1


def test_oidc_revoke_command_records_a_revocation(capsys):
    call_command("oidc_revoke", "--issuer", ISS, "--sub", "dave", "--jti", "j-1")
    out = capsys.readouterr().out
    assert "revoked 2" in out
    revocation.reset_store()
    now = time.time()
    assert revocation.is_revoked(ISS, "dave", None, None, now - 1)
    assert revocation.is_revoked(ISS, None, None, "j-1", now + 100)


def test_oidc_revoke_command_needs_something_to_revoke():
    with pytest.raises(CommandError):
        call_command("oidc_revoke", "--issuer", ISS)
