"""JWKSAuthentication with introspection and revocations wired in: opaque tokens, FOR_JWTS, token_revoked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.test import APIRequestFactory

from drf_oidc_jwks import revocation
from drf_oidc_jwks.authentication import JWKSAuthentication
from drf_oidc_jwks.conf import get_settings, validate
from drf_oidc_jwks.testing import DPoPKey, TestIssuer
from tests.introspection_server import IntrospectionServer, introspection_server

AUD = "https://api.test"  # the conftest issuer's audience


@pytest.fixture
def idp() -> Iterator[IntrospectionServer]:
    with introspection_server() as server:
        yield server


def intro(idp: IntrospectionServer, **extra: Any) -> dict[str, Any]:
    return {"CLIENT_ID": idp.client_id, "CLIENT_SECRET": idp.client_secret, "URL": idp.url, **extra}


def opaque(idp: IntrospectionServer, issuer: TestIssuer, token: str = "2YotnFZFEjr1zCsicMWpAA", **answer: Any) -> str:
    now = int(time.time())
    idp.tokens[token] = {"iss": issuer.issuer, "sub": "alice", "aud": AUD, "exp": now + 300, "iat": now - 5, **answer}
    return token


def code(response: Any) -> tuple[int, str]:
    return response.status_code, response.json().get("code", "")


def authenticate(token: str) -> Any:
    request = APIRequestFactory().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    return JWKSAuthentication().authenticate(request)


def test_an_opaque_token_is_introspected_and_becomes_opaque_claims(oidc_settings, idp, issuer, call):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp))
    token = opaque(idp, issuer, scope="reports:read")
    response = call(token)
    assert response.status_code == 200, response.content
    assert response.json()["claims"]["scopes"] == ["reports:read"]
    _user, claims = authenticate(token)
    assert (claims.token_format, claims.sub, claims.issuer) == ("opaque", "alice", issuer.issuer)
    assert idp.requests == 1  # the second request was answered from the cache


def test_without_introspection_an_opaque_token_stays_malformed(oidc_settings, idp, issuer, call):
    oidc_settings(SYNC_USERS=False)
    assert code(call(opaque(idp, issuer))) == (401, "malformed_token")
    assert idp.requests == 0


def test_an_inactive_opaque_token_is_401_token_inactive_with_the_challenge(oidc_settings, idp, call):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp))
    response = call("never-issued-token")
    assert code(response) == (401, "token_inactive")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_an_unreachable_endpoint_is_503_idp_unavailable_with_retry_after(oidc_settings, idp, issuer, call):
    oidc_settings(SYNC_USERS=False, HTTP_TIMEOUT=1, INTROSPECTION=intro(idp, URL="http://127.0.0.1:9/introspect"))
    response = call(opaque(idp, issuer))
    assert code(response) == (503, "idp_unavailable")
    assert int(response["Retry-After"]) >= 1


def test_a_flood_of_random_tokens_is_bounded_by_max_rate_and_answered_503(oidc_settings, idp, call):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp, MAX_RATE=3))
    started = time.monotonic()
    answers = [code(call(f"random-token-{i}")) for i in range(30)]
    windows = int(time.monotonic() - started) + 2
    assert idp.requests <= 3 * windows
    assert answers.count((401, "token_inactive")) == idp.requests
    assert answers.count((503, "idp_unavailable")) == 30 - idp.requests > 0


def test_for_jwts_also_introspects_a_verified_jwt(oidc_settings, idp, issuer, call):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp, FOR_JWTS=True))
    jwt = issuer.token("alice")
    idp.tokens[jwt] = {"sub": "alice", "aud": AUD, "exp": int(time.time()) + 300}
    assert call(jwt).status_code == 200
    _user, claims = authenticate(jwt)
    assert claims.token_format == "jwt"
    revoked_at_the_idp = issuer.token("bob")
    assert code(call(revoked_at_the_idp)) == (401, "token_inactive")
    assert idp.requests == 2


def test_without_for_jwts_a_jwt_is_never_introspected(oidc_settings, idp, issuer, call):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp))
    assert call(issuer.token("alice")).status_code == 200
    assert idp.requests == 0


def test_opaque_token_issuer_picks_the_issuer_among_several(settings, idp, issuer, server, call):
    other = TestIssuer(issuer="https://other.test", audience=AUD)
    first = issuer.settings(INTROSPECTION=intro(idp, URL="https://other.test/never-asked"))
    second = issuer.settings(INTROSPECTION=intro(idp))
    second["ISSUER"] = other.issuer
    base = {"SYNC_USERS": False, "ISSUERS": [second, first]}
    settings.DRF_OIDC_JWKS = {**base}
    with pytest.raises(ImproperlyConfigured, match="E025"):
        get_settings()
    settings.DRF_OIDC_JWKS = {**base, "OPAQUE_TOKEN_ISSUER": other.issuer}
    token = opaque(idp, other)
    assert call(token).status_code == 200
    assert authenticate(token)[1].issuer == other.issuer


def test_the_client_secret_is_never_in_a_message_or_a_repr(idp):
    bad = {"ISSUER": "https://a.test", "AUDIENCE": AUD, "INTROSPECTION": {"CLIENT_SECRET": "hunter2", "URL": 3}}
    messages = " ".join(p.msg + p.hint for p in validate(bad))
    assert "CLIENT_ID" in messages and "hunter2" not in messages
    good = {
        "ISSUER": "https://a.test",
        "AUDIENCE": AUD,
        "INTROSPECTION": {"CLIENT_ID": "a", "CLIENT_SECRET": "hunter2"},
    }
    with override_settings(DRF_OIDC_JWKS=good):
        built = get_settings()
        assert built.issuers[0].introspection["CLIENT_SECRET"] == "hunter2"
        assert "hunter2" not in repr(built)


def test_an_issuers_entry_does_not_inherit_the_top_level_introspection_credentials(settings):
    settings.DRF_OIDC_JWKS = {
        "AUDIENCE": AUD,
        "INTROSPECTION": {"CLIENT_ID": "a", "CLIENT_SECRET": "b"},
        "ISSUERS": [{"ISSUER": "https://a.test"}],
    }
    assert get_settings().issuers[0].introspection is None


# -- revocations on the request path --


def test_a_revoked_subject_is_refused_even_on_the_memoised_path_and_new_tokens_work(oidc_settings, issuer, call):
    oidc_settings(SYNC_USERS=False)
    old = issuer.token("alice", iat=int(time.time()) - 5)
    assert call(old).status_code == 200
    assert call(old).status_code == 200  # now memoised
    revocation.revoke(issuer.issuer, sub="alice")
    response = call(old)
    assert code(response) == (401, "token_revoked")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert call(issuer.token("alice", iat=int(time.time()) + 2)).status_code == 200


def test_a_revoked_opaque_token_is_refused_too(oidc_settings, idp, issuer, call):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp))
    token = opaque(idp, issuer, jti="opaque-jti-1")
    assert call(token).status_code == 200
    revocation.revoke(issuer.issuer, jti="opaque-jti-1")
    assert code(call(token)) == (401, "token_revoked")


@pytest.fixture
def counting(settings: Any) -> Any:
    settings.CACHES = {
        **settings.CACHES,
        "counting": {"BACKEND": "tests.counting_cache.CountingLocMemCache", "LOCATION": "opaque-counting"},
    }
    cache = caches["counting"]
    cache.clear()
    return cache


def test_between_polls_a_request_makes_no_shared_cache_call_for_revocations(oidc_settings, issuer, call, counting):
    oidc_settings(SYNC_USERS=False, JWKS_CACHE_ALIAS="counting", REVOCATION_POLL=60)
    token = issuer.token("alice")
    assert call(token).status_code == 200  # verifies, fetches keys, polls the revocation log once
    counting.reset_counts()
    for _ in range(20):
        assert call(token).status_code == 200
    assert sum(counting.calls.values()) == 0, counting.calls


def test_an_introspected_token_on_a_hit_makes_no_shared_cache_call(oidc_settings, idp, issuer, call, counting):
    oidc_settings(SYNC_USERS=False, JWKS_CACHE_ALIAS="counting", REVOCATION_POLL=60, INTROSPECTION=intro(idp))
    token = opaque(idp, issuer)
    assert call(token).status_code == 200
    counting.reset_counts()
    for _ in range(20):
        assert call(token).status_code == 200
    assert sum(counting.calls.values()) == 0, counting.calls
    assert idp.requests == 1


def test_the_backchannel_receiver_needs_no_authentication_and_no_csrf_token(oidc_settings):
    from django.test import Client

    oidc_settings(BACKCHANNEL_LOGOUT_AUDIENCE="rp")
    response = Client(enforce_csrf_checks=True).post(
        "/backchannel-logout/", "logout_token=x.y.z", content_type="application/x-www-form-urlencoded"
    )
    assert (response.status_code, response.json()) == (400, {"error": "invalid_request"})
    assert response["Cache-Control"] == "no-store"


def test_an_introspection_call_sends_introspection_called_and_an_inactive_answer_token_revoked(
    oidc_settings, idp, issuer, call
):
    from drf_oidc_jwks import signals

    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp))
    calls: list[dict[str, Any]] = []
    revoked: list[dict[str, Any]] = []

    def on_call(sender: Any, signal: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    def on_revoked(sender: Any, signal: Any, **kwargs: Any) -> None:
        revoked.append(kwargs)

    signals.introspection_called.connect(on_call, weak=False)
    signals.token_revoked.connect(on_revoked, weak=False)
    try:
        token = opaque(idp, issuer)
        assert call(token).status_code == 200
        assert call(token).status_code == 200  # answered from the cache: no second call
        assert code(call("never-issued-token")) == (401, "token_inactive")
    finally:
        signals.introspection_called.disconnect(on_call)
        signals.token_revoked.disconnect(on_revoked)
    assert [(c["issuer"], c["status"]) for c in calls] == [(issuer.issuer, 200), (issuer.issuer, 200)]
    assert all(0 <= c["seconds"] < 5 for c in calls)
    # An opaque token names no issuer a refusal could read, so the label stays None (bounded, never guessed).
    assert revoked == [{"issuer": None, "code": "token_inactive"}]


# -- DPoP-bound opaque tokens (RFC 9449 6.2: the answer's cnf.jkt and token_type DPoP) --


def send_dpop(api: Any, token: str, proof: str | None) -> Any:
    extra = {"HTTP_AUTHORIZATION": f"DPoP {token}"}
    if proof is not None:
        extra["HTTP_DPOP"] = proof
    return api.get("/api/me", **extra)


@pytest.fixture
def bound(oidc_settings: Any, idp: IntrospectionServer, issuer: TestIssuer) -> tuple[str, DPoPKey]:
    """An opaque token whose answer binds it to a client key, as oidc-provider and Better Auth answer."""
    oidc_settings(SYNC_USERS=False, DPOP="allowed", INTROSPECTION=intro(idp))
    key = issuer.dpop_key()
    return opaque(idp, issuer, token_type="DPoP", cnf=key.cnf()), key


def test_a_dpop_bound_opaque_token_with_its_proof_is_accepted_on_every_request(bound, api):
    token, key = bound
    answers = [send_dpop(api, token, key.proof("GET", "http://testserver/api/me", access_token=token)) for _ in "ab"]
    assert [a.status_code for a in answers] == [200, 200], answers[0].content
    assert answers[0].json()["claims"]["dpop_jkt"] == key.jkt


@pytest.mark.parametrize("attempt", ["bearer", "no proof", "replayed proof", "another key", "another token"])
def test_a_dpop_bound_opaque_token_is_refused_without_its_own_fresh_proof(bound, idp, issuer, api, call, attempt):
    token, key = bound
    url = "http://testserver/api/me"
    proof = key.proof("GET", url, access_token=token)
    if attempt == "bearer":
        expected, response = "sender_constrained", call(token)
    elif attempt == "no proof":
        expected, response = "invalid_dpop_proof", send_dpop(api, token, None)
    elif attempt == "replayed proof":
        assert send_dpop(api, token, proof).status_code == 200
        expected, response = "invalid_dpop_proof", send_dpop(api, token, proof)
    elif attempt == "another key":
        thief = DPoPKey()
        expected, response = "invalid_dpop_proof", send_dpop(api, token, thief.proof("GET", url, access_token=token))
    else:
        other = opaque(idp, issuer, token="another-opaque-token", token_type="DPoP", cnf=key.cnf())
        expected, response = "invalid_dpop_proof", send_dpop(api, other, proof)
    assert code(response) == (401, expected)
    assert token not in response.content.decode()


def test_a_bound_answer_memoised_from_a_dpop_request_is_still_refused_as_bearer(bound, api, call, idp):
    token, key = bound
    assert send_dpop(api, token, key.proof("GET", "http://testserver/api/me", access_token=token)).status_code == 200
    assert code(call(token)) == (401, "sender_constrained")
    assert idp.requests == 1  # the memoised answer decided it


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"token_type": "DPoP"}, "invalid_dpop_proof"),  # bound, but to no key the proof can be held to
        ({"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}, "sender_constrained"),  # mTLS
    ],
)
def test_a_dpop_request_whose_answer_names_no_jkt_is_refused(oidc_settings, idp, issuer, api, answer, expected):
    oidc_settings(SYNC_USERS=False, DPOP="allowed", INTROSPECTION=intro(idp))
    key = issuer.dpop_key()
    token = opaque(idp, issuer, **answer)
    assert code(send_dpop(api, token, key.proof("GET", "http://testserver/api/me", access_token=token))) == (
        401,
        expected,
    )


def test_for_jwts_confirms_a_dpop_bound_jwt_whose_answer_says_token_type_dpop(oidc_settings, idp, issuer, api):
    oidc_settings(SYNC_USERS=False, DPOP="allowed", INTROSPECTION=intro(idp, FOR_JWTS=True))
    key = issuer.dpop_key()
    token = issuer.token(sub="alice", cnf=key.cnf())
    now = int(time.time())
    answer = {"iss": issuer.issuer, "sub": "alice", "aud": AUD, "exp": now + 300, "iat": now}
    idp.tokens[token] = {**answer, "token_type": "DPoP", "cnf": key.cnf()}
    response = send_dpop(api, token, key.proof("GET", "http://testserver/api/me", access_token=token))
    assert response.status_code == 200, response.content
    assert idp.requests == 1
