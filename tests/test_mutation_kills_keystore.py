"""Tests that kill mutants of keystore.py which the rest of the suite let through (scripts/mutation.sh).

Two JWKSClient objects on one cache are two workers of a deployment: what one stores (keys, discovery,
failure backoff, unknown-kid cooldown and its answer), the other must see. A real Redis cache on a closed
port is a cache outage: every entry degrades to the process's own copy. Real loopback IdP throughout.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from typing import Any

import pytest

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import KeySourceError
from drf_oidc_jwks.jwks import JWKSClient
from drf_oidc_jwks.keystore import Lease
from drf_oidc_jwks.testing import Response
from tests.jwks_workers import unknown_key

DISCOVERY = "/.well-known/openid-configuration"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def worker(clock: Any = time.time) -> JWKSClient:
    """A client of its own: another worker process sharing the configured cache."""
    s = get_settings()
    return JWKSClient(s.issuers[0], s, clock=clock)


@pytest.fixture
def cache_down(settings: Any) -> str:
    """A cache alias whose backend is a real Redis client pointed at a closed port (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CACHES = {
        **settings.CACHES,
        "down": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0"},
    }
    return "down"


# -- what one worker stores, the next one reads --------------------------------------


def test_a_second_worker_uses_the_keys_and_the_discovery_the_first_one_stored(oidc_settings, issuer, server):
    oidc_settings(JWKS_URL=None, JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600)
    first = worker(Clock())
    first.get_key(issuer.key.kid, "RS256")
    second = worker(Clock())
    assert second.get_key(issuer.key.kid, "RS256").jwk == first.get_key(issuer.key.kid, "RS256").jwk
    assert second.discovery_document() == issuer.discovery_document()
    assert second.discovery() == issuer.discovery_document()
    assert (server.total(DISCOVERY), server.total()) == (1, 1)
    snapshot = second.snapshot()
    assert snapshot.discovered_jwks_uri == server.url("/jwks.json")
    assert snapshot.jwks is not None
    assert (snapshot.jwks.kids, snapshot.jwks.fetched_at) == ((issuer.key.kid,), 1_000_000.0)
    assert (snapshot.jwks.fresh_until, snapshot.jwks.stale_until) == (1_000_060.0, 1_000_660.0)
    assert snapshot.jwks.version == first.current_keyset().version


def test_a_worker_reads_the_key_set_another_renewed_keeping_its_parsed_keys(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600, JWKS_REFRESH_AHEAD=0)
    clock = Clock()
    first, second = worker(clock), worker(clock)
    first.get_key(issuer.key.kid, "RS256")
    held = second.get_key(issuer.key.kid, "RS256")
    assert second.current_keyset().version == first.current_keyset().version
    clock.now += 61
    first.get_key(issuer.key.kid, "RS256")  # refetched: the same keys, fresh again
    renewed = second.current_keyset()  # read from the cache, not fetched
    assert server.total() == 2
    assert (renewed.version, renewed.fetched_at) == (first.current_keyset().version, 1_000_061.0)
    assert (renewed.fresh_until, renewed.stale_until) == (1_000_121.0, 1_000_721.0)
    assert second.get_key(issuer.key.kid, "RS256") is held  # the same parsed key, not parsed again


def test_a_failure_backs_off_every_worker_until_keys_are_stored(oidc_settings, issuer, server):
    oidc_settings(JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    first = worker(clock)
    server.respond("/jwks.json", Response(500, b"{}"))
    with pytest.raises(KeySourceError):
        first.get_key(issuer.key.kid, "RS256")
    assert first.snapshot().failure_backoff_until == clock.now + 5
    with pytest.raises(KeySourceError) as exc:
        worker(clock).get_key(issuer.key.kid, "RS256")  # another worker, within the backoff: no request
    assert exc.value.reason == "identity provider failed recently"
    assert server.total() == 1
    server.respond("/jwks.json", None)
    first.store(issuer.jwks())  # good keys (an install, or another route): the backoff is over everywhere
    assert first.snapshot().failure_backoff_until is None
    unknown_key(worker(clock), "rotated-in")  # a refetch for an unknown kid is allowed again
    assert server.total() == 2


def test_the_shared_key_set_expires_with_its_freshness_and_stale_window(oidc_settings, issuer, server):
    oidc_settings(JWKS_MAX_STALE=0)
    client = worker()
    client.store(issuer.jwks(), ttl=1)  # cache timeouts are whole seconds: 1 s is the shortest
    assert client.snapshot().jwks is not None
    time.sleep(1.1)
    assert client.snapshot().jwks is None


# -- the unknown-kid cooldown, shared -------------------------------------------------


def test_the_unknown_kid_cooldown_and_its_answer_are_shared_by_every_worker(oidc_settings, issuer, server):
    oidc_settings(JWKS_REFRESH_COOLDOWN=60, HTTP_TIMEOUT=1.5)
    first, second = worker(), worker()
    first.get_key(issuer.key.kid, "RS256")
    unknown_key(first, "random-1")
    assert first.snapshot().unknown_kid_cooldown
    # The other worker meets the cooldown, whose refetch is answered: no request, and no wait for one.
    assert unknown_key(second, "random-2") < 0.5
    assert server.total() == 2


def test_a_worker_meeting_the_cooldown_waits_for_the_refetch_in_flight_and_gets_the_rotated_key(
    oidc_settings, issuer, server
):
    oidc_settings(JWKS_REFRESH_COOLDOWN=60, HTTP_TIMEOUT=2)
    first, second = worker(), worker()
    first.get_key(issuer.key.kid, "RS256")
    second.get_key(issuer.key.kid, "RS256")
    new = issuer.add_key("RS256")
    server.delay = 0.5
    fetching = threading.Thread(target=first.get_key, args=(new.kid, "RS256"))
    fetching.start()
    deadline = time.monotonic() + 2
    while not first.snapshot().unknown_kid_cooldown and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert second.get_key(new.kid, "RS256").kid == new.kid
    finally:
        fetching.join()
    assert server.total() == 2


# -- a cache outage: each process keeps its own lock, backoff and cooldown ----------------


def test_with_the_cache_down_a_process_fetches_once_and_keeps_its_own_cooldown(
    oidc_settings, issuer, server, cache_down
):
    oidc_settings(JWKS_CACHE_ALIAS=cache_down, JWKS_REFRESH_COOLDOWN=60, HTTP_TIMEOUT=1.5)
    clock = Clock()
    client = worker(clock)
    assert client.get_key(issuer.key.kid, "RS256").kid == issuer.key.kid
    assert client.snapshot().jwks is None  # nothing reached the cache
    unknown_key(client, "random-1")
    assert server.total() == 2
    # Within the cooldown: no request, and its refetch is known answered (no wait).
    assert unknown_key(client, "random-2") < 0.5
    clock.now += 59.9
    unknown_key(client, "random-3")
    assert server.total() == 2
    clock.now += 0.1  # exactly the cooldown later: a new one starts
    unknown_key(client, "random-4")
    assert server.total() == 3


def test_with_the_cache_down_a_request_meeting_the_cooldown_waits_for_the_refetch_in_flight(
    oidc_settings, issuer, server, cache_down
):
    oidc_settings(JWKS_CACHE_ALIAS=cache_down, JWKS_REFRESH_COOLDOWN=60, HTTP_TIMEOUT=2)
    client = worker()
    client.get_key(issuer.key.kid, "RS256")
    new = issuer.add_key("RS256")
    server.delay = 0.5
    fetching = threading.Thread(target=client.get_key, args=(new.kid, "RS256"))
    fetching.start()
    deadline = time.monotonic() + 2
    while server.total() < 2 and time.monotonic() < deadline:  # the refetch has reached the IdP
        time.sleep(0.01)
    try:
        assert client.get_key(new.kid, "RS256").kid == new.kid  # another request, same process, same new kid
    finally:
        fetching.join()
    assert server.total() == 2


def test_with_the_cache_down_one_thread_fetches_and_the_others_answer_at_once(
    oidc_settings, issuer, server, cache_down
):
    oidc_settings(JWKS_CACHE_ALIAS=cache_down, HTTP_TIMEOUT=3)
    client = worker()
    server.delay = 1.5
    outcomes: list[tuple[str, float]] = []

    def request() -> None:
        started = time.monotonic()
        try:
            client.get_key(issuer.key.kid, "RS256")
            outcomes.append(("key", time.monotonic() - started))
        except KeySourceError:
            outcomes.append(("503", time.monotonic() - started))

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.max_in_flight == 1 and server.total() == 1  # single flight within the process
    # The others answered from what they had (nothing: a clean 503) instead of queueing on the slow fetch.
    assert len(outcomes) == 6 and "key" in dict(outcomes) and "503" in dict(outcomes), outcomes


def test_with_the_cache_down_a_failure_backs_off_this_process(oidc_settings, issuer, server, cache_down):
    oidc_settings(JWKS_CACHE_ALIAS=cache_down, JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    client = worker(clock)
    server.respond("/jwks.json", Response(500, b"{}"))
    with pytest.raises(KeySourceError):
        client.get_key(issuer.key.kid, "RS256")
    with pytest.raises(KeySourceError) as exc:
        client.get_key(issuer.key.kid, "RS256")
    assert exc.value.reason == "identity provider failed recently"
    assert server.total() == 1


# -- entries the cache holds that this version did not write ------------------------------


def test_foreign_values_in_the_cache_entries_are_ignored(oidc_settings, issuer, server):
    server.conditional = True
    oidc_settings(JWKS_URL=None, JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    clock = Clock()
    client = worker(clock)
    client.get_key(issuer.key.kid, "RS256")
    cache, prefix = client.cache, client.state.prefix
    cache.set(prefix + "discovery_doc", "junk")
    assert client.discovery() == issuer.discovery_document()  # fetched again, not the junk
    entry = cache.get(prefix + "jwks")
    cache.set(prefix + "jwks", {**entry, "etag": 5, "last_modified": ["x"]})
    cache.set(prefix + "discovery", 5)
    cache.set(prefix + "failed", True)  # a bool is not a time
    clock.now += 61
    assert client.get_key(issuer.key.kid, "RS256").kid == issuer.key.kid
    sent = {k.lower() for k in server.last_headers["/jwks.json"]}
    assert not {"if-none-match", "if-modified-since"} & sent  # no validator of the wrong type is sent back
    assert (server.total(DISCOVERY), server.total()) == (3, 2)  # the document and the jwks_uri discovered again
    assert client.snapshot().failure_backoff_until is None


@pytest.mark.parametrize(
    "entry",
    [
        {"keys": []},  # no version
        {"version": "v", "keys": [], "fetched_at": 1.0, "fresh_until": 2.0},  # no stale_until
        {"version": "v", "keys": [], "fetched_at": "soon", "fresh_until": 2.0, "stale_until": 3.0},
    ],
)
def test_a_shared_key_set_entry_missing_its_times_reads_as_no_entry(oidc_settings, entry):
    client = worker()
    client.cache.set(client.state.prefix + "jwks", entry)
    assert client.snapshot().jwks is None


def test_a_snapshot_lists_the_kids_of_key_objects_only(oidc_settings, issuer):
    client = worker()
    client.store(issuer.jwks())
    entry = client.cache.get(client.state.prefix + "jwks")
    client.cache.set(client.state.prefix + "jwks", {**entry, "keys": [*entry["keys"], "junk", {"kty": "RSA"}]})
    snapshot = client.snapshot()
    assert snapshot.jwks is not None and snapshot.jwks.kids == (issuer.key.kid, None)
    for junk in ("junk", None, 5):
        client.cache.set(client.state.prefix + "jwks", {**entry, "keys": junk})
        snapshot = client.snapshot()
        assert snapshot.jwks is not None and snapshot.jwks.kids == ()


def test_a_snapshot_reports_the_lock_the_backoff_and_the_cooldown(oidc_settings, issuer, server):
    oidc_settings(JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    client = worker(clock)
    empty = client.snapshot()
    assert (empty.jwks, empty.discovered_jwks_uri, empty.failure_backoff_until) == (None, None, None)
    assert (empty.refresh_in_progress, empty.unknown_kid_cooldown) == (False, False)
    owner = uuid.uuid4().hex
    lease = client.state.acquire(owner, 10)
    assert client.snapshot().refresh_in_progress
    client.state.release(owner, lease)
    assert not client.snapshot().refresh_in_progress
    server.respond("/jwks.json", Response(500, b"{}"))
    with pytest.raises(KeySourceError):
        client.get_key(issuer.key.kid, "RS256")
    assert client.snapshot().failure_backoff_until == clock.now + 5


# -- a clock counting from zero (an injected counter) ---------------------------------------


def test_a_clock_counting_from_zero_starts_with_no_backoff_and_clears_it_after_keys_are_stored(
    oidc_settings, issuer, server
):
    oidc_settings(JWKS_FAILURE_BACKOFF=5)
    clock = Clock(0.0)
    client = worker(clock)
    server.respond("/jwks.json", Response(500, b"{}"))
    with pytest.raises(KeySourceError) as exc:
        client.get_key(issuer.key.kid, "RS256")
    assert exc.value.reason == "HTTP 500"  # fetched: not backed off before anything failed
    server.respond("/jwks.json", None)
    clock.now = 0.1
    client.store(issuer.jwks())
    clock.now = 0.5
    unknown_key(client, "random-1")  # the backoff is cleared: the refetch is made
    assert server.total() == 2


def test_a_clock_counting_from_zero_with_the_cache_down_starts_no_cooldown_before_the_first(
    oidc_settings, issuer, server, cache_down
):
    oidc_settings(JWKS_CACHE_ALIAS=cache_down, JWKS_REFRESH_COOLDOWN=60)
    clock = Clock(60.0)
    client = worker(clock)
    client.get_key(issuer.key.kid, "RS256")
    unknown_key(client, "random-1")  # 60 s after zero: no cooldown ran before, so this one refetches
    assert server.total() == 2


def test_releasing_a_refresh_lock_that_expired_leaves_the_next_holders_lock_alone(oidc_settings):
    first, second = worker(), worker()
    lease = first.state.acquire("first", 1)  # the shortest lock a cache keeps: one second
    time.sleep(1.1)  # a refresh that outlived its lock
    assert second.state.acquire("second", 10) is Lease.SHARED
    first.state.release("first", lease)
    assert second.snapshot().refresh_in_progress  # still the second worker's
