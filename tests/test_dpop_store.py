"""The DPoP replay store (Django's shared cache: LocMem and a real Redis) and the stateless server nonces."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from drf_oidc_jwks.dpop import ProofResult, check_proof
from drf_oidc_jwks.dpop_store import NonceIssuer, ReplayStore, replay_key
from drf_oidc_jwks.exceptions import InvalidDPoPProof, KeySourceError, ReplayCacheUnavailable, UseDPoPNonce
from drf_oidc_jwks.testing_dpop import DPoPKey
from tests.services import RedisServer

URL = "https://api.example.com/api/me"
pytestmark = pytest.mark.django_db(databases=[])


def result(jti: str = "j-1", jkt: str = "k" * 43, iat: float | None = None) -> ProofResult:
    return ProofResult(jkt, jti, time.time() if iat is None else iat, "GET", URL, "ES256", None, {})


@pytest.fixture
def locmem() -> LocMemCache:
    cache = LocMemCache("dpop-test", {})
    cache.clear()
    return cache


@pytest.fixture
def redis_cache(redis_server: RedisServer) -> Iterator[tuple[RedisCache, redis.Redis]]:
    with redis_server.cache(6) as pair:
        yield pair


@pytest.fixture(params=["locmem", "redis"])
def store(request: pytest.FixtureRequest) -> ReplayStore:
    if request.param == "locmem":
        return ReplayStore(request.getfixturevalue("locmem"))
    return ReplayStore(request.getfixturevalue("redis_cache")[0])


# ---------------------------------------------------------------------------
# Replay


def test_a_proof_is_accepted_once_and_its_replay_refused(store):
    store.remember(result(), max_age=300, leeway=5)
    with pytest.raises(InvalidDPoPProof) as info:
        store.remember(result(), max_age=300, leeway=5)
    assert info.value.code == "invalid_dpop_proof"
    assert info.value.description == "The DPoP proof was already used."


def test_the_same_jti_from_another_key_and_another_jti_from_the_same_key_are_distinct_proofs(store):
    store.remember(result("j-1", "a" * 43), max_age=300, leeway=5)
    store.remember(result("j-1", "b" * 43), max_age=300, leeway=5)
    store.remember(result("j-2", "a" * 43), max_age=300, leeway=5)


def test_a_real_proof_checked_twice_is_refused_the_second_time(store):
    key = DPoPKey()
    proof = key.proof("GET", URL)
    for attempt in range(2):
        checked = check_proof(proof, method="GET", url=URL, access_token=None)
        if attempt == 0:
            store.remember(checked, max_age=300, leeway=5)
        else:
            with pytest.raises(InvalidDPoPProof):
                store.remember(checked, max_age=300, leeway=5)


def test_every_entry_has_the_same_small_size_whatever_the_jti():
    short, long = replay_key("k" * 43, "j"), replay_key("k" * 43, "j" * 256)
    assert len(short) == len(long) < 100
    assert "j" * 10 not in long


def test_the_redis_entry_lives_exactly_as_long_as_the_proof_could_pass_the_iat_check(redis_cache):
    cache, raw = redis_cache
    now = time.time()
    ReplayStore(cache).remember(result(iat=now - 100), max_age=300, leeway=5, now=now)
    (key,) = raw.keys("*dpop*")
    assert len(key) < 120
    # iat + max_age + leeway - now = 205 s, rounded up, plus one for the second boundary.
    assert 200 <= raw.ttl(key) <= 207
    assert len(raw.get(key) or b"") < 16


def test_an_entry_expires_when_the_proof_is_no_longer_acceptable(locmem):
    now = time.time()
    store = ReplayStore(locmem)
    store.remember(result(iat=now - 299.5), max_age=300, leeway=0, now=now)
    time.sleep(2.1)  # the entry's timeout is ceil(0.5) + 1 = 2 s
    store.remember(result(iat=now - 299.5), max_age=300, leeway=0, now=now)


def test_a_redis_outage_refuses_the_proof_with_a_503_and_never_lets_it_through(redis_cache, redis_server):
    cache, _ = redis_cache
    store = ReplayStore(cache)
    with redis_server.stopped():
        started = time.monotonic()
        with pytest.raises(ReplayCacheUnavailable) as info:
            store.remember(result(), max_age=300, leeway=5)
        assert time.monotonic() - started < 5
    error = info.value
    assert isinstance(error, KeySourceError) and (error.code, error.status) == ("idp_unavailable", 503)
    assert "j-1" not in error.reason
    store.remember(result("after"), max_age=300, leeway=5)  # back up: the store works again


# ---------------------------------------------------------------------------
# Nonces


def test_a_nonce_is_good_in_its_window_and_the_next_then_refused_with_a_fresh_one(settings):
    nonces = NonceIssuer(window=60)
    t0 = 6_000_000.0
    nonce = nonces.issue(t0)
    assert len(nonce) == 32
    nonces.check(nonce, t0 + 59)
    nonces.check(nonce, t0 + 119)
    with pytest.raises(UseDPoPNonce) as info:
        nonces.check(nonce, t0 + 120)
    assert (info.value.code, info.value.status) == ("use_dpop_nonce", 401)
    fresh = info.value.nonce
    assert fresh is not None and fresh != nonce
    nonces.check(fresh, t0 + 120)


def test_a_nonce_issued_by_one_worker_is_good_on_another():
    t = 6_000_000.0
    assert NonceIssuer().issue(t) == NonceIssuer().issue(t)
    NonceIssuer().check(NonceIssuer().issue(t), t)


def test_a_proof_without_a_nonce_gets_use_dpop_nonce_with_one_to_use():
    with pytest.raises(UseDPoPNonce) as info:
        NonceIssuer().check(None)
    assert info.value.nonce is not None
    NonceIssuer().check(info.value.nonce)


@pytest.mark.parametrize("forged", ["", "x" * 32, "A" * 32, "not-a-nonce", "A" * 31 + "=", 5])
def test_a_nonce_this_server_never_issued_is_refused(forged):
    with pytest.raises(UseDPoPNonce):
        NonceIssuer().check(forged)


def test_a_nonce_from_a_future_window_is_refused():
    nonces = NonceIssuer(window=60)
    with pytest.raises(UseDPoPNonce):
        nonces.check(nonces.issue(6_000_120.0), 6_000_000.0)


def test_a_nonce_made_with_another_secret_key_is_refused_and_fallbacks_still_verify(settings):
    old, original = NonceIssuer().issue(), settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-for-the-rotation-test"
    with pytest.raises(UseDPoPNonce):
        NonceIssuer().check(old)
    settings.SECRET_KEY_FALLBACKS = ["another-old-key", original]
    NonceIssuer().check(old)


def test_a_nonce_of_another_context_is_refused():
    with pytest.raises(UseDPoPNonce):
        NonceIssuer(context="https://issuer-b.test").check(NonceIssuer(context="https://issuer-a.test").issue())


def test_a_nonce_of_the_previous_window_is_good_but_due_for_renewal():
    nonces = NonceIssuer(window=60)
    nonce = nonces.issue(6_000_000.0)
    assert nonces.is_current(nonce, 6_000_030.0)
    assert not nonces.is_current(nonce, 6_000_061.0)
    nonces.check(nonce, 6_000_061.0)


def test_the_checker_plugs_into_check_proof():
    key, nonces = DPoPKey(), NonceIssuer()
    with pytest.raises(UseDPoPNonce) as info:
        check_proof(key.proof("GET", URL), method="GET", url=URL, access_token=None, nonce_checker=nonces.checker())
    given: Any = info.value.nonce
    checked = check_proof(
        key.proof("GET", URL, nonce=given), method="GET", url=URL, access_token=None, nonce_checker=nonces.checker()
    )
    assert checked.nonce == given


def test_a_window_that_is_not_positive_is_refused():
    with pytest.raises(ValueError):
        NonceIssuer(window=0)


def test_the_store_for_an_alias_follows_a_caches_change(settings):
    from django.core.cache import caches

    before = ReplayStore.for_alias("default")
    assert before is ReplayStore.for_alias("default")  # kept between requests
    assert before.cache is caches["default"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "moved"}}
    after = ReplayStore.for_alias("default")
    caches["default"].clear()  # LocMem "moved" is process-wide: a second run in one process (mutmut) reuses it
    assert after is not before
    assert after.cache is caches["default"]
    after.remember(result(jti="moved"), max_age=300, leeway=0)
    assert caches["default"].get(replay_key("k" * 43, "moved")) == 1


def test_each_thread_has_its_own_store_on_its_own_cache_object():
    # Django gives each thread its own cache object (some clients are not thread-safe): so does the store.
    import threading

    from django.core.cache import caches

    seen: dict[str, Any] = {}

    def in_thread() -> None:
        seen["store"], seen["cache"] = ReplayStore.for_alias("default"), caches["default"]

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    here = ReplayStore.for_alias("default")
    assert seen["store"] is not here
    assert seen["store"].cache is seen["cache"] is not here.cache


# ---------------------------------------------------------------------------
# Pinned by mutation testing (docs/security.md, "Mutation testing")


def test_a_jti_holding_a_lone_surrogate_is_recorded_and_its_replay_refused(store):
    # JSON "\ud800" decodes to a lone surrogate: the key must still be computed, not raise a 500.
    jti = "j-\ud800"
    assert replay_key("k" * 43, jti) != replay_key("k" * 43, "j-\ud801")
    store.remember(result(jti), max_age=300, leeway=5)
    with pytest.raises(InvalidDPoPProof):
        store.remember(result(jti), max_age=300, leeway=5)


def test_the_replay_key_is_the_prefix_and_128_bits_of_digest():
    key = replay_key("k" * 43, "j-1")
    prefix = "drf_oidc_jwks:dpop:v2:"
    assert key.startswith(prefix)
    assert len(key) == len(prefix) + 22  # 16 bytes in unpadded base64url


def test_the_redis_entry_timeout_follows_the_given_clock_to_the_second(redis_cache):
    cache, raw = redis_cache
    now = time.time() + 1000  # another clock than the machine's: the entry must follow the one given
    ReplayStore(cache).remember(result("a", iat=now - 100), max_age=300, leeway=5, now=now)
    (key,) = raw.keys("*dpop*")
    assert 205 <= raw.ttl(key) <= 206  # ceil(205) + 1


def test_a_proof_already_past_its_window_is_kept_one_second(redis_cache):
    cache, raw = redis_cache
    now = time.time()
    ReplayStore(cache).remember(result("late", iat=now - 400), max_age=300, leeway=5, now=now)
    (key,) = raw.keys("*dpop*")
    assert raw.ttl(key) == 1


def test_a_new_thread_gets_a_working_store_after_every_reset_of_a_fresh_process():
    # A thread's stores start at generation -1: no reset may ever reach that number (a fresh process here,
    # so the count of resets starts at zero).
    import os
    import subprocess
    import sys

    code = (
        "import threading, django; django.setup()\n"
        "from drf_oidc_jwks.dpop_store import ReplayStore, reset_stores\n"
        "out = []\n"
        "def run():\n"
        "    try:\n"
        "        out.append(ReplayStore.for_alias('default').cache is not None)\n"
        "    except Exception as exc:\n"
        "        out.append(type(exc).__name__)\n"
        "for _ in range(3):\n"
        "    t = threading.Thread(target=run); t.start(); t.join(); reset_stores()\n"
        "print(out)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "testproject.settings")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=os.getcwd(), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "[True, True, True]", done.stderr[-2000:]


def test_the_nonce_format_is_the_window_and_its_hmac_so_workers_of_any_version_agree():
    import hashlib
    import hmac
    import struct

    from drf_oidc_jwks.dpop import b64url_encode

    window = struct.pack(">q", 100_000)
    key = hashlib.sha256(b"drf_oidc_jwks.dpop.nonce:" + b"the-secret").digest()
    expected = b64url_encode(window + hmac.new(key, window, hashlib.sha256).digest()[:16])
    assert NonceIssuer(window=60, secrets=["the-secret"]).issue(6_000_000.0) == expected


def test_a_nonce_with_its_window_changed_is_refused():
    from drf_oidc_jwks.dpop import b64url_decode, b64url_encode

    nonces = NonceIssuer(window=60)
    raw = b64url_decode(nonces.issue(6_000_000.0))
    moved = b64url_encode((100_001).to_bytes(8, "big") + raw[8:])  # the next window, the same MAC
    with pytest.raises(UseDPoPNonce):
        nonces.check(moved, 6_000_060.0)


def test_explicit_secrets_are_the_ones_nonces_are_made_and_checked_with(settings):
    first, second = NonceIssuer(secrets=["secret-one"]), NonceIssuer(secrets=["secret-two"])
    nonce = first.issue()
    first.check(nonce)
    with pytest.raises(UseDPoPNonce):
        second.check(nonce)
    with pytest.raises(UseDPoPNonce):
        NonceIssuer().check(nonce)  # not SECRET_KEY's either
    NonceIssuer(secrets=["secret-two", "secret-one"]).check(nonce)  # a second secret still verifies


def test_nonces_work_without_a_secret_key_fallbacks_setting(settings):
    del settings.SECRET_KEY_FALLBACKS
    nonces = NonceIssuer()
    nonces.check(nonces.issue())


def test_a_window_under_one_second_is_allowed():
    nonces = NonceIssuer(window=0.5)
    nonces.check(nonces.issue(1000.0), 1000.4)


def test_the_refusal_says_whether_the_nonce_was_missing_or_not_ours():
    nonces = NonceIssuer()
    with pytest.raises(UseDPoPNonce) as missing:
        nonces.check(None)
    with pytest.raises(UseDPoPNonce) as forged:
        nonces.check("A" * 32)
    assert missing.value.reason == "proof carries no nonce"
    assert forged.value.reason == "nonce not issued here, or expired"


def test_the_checker_uses_the_clock_it_was_given():
    nonces = NonceIssuer(window=60)
    then = 6_000_000.0  # long ago: the machine's clock would refuse this nonce
    nonces.checker(then)(nonces.issue(then))
    with pytest.raises(UseDPoPNonce):
        nonces.checker()(nonces.issue(then))
