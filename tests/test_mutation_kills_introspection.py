"""Introspection behaviour pinned by mutation testing (docs/security.md, "Mutation testing").

Each test kills mutants of drf_oidc_jwks/introspection.py that tests/test_introspection.py let survive: a real
loopback introspection endpoint (tests/introspection_server.py), real Django caches (LocMem, a real Redis).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from drf_oidc_jwks import signals
from drf_oidc_jwks.exceptions import KeySourceError, TokenError
from drf_oidc_jwks.introspection import (
    IntrospectionConfig,
    Introspector,
    RateLimiter,
    check_opaque,
    get_introspector,
    problems,
    reset_introspectors,
    token_digest,
)
from drf_oidc_jwks.testing import DPoPKey
from tests.counting_cache import CountingLocMemCache
from tests.introspection_server import IntrospectionServer, Response, introspection_server
from tests.services import RedisServer
from tests.test_introspection import AUD, active, code_of, issuer_settings


@pytest.fixture
def idp() -> Iterator[IntrospectionServer]:
    with introspection_server() as server:
        yield server


@pytest.fixture
def redis_cache(redis_server: RedisServer) -> Iterator[tuple[RedisCache, redis.Redis]]:
    with redis_server.cache(7) as pair:
        yield pair


def build(
    idp: IntrospectionServer,
    *,
    issuer: str | None = None,
    cache: Any = None,
    clock: Any = time.time,
    issuer_keys: dict[str, Any] | None = None,
    allow_insecure_http: bool = False,
    **kwargs: Any,
) -> Introspector:
    config = {key: kwargs.pop(key) for key in list(kwargs) if key in IntrospectionConfig.__dataclass_fields__}
    config.setdefault("url", idp.url)
    return Introspector(
        issuer_settings(issuer or idp.base_url, **(issuer_keys or {})),
        IntrospectionConfig(client_id=idp.client_id, client_secret=idp.client_secret, **config),
        cache=cache if cache is not None else caches["default"],
        leeway=30,
        http_timeout=2.0,
        allow_insecure_http=allow_insecure_http,
        clock=clock,
        **kwargs,
    )


# ---------------------------------------------------------------------------
# Settings


def test_from_setting_keeps_every_key_given():
    value = {
        "CLIENT_ID": "the-client",
        "CLIENT_SECRET": "the-secret",
        "AUTH_METHOD": "client_secret_post",
        "URL": "https://idp.test/introspect",
        "CACHE_TTL": 7,
        "INACTIVE_CACHE_TTL": 3,
        "REQUIRE_AUDIENCE": False,
        "MAX_RATE": 2,
        "FOR_JWTS": True,
    }
    assert IntrospectionConfig.from_setting(value) == IntrospectionConfig(
        client_id="the-client",
        client_secret="the-secret",
        auth_method="client_secret_post",
        url="https://idp.test/introspect",
        cache_ttl=7.0,
        inactive_cache_ttl=3.0,
        require_audience=False,
        max_rate=2.0,
        for_jwts=True,
    )
    defaults = IntrospectionConfig.from_setting({"CLIENT_ID": "a", "CLIENT_SECRET": "b"})
    assert (defaults.require_audience, defaults.for_jwts, defaults.url) == (True, False, None)


def test_problems_allow_a_plain_http_url_when_insecure_http_is_allowed():
    value = {"CLIENT_ID": "a", "CLIENT_SECRET": "b", "URL": "http://idp.example.com/introspect"}
    assert problems(value, True) == []
    assert problems(value, False) == ["INTROSPECTION['URL'] must be an https URL (http for loopback hosts only)."]


# ---------------------------------------------------------------------------
# Token shape and digest


def test_a_token_of_exactly_the_maximum_length_is_accepted():
    check_opaque("x" * 100, 100)
    with pytest.raises(TokenError):
        check_opaque("x" * 101, 100)


def test_the_digest_of_a_token_holding_a_lone_surrogate_is_computed():
    assert token_digest("t\ud800") == hashlib.sha256("t\ud800".encode("utf-8", "surrogatepass")).hexdigest()
    assert token_digest("t\ud800") != token_digest("t\ud801")


# ---------------------------------------------------------------------------
# DPoP-bound answers


def test_a_bound_answer_passes_with_the_dpop_scheme_also_from_the_memo_and_is_refused_as_bearer(idp):
    jkt = DPoPKey().jkt
    token = active(idp, cnf={"jkt": jkt})
    intro = build(idp)
    assert intro.introspect(token, dpop=True)["cnf"] == {"jkt": jkt}
    assert intro.introspect(token, dpop=True)["cnf"] == {"jkt": jkt}  # the memoised answer
    assert code_of(lambda: intro.introspect(token)) == "sender_constrained"
    fresh = build(idp)
    assert code_of(lambda: fresh.introspect_as(token, dict)) == "sender_constrained"  # Bearer by default
    with pytest.raises(TokenError) as info:
        fresh.check({"active": True, "sub": "alice", "aud": AUD, "exp": time.time() + 60, "cnf": {"jkt": jkt}}, 0)
    assert info.value.code == "sender_constrained"


# ---------------------------------------------------------------------------
# The rate bound


def test_the_limiter_counts_from_zero_whatever_window_the_clock_starts_in():
    limiter = RateLimiter(LocMemCache("rate-start", {}), "p:", 1, clock=lambda: -0.5)  # window -1
    limiter.acquire()
    with pytest.raises(KeySourceError):
        limiter.acquire()


def test_after_the_first_request_of_a_window_the_shared_count_is_one_incr():
    cache = CountingLocMemCache("rate-incr", {})
    cache.clear()
    limiter = RateLimiter(cache, "p:", 10, clock=lambda: 70.5)
    limiter.acquire()
    cache.reset_counts()
    limiter.acquire()
    limiter.acquire()
    assert dict(cache.calls) == {}  # CountingLocMemCache does not count incr: no get, set or add either
    assert cache.get("p:rate:70") == 3


def test_a_counter_created_by_another_process_meanwhile_is_incremented_not_lost():
    class Racing(LocMemCache):
        """A real LocMem in which another process creates the window's counter between our incr and add."""

        raced = False

        def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
            if not self.raced:
                self.raced = True
                super().add(key, 1, 3)  # the other process's first request of the window
                raise ValueError(f"Key {key!r} not found")
            return super().incr(key, delta, version)

    limiter = RateLimiter(Racing("rate-race", {}), "p:", 1, clock=lambda: 90.5)
    with pytest.raises(KeySourceError) as info:
        limiter.acquire()  # ours is the second request of the window: over a rate of 1
    assert info.value.reason == "introspection rate limit reached (all processes)"


def test_the_shared_counters_expire_within_three_seconds(redis_cache):
    cache, raw = redis_cache
    RateLimiter(cache, "p:", 5).acquire()
    (key,) = raw.keys("*rate*")
    assert 1 <= raw.ttl(key) <= 3


def test_two_issuers_sharing_a_cache_have_their_own_rate_and_their_own_answers(idp):
    now = [500.5]
    first = build(idp, issuer="https://a.test", clock=lambda: now[0], max_rate=1)
    second = build(idp, issuer="https://b.test", clock=lambda: now[0], max_rate=1)
    idp.tokens["shared-token"] = {"sub": "alice", "aud": AUD, "exp": int(time.time()) + 300}  # no iss
    assert first.introspect("shared-token")["iss"] == "https://a.test"
    del idp.tokens["shared-token"]  # inactive at the second issuer's endpoint
    assert code_of(lambda: second.introspect("shared-token")) == "token_inactive"  # asked, not a's answer
    assert idp.requests == 2
    expected = hashlib.sha256(b"https://a.test").hexdigest()[:24]
    assert first.prefix == f"drf_oidc_jwks:introspection:v1:{expected}:"


# ---------------------------------------------------------------------------
# Rules


def test_aud_in_required_claims_is_left_to_require_audience(idp):
    token = active(idp)
    del idp.tokens[token]["aud"]
    intro = build(idp, require_audience=False, issuer_keys={"REQUIRED_CLAIMS": ["exp", "sub", "aud"]})
    assert intro.introspect(token)["sub"] == "alice"


def test_request_count_counts_the_requests_made(idp):
    intro = build(idp)
    assert intro.request_count == 0
    for i in range(2):
        code_of(lambda i=i: intro.introspect(f"never-{i}"))
    assert intro.request_count == idp.requests == 2


# ---------------------------------------------------------------------------
# The endpoint


def test_a_discovered_endpoint_follows_allow_insecure_http_and_is_discovered_once():
    asked = []

    def discover() -> dict[str, Any]:
        asked.append(1)
        return {"introspection_endpoint": "http://idp.example.com/introspect"}

    config = IntrospectionConfig(client_id="a", client_secret="b")
    issuer = issuer_settings("https://idp.example.com")
    common: dict[str, Any] = {"cache": caches["default"], "leeway": 0, "http_timeout": 1, "discover": discover}
    with pytest.raises(KeySourceError):
        Introspector(issuer, config, allow_insecure_http=False, **common).endpoint()
    allowed = Introspector(issuer, config, allow_insecure_http=True, **common)
    assert allowed.endpoint() == allowed.endpoint() == "http://idp.example.com/introspect"
    assert len(asked) == 2  # once per introspector


def test_a_plain_http_endpoint_on_a_non_loopback_name_is_asked_when_insecure_http_is_allowed(idp):
    # 127.1 reaches loopback but is no loopback name to url_allowed: only ALLOW_INSECURE_HTTP lets it through.
    url = idp.url.replace("127.0.0.1", "127.1")
    token = active(idp)
    assert build(idp, url=url, allow_insecure_http=True).introspect(token)["sub"] == "alice"
    assert code_of(lambda: build(idp, url=url).introspect(active(idp, "another"))) == "idp_unavailable"


def test_get_introspector_uses_allow_insecure_http_and_the_shared_cache(settings, idp):
    url = idp.url.replace("127.0.0.1", "127.1")
    settings.DRF_OIDC_JWKS = {"ISSUER": idp.base_url, "AUDIENCE": AUD, "ALLOW_INSECURE_HTTP": True}
    from drf_oidc_jwks.conf import get_settings

    issuer = get_settings().issuers[0]
    config = IntrospectionConfig(client_id=idp.client_id, client_secret=idp.client_secret, url=url)
    token = active(idp)
    assert get_introspector(issuer, config).introspect(token)["sub"] == "alice"
    reset_introspectors()  # another process: no memo, the same shared cache
    assert get_introspector(issuer, config).introspect(token)["sub"] == "alice"
    assert idp.requests == 1


# ---------------------------------------------------------------------------
# The in-process memo and the shared entry


def test_an_answer_is_not_served_at_the_instant_it_expires(idp):
    now = [time.time()]
    token = active(idp)
    first = build(idp, clock=lambda: now[0], cache_ttl=5)
    first.introspect(token)
    now[0] += 5  # exactly until: neither the memo nor the shared entry may answer
    first.introspect(token)
    assert idp.requests == 2
    other = build(idp, clock=lambda: now[0], cache_ttl=5)
    now[0] += 5
    other.introspect(token)
    assert idp.requests == 3


def test_a_token_within_leeway_past_exp_is_neither_cached_nor_memoised(idp):
    cache = CountingLocMemCache("intro-expired", {})
    cache.clear()
    now = time.time()
    token = active(idp, exp=int(now) - 5)  # expired, still inside LEEWAY (30 s)
    intro = build(idp, cache=cache, clock=lambda: now)
    for _ in range(2):
        assert intro.introspect(token)["sub"] == "alice"
    assert idp.requests == 2
    assert cache.calls["set"] == 0


def test_an_answer_whose_exp_is_now_is_not_stored(idp):
    cache = CountingLocMemCache("intro-exp-now", {})
    cache.clear()
    now = float(int(time.time()))
    token = active(idp, exp=int(now))
    build(idp, cache=cache, clock=lambda: now).introspect(token)
    assert cache.calls["set"] == 0


def test_an_answer_good_for_one_more_second_is_stored_and_memoised(idp):
    now = float(int(time.time()))
    token = active(idp, exp=int(now) + 1)
    intro = build(idp, clock=lambda: now)
    intro.introspect(token)
    intro.introspect(token)
    assert idp.requests == 1
    build(idp, clock=lambda: now).introspect(token)  # another process: from the shared entry
    assert idp.requests == 1


def test_the_shared_entry_expires_with_the_answer(redis_cache, idp):
    cache, raw = redis_cache
    build(idp, cache=cache, cache_ttl=30).introspect(active(idp, "long"))
    exp = int(time.time()) + 100
    build(idp, cache=cache, cache_ttl=30, clock=lambda: exp - 0.5).introspect(active(idp, "short", exp=exp))
    ttls = sorted(raw.ttl(key) for key in raw.keys("*introspection*") if b":rate:" not in key)
    assert ttls[0] == 1 and 28 <= ttls[1] <= 30, ttls


def test_a_memo_of_size_zero_or_one(idp):
    cache = CountingLocMemCache("intro-memo", {})
    cache.clear()
    for token in ("t-a", "t-b"):
        active(idp, token)
    none = build(idp, cache=cache, memo_size=0)
    none.introspect("t-a")
    cache.reset_counts()
    none.introspect("t-a")
    assert cache.calls["get"] == 1  # no memo: the shared cache answers
    one = build(idp, cache=cache, memo_size=1)
    one.introspect("t-a")
    cache.reset_counts()
    one.introspect("t-a")
    assert cache.calls["get"] == 0  # the memo answers
    one.introspect("t-b")  # the oldest entry makes room
    cache.reset_counts()
    one.introspect("t-a")
    assert cache.calls["get"] == 1


def test_an_answer_read_from_the_shared_cache_is_the_answer_given(idp):
    token = active(idp, scope="a b")
    direct = build(idp).introspect(token)
    shared = build(idp).introspect(token)  # another process
    assert dict(shared) == dict(direct)


# ---------------------------------------------------------------------------
# The request


def test_each_request_sends_introspection_called_with_its_figures(idp):
    calls: list[tuple[Any, dict[str, Any]]] = []

    def on_call(sender: Any, signal: Any, **kwargs: Any) -> None:
        calls.append((sender, kwargs))

    signals.introspection_called.connect(on_call, weak=False)
    try:
        build(idp).introspect(active(idp))
    finally:
        signals.introspection_called.disconnect(on_call)
    ((sender, kwargs),) = calls
    assert sender is Introspector
    assert (kwargs["issuer"], kwargs["status"]) == (idp.base_url, 200)
    assert 0 <= kwargs["seconds"] < 5


def test_an_answer_holding_a_number_json_cannot_carry_is_idp_unavailable(idp):
    body = b'{"active": true, "sub": "alice", "aud": "%s", "exp": %d, "ext": 1e400}' % (
        AUD.encode(),
        int(time.time()) + 300,
    )
    idp.override = Response(200, body, {"Content-Type": "application/json"})
    assert code_of(lambda: build(idp).introspect("opaque-inf")) == "idp_unavailable"
