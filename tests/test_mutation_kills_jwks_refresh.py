"""Tests that kill mutants of jwks_refresh.py which the rest of the suite let through (scripts/mutation.sh).

Each names the behaviour it pins: stale keys served (the log line's level, text and fields, the
``stale_keys_served`` signal), the refresh of stale keys beside the requests (its lock, its wait, the
reasons it serves stale), waiting for another worker's refresh (only newer keys, its bound, its last
look), the refresh-ahead window, the parsed keys kept across an unchanged refetch, and how long the
shared entries live. Two JWKSClient objects on one cache are two workers (tests/jwks_workers.py); a fetch
in flight is held open by a gate in the loopback IdP's answer. Real loopback IdP throughout; a real Redis
where an entry's lifetime is read back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from drf_oidc_jwks import background, signals
from drf_oidc_jwks.exceptions import KeySourceError
from drf_oidc_jwks.jwks import JWKSClient
from drf_oidc_jwks.keys import keyset_version
from drf_oidc_jwks.keystore import Lease
from drf_oidc_jwks.testing import Response
from tests.jwks_workers import Clock, Gate, Outcome, gated, lock_held, shared_caches, two_workers, worker

# The unknown-kid refetch is the one caller handing its deadline through _refresh_holding to the fetch: the
# test pinning that pass-through lives in test_mutation_kills_jwks.py, and scripts/mutation.sh maps it here too.


@pytest.fixture
def gate(issuer: Any, server: Any) -> Iterator[Gate]:
    yield from gated(issuer, server)


@pytest.fixture
def stale_served() -> Iterator[list[dict[str, Any]]]:
    """Each ``stale_keys_served`` sent, as a dict of its arguments (the sender included)."""
    sent: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        sent.append({"sender": sender, **kwargs})

    signals.stale_keys_served.connect(receiver, weak=False)
    yield sent
    signals.stale_keys_served.disconnect(receiver)


def served_stale(caplog: Any) -> list[tuple[int, str, Any]]:
    """The "serving stale JWKS" records: (level, message, their ``issuer`` field)."""
    return [
        (r.levelno, r.getMessage(), getattr(r, "issuer", "absent"))
        for r in caplog.records
        if r.getMessage().startswith("serving stale JWKS")
    ]


def stale_client(clock: Clock, cache: Any = None) -> tuple[JWKSClient, Any]:
    """A worker holding keys fresh for 60 s, then 61 s later: stale, within JWKS_MAX_STALE."""
    client = worker(clock, cache)
    held = client.current_keyset()
    clock.now += 61
    return client, held


# -- stale keys served: the log line and the signal --------------------------------------------------


def test_stale_keys_after_a_failed_refresh_are_logged_as_a_warning_and_announced(
    oidc_settings, issuer, server, caplog, stale_served
):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    client, held = stale_client(Clock())
    server.respond("/jwks.json", Response(500, b"{}"))
    with caplog.at_level(logging.DEBUG, logger="drf_oidc_jwks"):
        assert client.current_keyset() is held
    text = f"serving stale JWKS for {issuer.issuer} (1s past freshness): HTTP 500"
    assert served_stale(caplog) == [(logging.WARNING, text, issuer.issuer)]
    assert stale_served == [{"sender": JWKSClient, "issuer": issuer.issuer, "age": 1.0}]


def test_stale_keys_within_the_failure_backoff_are_served_quietly_with_its_reason(
    oidc_settings, issuer, server, caplog
):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600, JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    client, held = stale_client(clock)
    server.respond("/jwks.json", Response(500, b"{}"))
    client.current_keyset()  # the refresh fails: backoff
    clock.now += 1
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="drf_oidc_jwks"):
        assert client.current_keyset() is held
    text = f"serving stale JWKS for {issuer.issuer} (2s past freshness): identity provider failed recently"
    assert served_stale(caplog) == [(logging.DEBUG, text, issuer.issuer)]
    assert server.total() == 2


def test_stale_keys_while_another_worker_refreshes_are_served_quietly(oidc_settings, issuer, server, caplog):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    client, held = stale_client(Clock())
    assert client.state.acquire("other", 10) is Lease.SHARED
    with caplog.at_level(logging.DEBUG, logger="drf_oidc_jwks"):
        assert client.current_keyset() is held
    text = f"serving stale JWKS for {issuer.issuer} (1s past freshness): refresh in progress elsewhere"
    assert served_stale(caplog) == [(logging.DEBUG, text, issuer.issuer)]
    assert server.total() == 1


# -- the refresh of stale keys beside the requests -----------------------------------------------------


def test_a_refresh_beside_holds_the_lock_answers_from_stale_keys_after_refresh_wait_and_gives_the_lock_back(
    oidc_settings, issuer, gate, caplog
):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    clock = Clock()
    client = worker(clock)
    held = client.store(issuer.jwks())
    clock.now += 61
    with caplog.at_level(logging.DEBUG, logger="drf_oidc_jwks"):
        asked = Outcome(client.current_keyset)
        assert gate.arrived.wait(5)
        assert lock_held(client)
        assert asked.result(3) is held  # REFRESH_WAIT passed with the refresh still at the IdP
        assert client.current_keyset() is held  # the next request: this process refreshes already
    prefix = f"serving stale JWKS for {issuer.issuer} (1s past freshness): "
    assert served_stale(caplog) == [
        (logging.WARNING, prefix + "refresh still running", issuer.issuer),
        (logging.DEBUG, prefix + "refresh running", issuer.issuer),
    ]
    gate.opened.set()
    background.join_all(5)
    assert not lock_held(client)
    assert client.current_keyset().fetched_at == clock.now


def test_a_refresh_beside_losing_the_race_to_another_thread_of_this_process_gives_the_lock_back(
    oidc_settings, issuer, server, caplog
):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    [cache] = shared_caches(1)
    client, held = stale_client(Clock(), cache)
    released = threading.Event()
    # Between "nothing runs here" and starting its thread, another refresh of this process starts.
    cache.after("add", "lock", lambda: background.start(client.state.prefix, lambda: released.wait(5)))
    try:
        with caplog.at_level(logging.DEBUG, logger="drf_oidc_jwks"):
            assert client.current_keyset() is held
        assert not lock_held(client)
    finally:
        released.set()
        background.join_all(5)
    text = f"serving stale JWKS for {issuer.issuer} (1s past freshness): refresh in progress in this process"
    assert served_stale(caplog) == [(logging.DEBUG, text, issuer.issuer)]
    assert server.total() == 1


# -- waiting for another worker's refresh ----------------------------------------------------------------


def test_refresh_without_wait_refuses_at_once_while_another_worker_refreshes_and_the_keys_serve(
    oidc_settings, issuer, server
):
    oidc_settings(HTTP_TIMEOUT=0.2, JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    clock = Clock()
    client = worker(clock)
    held = client.current_keyset()
    assert client.state.acquire("other", 10) is Lease.SHARED
    clock.now = 1_000_659.9  # stale, still usable
    with pytest.raises(KeySourceError) as exc:
        client.refresh(held)
    assert exc.value.reason == "refresh in progress elsewhere"
    clock.now = 1_000_660.0  # the end of the stale window: no longer usable, so it waits for the other worker
    with pytest.raises(KeySourceError) as exc:
        client.refresh(held)
    assert exc.value.reason == "timed out waiting for the JWKS"
    assert server.total() == 1


def waiting_for_the_other(client: JWKSClient, cache: Any, current: Any) -> Outcome:
    """``client.refresh(current, wait=True)`` while another worker holds the lock; return once it polls."""
    cache.calls.clear()
    asked = Outcome(lambda: client.refresh(current, wait=True))
    assert cache.wait_calls("get", "lock", 2)  # it looked whether the lock is still held, twice
    return asked


def test_waiting_for_another_worker_takes_only_keys_newer_than_its_own(oidc_settings, issuer, server):
    clock = Clock()
    client, other, mine = two_workers(clock)
    held = client.current_keyset()
    assert other.state.acquire("other", 10) is Lease.SHARED
    asked = waiting_for_the_other(client, mine, held)
    clock.now += 1
    other.store(issuer.jwks())  # the other worker's refresh lands; it still holds the lock
    assert asked.result().fetched_at == clock.now
    assert server.total() == 1


def test_waiting_for_another_worker_with_a_clock_counting_from_zero_takes_its_first_keys(oidc_settings, issuer, server):
    clock = Clock(0.0)
    client, other, mine = two_workers(clock)
    assert other.state.acquire("other", 10) is Lease.SHARED
    asked = waiting_for_the_other(client, mine, None)
    clock.now = 0.5
    other.store(issuer.jwks())
    assert asked.result().fetched_at == 0.5
    assert server.total() == 0


def test_waiting_for_another_worker_takes_a_last_look_once_it_released_the_lock(oidc_settings, issuer, server):
    clock = Clock()
    client, other, mine = two_workers(clock)
    held = client.current_keyset()
    assert other.state.acquire("other", 10) is Lease.SHARED

    def other_done() -> None:  # between the waiter's look at the keys and its look at the lock
        clock.now += 1
        other.store(issuer.jwks())
        other.state.release("other", Lease.SHARED)

    asked = waiting_for_the_other(client, mine, held)
    mine.after("get", "failed", other_done)
    assert asked.result().fetched_at == clock.now


def test_waiting_for_another_worker_that_released_the_lock_without_newer_keys_refuses(oidc_settings, issuer, server):
    mine, theirs = shared_caches()
    client, other = worker(cache=mine), worker(cache=theirs)
    held = client.current_keyset()
    assert other.state.acquire("other", 10) is Lease.SHARED
    asked = waiting_for_the_other(client, mine, held)
    other.state.release("other", Lease.SHARED)  # it gave up: nothing newer was stored
    with pytest.raises(KeySourceError) as exc:
        asked.result()
    assert exc.value.reason == "timed out waiting for the JWKS"
    assert server.total() == 1


def test_waiting_for_another_worker_that_never_finishes_lasts_http_timeout_and_half_a_second(
    oidc_settings, issuer, server
):
    import time

    oidc_settings(HTTP_TIMEOUT=1)
    client = worker()
    assert client.state.acquire("other", 10) is Lease.SHARED
    started = time.monotonic()
    with pytest.raises(KeySourceError) as exc:
        client.current_keyset()
    elapsed = time.monotonic() - started
    assert exc.value.reason == "timed out waiting for the JWKS"
    assert 1.5 <= elapsed < 2.0, f"waited {elapsed:.2f}s"
    assert server.total() == 0


# -- the refresh-ahead window, the parsed keys, the version -------------------------------------------


def test_the_refresh_ahead_window_is_at_most_a_tenth_of_the_freshness(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=100, JWKS_REFRESH_AHEAD=30)
    clock = Clock()
    client = worker(clock)
    client.current_keyset()
    clock.now = 1_000_089.9
    client.current_keyset()
    background.join_all(5)
    assert server.total() == 1
    clock.now = 1_000_090.0  # 10 s before the end: a tenth of 100 s, not JWKS_REFRESH_AHEAD's 30
    client.current_keyset()
    background.join_all(5)
    assert server.total() == 2


def test_a_refetch_of_an_unchanged_jwks_keeps_the_parsed_keys_and_their_version(oidc_settings, issuer, server):
    clock = Clock()
    client = worker(clock)
    held = client.current_keyset()
    assert held.version == keyset_version([dict(k.jwk) for k in held.keys])
    clock.now += 1
    renewed = client.refresh(held)
    assert renewed is not held and renewed.fetched_at == clock.now
    assert renewed.version == held.version and renewed.keys[0] is held.keys[0]
    assert client.snapshot().jwks.version == held.version
    issuer.add_key("RS256")
    clock.now += 1
    assert client.refresh(renewed).version != held.version
    assert server.total() == 3


# -- how long the shared entries live ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["cold", "stale"])
def test_the_refresh_lock_lives_twice_the_http_timeout_and_a_second(oidc_settings, issuer, gate, redis_server, path):
    oidc_settings(HTTP_TIMEOUT=1, JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    with redis_server.cache(11) as (cache, raw):
        clock = Clock()
        client = worker(clock, cache)
        if path == "stale":
            client.store(issuer.jwks())
            clock.now += 61
        asked = Outcome(client.current_keyset)
        assert gate.arrived.wait(5)
        ttl = raw.pttl(cache.make_key(client.state.prefix + "lock"))
        gate.opened.set()
        asked.result()
        background.join_all(5)
    assert 2000 < ttl <= 3000


def test_the_shared_key_set_lives_its_freshness_and_the_stale_window(oidc_settings, issuer, redis_server):
    oidc_settings(JWKS_MAX_STALE=600)
    with redis_server.cache(11) as (cache, raw):
        client = worker(cache=cache)
        client.store(issuer.jwks(), ttl=60)
        ttl = raw.pttl(cache.make_key(client.state.prefix + "jwks"))
    assert 659_000 < ttl <= 660_000


# -- the refresh holding the lock, the failure backoff ---------------------------------------------


def test_a_refresh_holding_the_lock_takes_another_workers_fresh_keys_until_their_freshness_ends(
    oidc_settings, issuer, server
):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    clock = Clock()
    client, other = worker(clock), worker(clock)
    held = client.current_keyset()
    clock.now += 61
    renewed = other.store(issuer.jwks(), ttl=30)  # renewed elsewhere meanwhile, fresh until +91
    assert client.refresh(held).fetched_at == renewed.fetched_at
    assert server.total() == 1
    clock.now = renewed.fresh_until  # that renewal's freshness ends: this one fetches
    assert client.refresh(held).fetched_at == clock.now
    assert server.total() == 2


def test_a_clock_counting_from_zero_is_not_in_a_failure_backoff(oidc_settings, issuer, server):
    client = worker(Clock(0.0))
    assert client.get_key(issuer.key.kid, "RS256").kid == issuer.key.kid
    assert server.total() == 1


def test_a_failure_backs_off_every_worker_and_names_the_backoff_in_retry_after(oidc_settings, issuer, server):
    oidc_settings(JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    first, second = worker(clock), worker(clock)
    server.respond("/jwks.json", Response(500, b"{}"))
    with pytest.raises(KeySourceError) as exc:
        first.current_keyset()
    assert (exc.value.reason, exc.value.retry_after) == ("HTTP 500", 5)
    assert first.snapshot().failure_backoff_until == clock.now + 5
    clock.now += 2
    with pytest.raises(KeySourceError) as exc:
        second.current_keyset()  # another worker, within the backoff: no request
    assert (exc.value.reason, exc.value.retry_after) == ("identity provider failed recently", 3)
    clock.now += 3  # the backoff's end: the next attempt is made
    with pytest.raises(KeySourceError) as exc:
        second.current_keyset()
    assert exc.value.reason == "HTTP 500"
    assert server.total() == 2


# -- one issuer's entries in the shared cache, and what this process keeps of them -------------------


def test_the_cache_prefix_is_the_digest_of_the_issuer_and_its_jwks_url(oidc_settings, issuer):
    import dataclasses
    import hashlib

    from drf_oidc_jwks.conf import get_settings

    s = get_settings()
    configured = s.issuers[0]
    discovered = dataclasses.replace(configured, jwks_url=None)
    for each, url in ((configured, configured.jwks_url), (discovered, "")):
        digest = hashlib.sha256(f"{configured.issuer}|{url}".encode()).hexdigest()[:24]
        # The key every worker of every version must agree on (a rolling deploy shares one cache).
        assert JWKSClient(each, s).state.prefix == f"drf_oidc_jwks:v1:{digest}:"


def test_a_client_fetches_through_the_fetcher_it_was_given(oidc_settings, issuer, server):
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.fetching import http_fetch

    asked: list[str] = []

    def fetcher(url: str, **kwargs: Any) -> Any:
        asked.append(url)
        return http_fetch(url, **kwargs)

    s = get_settings()
    client = JWKSClient(s.issuers[0], s, fetch=fetcher)
    assert client.fetch is fetcher
    client.current_keyset()
    assert asked == [server.url("/jwks.json")]


def test_a_second_worker_reads_the_shared_keys_without_fetching(oidc_settings, issuer, server):
    first = worker()
    first.current_keyset()
    second = worker()
    assert second.current_keyset().version == first.current_keyset().version
    assert server.total() == 1


def test_an_older_key_set_written_to_the_cache_later_does_not_replace_this_workers_keys(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=100, JWKS_REFRESH_AHEAD=10)
    clock, late_clock = Clock(), Clock()
    client, late = worker(clock), worker(late_clock)
    client.store(issuer.jwks())
    published_before = issuer.jwks()
    issuer.add_key("RS256")
    clock.now += 1
    mine = client.store(issuer.jwks())
    late.store(published_before)  # another worker's older answer, stored after this one's
    clock.now = 1_000_092.0  # inside the refresh-ahead window: the worker looks at the cache again
    assert client.current_keyset() is mine
    background.join_all(5)
    assert client.current_keyset().fetched_at >= mine.fetched_at
    assert len(client.current_keyset().keys) == 2


def test_with_the_shared_entry_gone_a_worker_keeps_serving_its_own_keys(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=100, JWKS_REFRESH_AHEAD=10)
    clock = Clock()
    client = worker(clock)
    held = client.store(issuer.jwks())
    client.cache.clear()  # evicted, or the cache restarted
    clock.now = 1_000_092.0
    assert client.current_keyset() is held
    background.join_all(5)


def test_each_304_keeps_the_validators_for_the_next_revalidation(oidc_settings, issuer, server):
    server.conditional = True
    clock = Clock()
    client = worker(clock)
    held = client.current_keyset()
    for _ in range(2):
        clock.now += 1
        assert client.refresh(client.current_keyset()).keys == held.keys
    assert server.not_modified == 2
