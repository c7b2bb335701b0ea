"""Tests that kill mutants of jwks.py which the rest of the suite let through (scripts/mutation.sh).

Each names the behaviour it pins: keys stored without HTTP (``store``, ``install_jwks``), the kids held,
``warm``, discovery from the cache, ``holds`` at its recheck time, the background refresh (refresh-ahead
and health/: when it starts, whether it fetches, the lock it holds and gives back), and the unknown-kid
refetch with its cooldown. Two JWKSClient objects on one cache are two workers of a deployment. A fetch in
flight is held open by a gate in the loopback IdP's answer (no sleeps racing the clock). Real loopback IdP
throughout; a real Redis where a lock's lifetime is read back.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from drf_oidc_jwks import background, signals
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import KeySourceError
from drf_oidc_jwks.jwks import JWKSClient, get_client, install_jwks
from drf_oidc_jwks.keystore import Lease
from drf_oidc_jwks.testing import Response, generate_key
from tests.jwks_workers import (
    Clock,
    Gate,
    Outcome,
    WatchedCache,
    gated,
    lock_held,
    shared_caches,
    two_workers,
    unknown_key,
    worker,
)

DISCOVERY = "/.well-known/openid-configuration"


@pytest.fixture
def gate(issuer: Any, server: Any) -> Iterator[Gate]:
    yield from gated(issuer, server)


# -- keys stored without HTTP -------------------------------------------------------------


def test_store_keeps_a_document_as_a_fetch_would_for_its_ttl_or_jwks_cache_ttl(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=300, JWKS_MAX_STALE=600)
    clock = Clock()
    client = worker(clock)
    stored = client.store(issuer.jwks(), ttl=42)
    assert [k.kid for k in stored.keys] == [issuer.key.kid]
    assert (stored.fetched_at, stored.fresh_until, stored.stale_until) == (1_000_000.0, 1_000_042.0, 1_000_642.0)
    assert client.get_key(issuer.key.kid, "RS256") is stored.keys[0]
    clock.now += 1
    again = client.store(issuer.jwks())
    assert again.fresh_until - again.fetched_at == 300
    assert server.total() == 0


def test_store_refuses_a_document_whose_only_key_is_below_min_rsa_key_size(oidc_settings):
    weak = generate_key("RS256", kid="weak", rsa_bits=1024, fresh=True)
    with pytest.raises(KeySourceError):
        worker().store({"keys": [weak.public_jwk()]})


def test_install_jwks_stores_the_issuers_keys_for_the_given_ttl_without_http(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=300)
    configured = get_settings().issuers[0]
    installed = install_jwks(configured, issuer.jwks(), 42)
    assert installed.fresh_until - installed.fetched_at == 42
    assert [k.kid for k in installed.keys] == [issuer.key.kid]
    assert get_client(configured).get_key(issuer.key.kid, "RS256") is installed.keys[0]
    assert server.total() == 0


def test_known_kids_are_those_held_here_else_those_shared_else_none(oidc_settings, issuer):
    client = worker()
    assert client.known_kids() == []
    client.store(issuer.jwks())
    assert worker().known_kids() == [issuer.key.kid]  # another worker: from the shared cache
    client.cache.clear()
    assert client.known_kids() == [issuer.key.kid]  # this one: from its own memo, the cache emptied


# -- warm ----------------------------------------------------------------------------------


def test_warm_with_a_jwks_url_fetches_only_the_jwks_and_fetches_again_when_called_again(oidc_settings, issuer, server):
    client = worker()
    assert [k.kid for k in client.warm().keys] == [issuer.key.kid]
    assert (server.total(DISCOVERY), server.total()) == (0, 1)
    client.warm()  # held keys, fresh: warming still fetches
    assert (server.total(DISCOVERY), server.total()) == (0, 2)


def test_warm_without_a_jwks_url_discovers_first(oidc_settings, issuer, server):
    oidc_settings(JWKS_URL=None)
    worker().warm()
    assert (server.total(DISCOVERY), server.total()) == (1, 1)


def test_warm_waits_for_the_refresh_another_worker_holds_the_lock_for(oidc_settings, issuer, server):
    clock = Clock()
    client, other = worker(clock), worker(clock)
    client.get_key(issuer.key.kid, "RS256")
    assert other.state.acquire("other", 10) is Lease.SHARED  # the other worker is refreshing
    clock.now += 1
    other.store(issuer.jwks())  # ... and stores its keys
    warmed = client.warm()
    assert warmed.fetched_at == clock.now
    assert server.total() == 1


# -- discovery -----------------------------------------------------------------------------


def test_discovery_is_fetched_once_then_read_from_the_cache(oidc_settings, issuer, server):
    oidc_settings(JWKS_URL=None)
    client = worker()
    assert client.discovery() == issuer.discovery_document()
    assert client.discovery() == issuer.discovery_document()
    assert worker().discovery() == issuer.discovery_document()
    assert server.total(DISCOVERY) == 1


def test_discovery_gets_the_whole_http_timeout(oidc_settings, issuer, server):
    oidc_settings(JWKS_URL=None, HTTP_TIMEOUT=30)
    document = json.dumps(issuer.discovery_document()).encode()
    server.respond(DISCOVERY, Response(200, document, delay=0.2))
    assert worker().discovery() == issuer.discovery_document()


# -- holds ----------------------------------------------------------------------------------


def test_holds_answers_for_the_very_key_objects_this_worker_parsed(oidc_settings, issuer):
    key = worker().get_key(issuer.key.kid, "RS256")
    second = worker()  # holds nothing yet: reads the shared entry and parses keys of its own
    assert second.holds(key) is False
    assert second.holds(second.get_key(issuer.key.kid, "RS256")) is True


def test_holds_looks_again_exactly_at_its_recheck_time(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    clock = Clock()
    client = worker(clock)
    key = client.get_key(issuer.key.kid, "RS256")
    clock.now += 59.9
    assert client.holds(key) is True
    assert server.total() == 1
    clock.now = 1_000_060.0  # freshness ends: the check time, with no refresh-ahead window
    client.holds(key)
    background.join_all(5)
    assert server.total() == 2


# -- current_keyset: fresh, the refresh-ahead window, stale, expired -----------------------------------


@pytest.fixture
def stale_served() -> Iterator[list[dict[str, Any]]]:
    """Each ``stale_keys_served`` sent, as a dict of its arguments."""
    sent: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        sent.append(kwargs)

    signals.stale_keys_served.connect(receiver, weak=False)
    yield sent
    signals.stale_keys_served.disconnect(receiver)


def test_at_the_very_end_of_freshness_the_keys_are_served_as_stale(oidc_settings, issuer, server, stale_served):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    clock = Clock()
    client = worker(clock)
    held = client.current_keyset()
    server.respond("/jwks.json", Response(500, b"{}"))
    clock.now = 1_000_060.0
    assert client.current_keyset() is held
    assert stale_served == [{"issuer": issuer.issuer, "age": 0.0}]
    assert server.total() == 2


def test_at_the_very_end_of_the_stale_window_the_keys_are_no_longer_served(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    clock = Clock()
    client = worker(clock)
    client.current_keyset()
    server.respond("/jwks.json", Response(500, b"{}"))
    clock.now = 1_000_660.0
    with pytest.raises(KeySourceError) as exc:
        client.current_keyset()
    assert exc.value.reason == "HTTP 500"


def test_expired_keys_are_not_taken_back_while_another_worker_refreshes(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600, HTTP_TIMEOUT=0.2)
    clock = Clock()
    client = worker(clock)
    client.current_keyset()
    assert client.state.acquire("other", 10) is Lease.SHARED
    clock.now = 1_000_700.0  # past the stale window; the shared entry is still in the cache
    with pytest.raises(KeySourceError) as exc:
        client.current_keyset()
    assert exc.value.reason == "timed out waiting for the JWKS"
    assert server.total() == 1


def test_the_refresh_ahead_window_starts_one_background_refresh_at_its_first_instant(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=100, JWKS_REFRESH_AHEAD=10)
    clock = Clock()
    client = worker(clock)
    held = client.current_keyset()
    clock.now = 1_000_090.0  # freshness ends at +100: the window opens at +90
    assert client.current_keyset() is held  # the request does not wait
    background.join_all(5)
    assert server.total() == 2
    assert client.current_keyset().fetched_at == clock.now


def test_inside_the_refresh_ahead_window_a_worker_looks_at_the_cache_once_a_second(oidc_settings, issuer, gate):
    oidc_settings(JWKS_CACHE_TTL=100, JWKS_REFRESH_AHEAD=10)
    [cache] = shared_caches(1)
    clock = Clock()
    client = worker(clock, cache)
    client.store(issuer.jwks())
    clock.now = 1_000_090.0
    client.current_keyset()  # starts the refresh, which stays at the IdP
    assert gate.arrived.wait(5)
    cache.calls.clear()
    clock.now = 1_000_090.5
    client.current_keyset()
    assert cache.calls == {}
    clock.now = 1_000_091.0  # AHEAD_RECHECK later: it looks again
    client.current_keyset()
    assert cache.calls[("get", "jwks")] == 1


def test_stale_keys_are_served_quietly_without_cache_calls_while_this_process_refreshes(
    oidc_settings, issuer, gate, caplog
):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    [cache] = shared_caches(1)
    clock = Clock()
    client = worker(clock, cache)
    held = client.store(issuer.jwks())
    clock.now += 61
    assert client.refresh_in_background() is True  # health/ found them stale: the refresh stays at the IdP
    assert gate.arrived.wait(5)
    cache.calls.clear()
    with caplog.at_level(logging.DEBUG, logger="drf_oidc_jwks"):
        assert client.current_keyset() is held
    assert cache.calls == {("get", "jwks"): 1}  # its look for newer keys; no backoff, no lock
    served = [r for r in caplog.records if r.getMessage().startswith("serving stale JWKS")]
    assert [(r.levelno, r.getMessage().rsplit(": ", 1)[1]) for r in served] == [(logging.DEBUG, "refresh running")]


# -- the background refresh (refresh-ahead, health/) ---------------------------------------------


def test_a_background_refresh_holds_the_lock_while_it_fetches_and_gives_it_back(oidc_settings, issuer, gate):
    [cache] = shared_caches(1)
    client = worker(cache=cache)
    assert client.refresh_in_background() is True
    assert gate.arrived.wait(5)
    assert lock_held(client)
    cache.calls.clear()
    assert client.refresh_in_background() is False  # running here: no cache round-trip to say so
    assert cache.calls == {}
    gate.opened.set()
    background.join_all(5)
    assert not lock_held(client)
    assert client.known_kids() == [issuer.key.kid]


def test_a_background_refresh_is_not_started_while_another_worker_holds_the_lock(oidc_settings, issuer, server):
    client = worker()
    assert client.state.acquire("other", 10) is Lease.SHARED
    assert client.refresh_in_background() is False
    background.join_all(5)
    assert server.total() == 0


def test_a_background_refresh_waits_out_the_failure_backoff_to_its_last_instant(oidc_settings, issuer, server):
    oidc_settings(JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    client = worker(clock)
    server.respond("/jwks.json", Response(500, b"{}"))
    with pytest.raises(KeySourceError):
        client.get_key(issuer.key.kid, "RS256")
    server.respond("/jwks.json", None)
    clock.now += 4.9
    assert client.refresh_in_background() is False
    clock.now = 1_000_005.0  # the backoff's end
    assert client.refresh_in_background() is True
    background.join_all(5)
    assert server.total() == 2


def test_a_refresh_ahead_fetches_although_the_keys_it_renews_are_still_fresh(oidc_settings, issuer, server):
    clock = Clock()
    client = worker(clock)
    held = client.current_keyset()
    assert client.refresh_in_background(held) is True
    background.join_all(5)
    assert server.total() == 2
    assert client.current_keyset() is not held


def test_a_refresh_ahead_uses_the_keys_another_worker_renewed_meanwhile(oidc_settings, issuer, server):
    clock = Clock()
    client, other = worker(clock), worker(clock)
    held = client.current_keyset()
    clock.now += 1
    other.store(issuer.jwks())  # renewed elsewhere after this worker's keys
    assert client.refresh_in_background(held) is True
    background.join_all(5)
    assert server.total() == 1
    assert client.current_keyset().fetched_at == clock.now


def test_a_health_refresh_leaves_fresh_keys_alone_and_renews_them_once_their_freshness_ends(
    oidc_settings, issuer, server
):
    oidc_settings(JWKS_CACHE_TTL=60)
    clock = Clock()
    client = worker(clock)
    client.current_keyset()
    clock.now += 59.9
    assert client.refresh_in_background() is True
    background.join_all(5)
    assert server.total() == 1  # fresh: nothing fetched
    clock.now = 1_000_060.0  # exactly the end of freshness
    assert client.refresh_in_background() is True
    background.join_all(5)
    assert server.total() == 2


def test_a_background_refresh_that_loses_the_race_to_another_thread_of_this_process_gives_the_lock_back(
    oidc_settings, issuer, server
):
    [cache] = shared_caches(1)
    client = worker(cache=cache)
    released = threading.Event()
    # Between "nothing runs here" and starting its thread, another refresh of this process starts.
    cache.after("add", "lock", lambda: background.start(client.state.prefix, lambda: released.wait(5)))
    try:
        assert client.refresh_in_background() is False
        assert not lock_held(client)
    finally:
        released.set()
        background.join_all(5)
    assert server.total() == 0


# -- an unknown kid: the cooldown, the refetch and those who wait for it ----------------------------


def test_a_kid_another_worker_already_stored_is_used_without_taking_the_cooldown(oidc_settings, issuer, server):
    clock = Clock()
    client = worker(clock)
    client.get_key(issuer.key.kid, "RS256")
    new = issuer.add_key("RS256")
    clock.now += 1
    worker(clock).store(issuer.jwks())
    assert client.get_key(new.kid, "RS256").kid == new.kid
    assert not client.snapshot().unknown_kid_cooldown
    assert server.total() == 1


def test_the_unknown_kid_refetch_holds_the_lock_while_it_fetches_and_gives_it_back(oidc_settings, issuer, gate):
    client = worker()
    client.store(issuer.jwks())
    new = issuer.add_key("RS256")
    asked = Outcome(lambda: client.get_key(new.kid, "RS256"))
    assert gate.arrived.wait(5)
    assert lock_held(client)
    gate.opened.set()
    assert asked.result().kid == new.kid
    assert not lock_held(client)


def test_the_unknown_kid_refetch_waiting_for_another_workers_lock_takes_the_kid_it_stores(
    oidc_settings, issuer, server
):
    oidc_settings(HTTP_TIMEOUT=1)
    clock = Clock()
    client, other, mine = two_workers(clock)
    client.get_key(issuer.key.kid, "RS256")
    assert other.state.acquire("other", 10) is Lease.SHARED  # the other worker is refreshing
    new = issuer.add_key("RS256")
    mine.calls.clear()
    asked = Outcome(lambda: client.get_key(new.kid, "RS256"))
    assert mine.wait_calls("add", "lock", 2)  # it polls for the lock, every 0.05 s
    clock.now += 1
    other.store(issuer.jwks())  # the other worker's refresh lands, with the new kid
    assert asked.result(3).kid == new.kid
    assert server.total() == 1


def test_the_unknown_kid_refetch_getting_the_lock_after_the_kid_was_stored_does_not_fetch(
    oidc_settings, issuer, server
):
    clock = Clock()
    client, other, mine = two_workers(clock)
    client.get_key(issuer.key.kid, "RS256")
    assert other.state.acquire("other", 10) is Lease.SHARED
    new = issuer.add_key("RS256")

    def other_done() -> None:  # run just before the waiting worker sleeps: it takes the lock next
        clock.now += 1
        other.store(issuer.jwks())
        other.state.release("other", Lease.SHARED)

    mine.calls.clear()
    asked = Outcome(lambda: client.get_key(new.kid, "RS256"))
    assert mine.wait_calls("add", "lock", 2)
    mine.after("get", "failed", other_done)  # its backoff check, the last cache call before it sleeps
    assert asked.result(3).kid == new.kid
    assert server.total() == 1


def test_the_unknown_kid_refetch_fetches_although_keys_without_the_kid_were_stored_meanwhile(
    oidc_settings, issuer, server
):
    clock = Clock()
    client, other, mine = two_workers(clock)
    client.get_key(issuer.key.kid, "RS256")
    published_before = issuer.jwks()
    new = issuer.add_key("RS256")

    def late_store() -> None:  # another worker's older answer lands while this one holds the lock
        clock.now += 1
        other.store(published_before)

    mine.after("add", "lock", lambda: mine.after("get", "jwks", late_store))
    assert client.get_key(new.kid, "RS256").kid == new.kid
    assert server.total() == 2


def test_the_unknown_kid_refetch_shares_one_http_timeout_between_waiting_for_the_lock_and_fetching(
    oidc_settings, issuer, gate
):
    oidc_settings(HTTP_TIMEOUT=1)
    mine, theirs = shared_caches()
    client, other = worker(cache=mine), worker(cache=theirs)
    client.store(issuer.jwks())
    assert other.state.acquire("other", 10) is Lease.SHARED
    mine.calls.clear()
    started = time.monotonic()
    asked = Outcome(lambda: client.get_key("rotated-in", "RS256"))
    assert mine.wait_calls("add", "lock", 16)  # 15 sleeps of 0.05 s at least: 0.75 s of the second spent
    other.state.release("other", Lease.SHARED)  # the lock is free: the fetch gets only what is left
    with pytest.raises(KeySourceError) as exc:
        asked.result(5)
    assert exc.value.reason == "timed out"
    assert time.monotonic() - started < 1.5


def waiting_for_the_refetch(client: JWKSClient, kid: str, cache: WatchedCache) -> Outcome:
    """``client`` asks for ``kid`` while another worker's cooldown refetch is in flight; return once it waits."""
    cache.calls.clear()
    asked = Outcome(lambda: client.get_key(kid, "RS256"))
    assert cache.wait_calls("get", "cooldown_answer", 2)  # it looked whether the refetch answered, twice
    return asked


def test_a_worker_meeting_the_cooldown_waits_for_the_refetch_in_flight_and_gets_its_kid(
    oidc_settings, issuer, server, gate
):
    mine, theirs = shared_caches()
    clock = Clock()
    fetching, waiting = worker(clock, theirs), worker(clock, mine)
    fetching.store(issuer.jwks())
    waiting.current_keyset()
    fetching.state.record_failure(clock.now, 5)  # a failure backoff that ends this very instant
    new = issuer.add_key("RS256")
    refetch = Outcome(lambda: fetching.get_key(new.kid, "RS256"))
    assert gate.arrived.wait(5)  # the refetch is at the IdP, the cooldown taken
    asked = waiting_for_the_refetch(waiting, new.kid, mine)
    clock.now += 1
    gate.opened.set()
    assert refetch.result().kid == new.kid
    assert asked.result().kid == new.kid
    assert server.total() == 1


def test_a_worker_waiting_for_the_refetch_answers_as_soon_as_a_stored_key_set_holds_the_kid(
    oidc_settings, issuer, gate
):
    mine, theirs, third = shared_caches(3)
    clock = Clock()
    fetching, waiting = worker(clock, theirs), worker(clock, mine)
    fetching.store(issuer.jwks())
    waiting.current_keyset()
    new = issuer.add_key("RS256")
    refetch = Outcome(lambda: fetching.get_key(new.kid, "RS256"))
    assert gate.arrived.wait(5)
    asked = waiting_for_the_refetch(waiting, new.kid, mine)
    clock.now += 1
    worker(clock, third).store(issuer.jwks())  # a third worker stores the new keys: the refetch is still out
    assert asked.result(3).kid == new.kid
    assert not gate.opened.is_set()
    gate.opened.set()
    refetch.result()


def test_a_worker_waiting_for_the_refetch_takes_the_kid_stored_with_its_answer(oidc_settings, issuer, gate):
    mine, theirs = shared_caches()
    clock = Clock()
    fetching, waiting = worker(clock, theirs), worker(clock, mine)
    fetching.store(issuer.jwks())
    waiting.current_keyset()
    new = issuer.add_key("RS256")
    refetch = Outcome(lambda: fetching.get_key(new.kid, "RS256"))
    assert gate.arrived.wait(5)

    def answered_meanwhile() -> None:  # between its look at the keys and its look at the answer
        clock.now += 1
        gate.opened.set()
        refetch.result()

    asked = waiting_for_the_refetch(waiting, new.kid, mine)
    mine.after("get", "jwks", answered_meanwhile)
    assert asked.result().kid == new.kid


def test_a_worker_meeting_a_cooldown_whose_refetch_never_answers_waits_http_timeout_and_half_a_second(
    oidc_settings, issuer, server
):
    oidc_settings(HTTP_TIMEOUT=1)
    clock = Clock()
    client = worker(clock)
    client.get_key(issuer.key.kid, "RS256")
    assert worker(clock).state.start_cooldown(clock.now, 60)  # taken by a worker that then died
    elapsed = unknown_key(client, "rotated-in")
    assert 1.5 <= elapsed < 2.0, f"waited {elapsed:.2f}s"
    assert server.total() == 1


# -- how long the refresh lock lives -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["background", "unknown kid"])
def test_the_refresh_lock_lives_twice_the_http_timeout_and_a_second(oidc_settings, issuer, gate, redis_server, path):
    oidc_settings(HTTP_TIMEOUT=1)
    with redis_server.cache(10) as (cache, raw):
        client = worker(cache=cache)
        if path == "background":
            assert client.refresh_in_background() is True
        else:
            client.store(issuer.jwks())
            Outcome(lambda: unknown_key(client, "rotated-in"))
        assert gate.arrived.wait(5)
        ttl = raw.pttl(cache.make_key(client.state.prefix + "lock"))
        gate.opened.set()
        background.join_all(5)
    assert 2000 < ttl <= 3000


def test_a_worker_meeting_a_cooldown_already_answered_looks_once_and_does_not_wait(oidc_settings, issuer, server):
    mine, theirs = shared_caches()
    first, second = worker(cache=theirs), worker(cache=mine)
    first.get_key(issuer.key.kid, "RS256")
    second.current_keyset()
    unknown_key(first, "random-1")  # takes the cooldown, refetches, answers it
    mine.calls.clear()
    unknown_key(second, "random-2")
    assert mine.calls[("get", "cooldown_answer")] == 1
    assert server.total() == 2


# -- the questions asked per token, and one client per issuer ----------------------------------------


def test_a_known_kid_is_answered_from_this_process_without_a_cache_call(oidc_settings, issuer):
    [cache] = shared_caches(1)
    client = worker(cache=cache)
    key = client.get_key(issuer.key.kid, "RS256")
    cache.calls.clear()
    assert client.get_key(issuer.key.kid, "RS256") is key
    assert cache.calls == {}


def test_a_token_without_a_kid_uses_the_only_key_without_a_refetch(oidc_settings, issuer, server):
    client = worker()
    key = client.get_key(None, "RS256")
    assert client.get_key(None, "RS256") is key and key.kid == issuer.key.kid
    assert not client.snapshot().unknown_kid_cooldown
    assert server.total() == 1


def test_get_client_keeps_one_client_per_issuer_settings_object(oidc_settings, issuer):
    import dataclasses

    configured = get_settings().issuers[0]
    client = get_client(configured)
    assert get_client(configured) is client
    changed = dataclasses.replace(configured, jwks_url=configured.jwks_url + "?v=2")
    renewed = get_client(changed)
    assert renewed is not client and renewed.issuer is changed
    assert get_client(changed) is renewed
