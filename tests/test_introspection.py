"""RFC 7662 introspection against a real loopback endpoint: client auth, answer rules, caching, flood bound."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.test import override_settings

from drf_oidc_jwks.conf import IssuerSettings, get_settings
from drf_oidc_jwks.exceptions import KeySourceError, TokenError
from drf_oidc_jwks.fetching import request_json
from drf_oidc_jwks.introspection import (
    IntrospectionConfig,
    Introspector,
    RateLimiter,
    check_opaque,
    get_introspector,
    looks_like_jws,
    problems,
    token_digest,
)
from drf_oidc_jwks.testing import TestIssuer
from tests.introspection_server import IntrospectionServer, Response, introspection_server

AUD = "https://api.test"


@pytest.fixture
def idp() -> Iterator[IntrospectionServer]:
    with introspection_server() as server:
        yield server


def issuer_settings(issuer: str, **overrides: Any) -> IssuerSettings:
    value = {"ISSUER": issuer, "AUDIENCE": AUD, **overrides}
    with override_settings(DRF_OIDC_JWKS=value):
        return get_settings().issuers[0]


def make(
    idp: IntrospectionServer, *, clock: Any = time.time, cache: Any = None, discover: Any = None, **config: Any
) -> Introspector:
    issuer = issuer_settings(idp.base_url, **config.pop("issuer", {}))
    cfg = IntrospectionConfig(
        client_id=idp.client_id, client_secret=idp.client_secret, url=config.pop("url", idp.url), **config
    )
    return Introspector(
        issuer,
        cfg,
        cache=cache if cache is not None else caches["default"],
        leeway=30,
        http_timeout=config.pop("timeout", 2.0),
        allow_insecure_http=False,
        clock=clock,
        discover=discover,
    )


def active(idp: IntrospectionServer, token: str = "opaque-1", **answer: Any) -> str:
    now = int(time.time())
    idp.tokens[token] = {"iss": idp.base_url, "sub": "alice", "aud": AUD, "exp": now + 300, "iat": now, **answer}
    return token


def code_of(call: Any) -> str:
    with pytest.raises((TokenError, KeySourceError)) as info:
        call()
    return str(info.value.code)


def test_active_answer_is_returned_as_the_payload_with_basic_client_auth_and_the_access_token_hint(idp):
    token = active(idp, scope="reports:read")
    payload = make(idp).introspect(token)
    assert (payload["sub"], payload["scope"], payload["iss"]) == ("alice", "reports:read", idp.base_url)
    basic = idp.last["headers"]["Authorization"]
    # RFC 6749 2.3.1: the secret's ":", "/", "&" and "=" are form-urlencoded inside the Basic credentials.
    assert base64.b64decode(basic.split()[1]).decode() == "api:s3cret%3A%2F%26%3D"
    assert idp.last["form"] == {"token": token, "token_type_hint": "access_token"}


def test_client_secret_post_sends_the_credentials_in_the_form(idp):
    token = active(idp)
    make(idp, auth_method="client_secret_post").introspect(token)
    assert "Authorization" not in idp.last["headers"]
    assert (idp.last["form"]["client_id"], idp.last["form"]["client_secret"]) == ("api", "s3cret:/&=")


def test_wrong_client_credentials_are_idp_unavailable_not_a_401_for_the_caller(idp):
    intro = make(idp)
    idp.client_secret = "rotated-at-the-idp"
    with pytest.raises(KeySourceError) as info:
        intro.introspect(active(idp))
    assert info.value.reason == "HTTP 401"


@pytest.mark.parametrize("value", [False, None, "true", 1, "yes"])
def test_only_json_true_is_active(idp, value):
    idp.override = Response(200, b'{"active": %s}' % _json(value).encode(), {"Content-Type": "application/json"})
    assert code_of(lambda: make(idp).introspect("opaque-x")) == "token_inactive"


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"iss": "https://elsewhere.test"}, "invalid_issuer"),
        ({"aud": "https://other-api.test"}, "invalid_audience"),
        ({"exp": int(time.time()) - 3600}, "token_expired"),
        ({"nbf": int(time.time()) + 3600}, "token_not_yet_valid"),
        ({"exp": "tomorrow"}, "malformed_token"),
        ({"token_type": "DPoP"}, "sender_constrained"),
        ({"cnf": {"jkt": "abc"}}, "sender_constrained"),
        ({"token_type": "refresh_token"}, "invalid_token_type"),
        ({"sub": 42}, "malformed_token"),
    ],
)
def test_active_answers_are_held_to_a_jwts_rules(idp, answer, code):
    token = active(idp, **answer)
    assert code_of(lambda: make(idp).introspect(token)) == code


def test_absent_iss_means_the_issuer_asked_and_absent_exp_follows_required_claims(idp):
    token = active(idp)
    del idp.tokens[token]["iss"]
    assert make(idp).introspect(token)["iss"] == idp.base_url
    del idp.tokens[token]["exp"]
    caches["default"].clear()
    assert code_of(lambda: make(idp).introspect(token)) == "missing_claim"
    caches["default"].clear()
    assert make(idp, issuer={"REQUIRED_CLAIMS": ["sub"]}).introspect(token)["sub"] == "alice"


def test_missing_aud_is_refused_unless_require_audience_is_off(idp):
    token = active(idp)
    del idp.tokens[token]["aud"]
    assert code_of(lambda: make(idp).introspect(token)) == "invalid_audience"
    assert make(idp, require_audience=False).introspect(token)["sub"] == "alice"
    # A present aud is still checked with the opt-out.
    idp.tokens[token]["aud"] = "https://other-api.test"
    caches["default"].clear()
    assert code_of(lambda: make(idp, require_audience=False).introspect(token)) == "invalid_audience"


def test_active_answer_is_cached_under_the_sha256_until_cache_ttl(idp):
    token = active(idp)
    now = [time.time()]
    intro = make(idp, clock=lambda: now[0], cache_ttl=30)
    intro.introspect(token)
    intro.introspect(token)
    assert idp.requests == 1
    key = intro.prefix + token_digest(token)
    assert caches["default"].get(key)["answer"]["sub"] == "alice"
    assert token not in key
    now[0] += 31
    intro.introspect(token)
    assert idp.requests == 2


def test_active_answer_is_cached_no_longer_than_the_tokens_exp(idp):
    now = [time.time()]
    token = active(idp, exp=int(now[0]) + 5)
    intro = make(idp, clock=lambda: now[0], cache_ttl=60)
    intro.introspect(token)
    entry = caches["default"].get(intro.prefix + token_digest(token))
    assert entry["until"] <= now[0] + 5
    now[0] += 6
    intro.introspect(token)  # within LEEWAY the token still works: it was asked again
    assert idp.requests == 2


def test_inactive_answer_is_cached_briefly_and_keeps_nothing_of_the_answer(idp):
    now = [time.time()]
    intro = make(idp, clock=lambda: now[0], inactive_cache_ttl=10)
    for _ in range(5):
        assert code_of(lambda: intro.introspect("never-issued")) == "token_inactive"
    assert idp.requests == 1
    now[0] += 11
    assert code_of(lambda: intro.introspect("never-issued")) == "token_inactive"
    assert idp.requests == 2


def test_revoked_at_the_idp_answers_inactive_once_the_cached_answer_expires(idp):
    token = active(idp)
    now = [time.time()]
    intro = make(idp, clock=lambda: now[0], cache_ttl=5)
    assert intro.introspect(token)["sub"] == "alice"
    del idp.tokens[token]  # revoked at the IdP
    assert intro.introspect(token)["sub"] == "alice"  # still cached
    now[0] += 6
    assert code_of(lambda: intro.introspect(token)) == "token_inactive"


def test_a_refused_active_answer_is_cached_and_refused_again_without_asking(idp):
    token = active(idp, aud="https://other-api.test")
    intro = make(idp)
    for _ in range(3):
        assert code_of(lambda: intro.introspect(token)) == "invalid_audience"
    assert idp.requests == 1


@pytest.mark.parametrize(
    "response",
    [
        Response(500, b"boom"),
        Response(200, b"not json"),
        Response(200, b"[true]"),
        Response(200, b'{"active": NaN}'),
        Response(302, b"", {"Location": "/introspect"}),
    ],
)
def test_idp_failures_are_idp_unavailable_and_never_cached(idp, response):
    idp.override = response
    intro = make(idp)
    assert code_of(lambda: intro.introspect("opaque-1")) == "idp_unavailable"
    assert code_of(lambda: intro.introspect("opaque-1")) == "idp_unavailable"
    assert idp.requests == 2
    idp.override = None
    assert intro.introspect(active(idp))["sub"] == "alice"


def test_a_same_origin_307_is_followed_and_a_redirect_to_another_host_refused(idp):
    token = active(idp)
    idp.override = Response(307, b"", {"Location": "/introspect"})
    with introspection_server() as other:
        target = other.url.replace("127.0.0.1", "localhost")
        idp.override = Response(307, b"", {"Location": target})
        with pytest.raises(KeySourceError) as info:
            make(idp).introspect(token)
        assert info.value.reason == "redirect to another host refused"
        assert other.requests == 0


def test_a_slow_and_a_dripping_endpoint_are_cut_at_the_timeout_for_the_whole_exchange(idp):
    for response in (Response(200, b'{"active": false}', delay=3), Response(200, b'{"active": false}  ', drip=0.3)):
        idp.override = response
        started = time.monotonic()
        with pytest.raises(KeySourceError) as info:
            request_json("POST", idp.url, form={"token": "x"}, timeout=1.0, max_bytes=1024, allow_insecure_http=False)
        elapsed = time.monotonic() - started
        assert info.value.reason == "timed out"
        assert elapsed < 1.5, elapsed


def test_an_answer_over_max_bytes_is_refused(idp):
    idp.override = Response(200, b'{"active": true, "pad": "' + b"x" * 5000 + b'"}')
    with pytest.raises(KeySourceError) as info:
        request_json("POST", idp.url, form={"token": "x"}, timeout=2, max_bytes=1024, allow_insecure_http=False)
    assert "larger than 1024" in info.value.reason


def test_plain_http_to_a_non_loopback_host_is_never_requested():
    with pytest.raises(KeySourceError) as info:
        request_json(
            "POST", "http://idp.example.com/introspect", form={}, timeout=1, max_bytes=10, allow_insecure_http=False
        )
    assert "https required" in info.value.reason


def test_the_endpoint_comes_from_discovery_when_no_url_is_given(idp):
    token = active(idp)
    import requests

    intro = make(
        idp,
        url=None,
        discover=lambda: requests.get(idp.base_url + "/.well-known/openid-configuration", timeout=2).json(),
    )
    assert intro.introspect(token)["sub"] == "alice"
    assert intro.endpoint() == idp.url


def test_get_introspector_discovers_the_endpoint_through_the_jwks_clients_discovery(settings, idp):
    settings.DRF_OIDC_JWKS = {"ISSUER": idp.base_url, "AUDIENCE": AUD}
    issuer = get_settings().issuers[0]
    config = IntrospectionConfig(client_id="api", client_secret=idp.client_secret)
    intro = get_introspector(issuer, config)
    assert get_introspector(issuer, config) is intro
    assert intro.introspect(active(idp))["sub"] == "alice"
    assert intro.endpoint() == idp.url


def test_a_flood_of_random_tokens_reaches_the_idp_at_most_max_rate_per_second(idp):
    intro = make(idp, max_rate=5)
    codes: dict[str, int] = {}
    started = time.monotonic()
    retry_after = []
    for i in range(60):
        try:
            intro.introspect(f"random-{i}")
        except KeySourceError as exc:
            codes[exc.code] = codes.get(exc.code, 0) + 1
            retry_after.append(exc.retry_after)
        except TokenError as exc:
            codes[exc.code] = codes.get(exc.code, 0) + 1
    windows = int(time.monotonic() - started) + 2
    assert idp.requests <= 5 * windows
    assert codes["token_inactive"] == idp.requests
    assert codes["idp_unavailable"] == 60 - idp.requests
    assert all(0 < r <= 1 for r in retry_after)


def test_the_rate_bound_is_shared_by_processes_through_the_cache(idp):
    # Two introspectors stand for two processes: their own counters, one shared cache.
    now = [1000.5]
    first, second = make(idp, clock=lambda: now[0], max_rate=4), make(idp, clock=lambda: now[0], max_rate=4)
    outcomes = []
    for i in range(8):
        try:
            (first if i % 2 else second).introspect(f"random-{i}")
        except (TokenError, KeySourceError) as exc:
            outcomes.append(exc.code)
    assert idp.requests == 4
    assert outcomes.count("idp_unavailable") == 4
    now[0] += 1
    assert code_of(lambda: first.introspect("random-next-window")) == "token_inactive"


def test_with_the_cache_down_each_process_still_holds_itself_to_the_rate():
    class DownCache:
        def incr(self, *a: Any, **k: Any) -> int:
            raise ConnectionError("down")

    limiter = RateLimiter(DownCache(), "p:", 3, clock=lambda: 50.2)  # type: ignore[arg-type]
    for _ in range(3):
        limiter.acquire()
    with pytest.raises(KeySourceError) as info:
        limiter.acquire()
    assert info.value.retry_after == pytest.approx(0.8)


def test_a_cached_answer_needs_no_rate_budget(idp):
    token = active(idp)
    intro = make(idp, max_rate=1)
    intro.introspect(token)
    for _ in range(20):
        assert intro.introspect(token)["sub"] == "alice"
    assert idp.requests == 1


def test_opaque_shape_and_jws_detection():
    issuer = TestIssuer()
    assert looks_like_jws(issuer.token())
    assert not looks_like_jws("2YotnFZFEjr1zCsicMWpAA")
    assert not looks_like_jws("a.b.c")
    check_opaque("2YotnFZFEjr1zCsicMWpAA", 100)
    for bad in ("has space", 'quote"', "x" * 101, "nul\x00"):
        with pytest.raises(TokenError):
            check_opaque(bad, 100)


def test_config_problems_name_the_key_and_the_repr_hides_the_secret():
    assert problems(None, False) == []
    found = problems(
        {"CLIENT_ID": "", "AUTH_METHOD": "private_key_jwt", "URL": "http://idp.example.com", "MAX_RATE": -1, "TYPO": 1},
        False,
    )
    assert any("'TYPO'" in p for p in found)
    assert any("CLIENT_ID" in p for p in found) and any("CLIENT_SECRET" in p for p in found)
    assert any("AUTH_METHOD" in p for p in found) and any("'URL'" in p for p in found)
    assert any("MAX_RATE" in p for p in found)
    config = IntrospectionConfig.from_setting({"CLIENT_ID": "api", "CLIENT_SECRET": "hunter2"})
    assert (config.auth_method, config.cache_ttl, config.inactive_cache_ttl, config.max_rate) == (
        "client_secret_basic",
        60,
        10,
        20,
    )
    assert "hunter2" not in repr(config)


def test_a_checked_answer_is_memoised_in_process_no_longer_than_the_shared_entry(idp):
    from tests.counting_cache import CountingLocMemCache

    cache = CountingLocMemCache("introspection-memo", {})
    token = active(idp)
    now = [time.time()]
    intro = make(idp, clock=lambda: now[0], cache=cache, cache_ttl=5)
    intro.introspect(token)
    cache.reset_counts()
    for _ in range(100):
        assert intro.introspect(token)["sub"] == "alice"
    assert sum(cache.calls.values()) == 0
    del idp.tokens[token]
    now[0] += 5.01
    assert code_of(lambda: intro.introspect(token)) == "token_inactive"
