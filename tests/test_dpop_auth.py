"""DPoP through JWKSAuthentication (RFC 9449): /api/me with a bound token and a proof, every refusal's code and
challenge, the three DPOP modes, nonces through DPoPNonceMiddleware, the memo, metadata and the test kit."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.dpop import SUPPORTED_ALGORITHMS
from drf_oidc_jwks.dpop_store import NonceIssuer, replay_key
from drf_oidc_jwks.settings_values import SUPPORTED_ALGORITHMS as SETTINGS_ALGORITHMS
from drf_oidc_jwks.testing import OMIT, DPoPKey, TestIssuer
from drf_oidc_jwks.tokens import get_memo

URL = "http://testserver/api/me"
ALGS = 'algs="ES256 EdDSA RS256 PS256"'
MIDDLEWARE = "drf_oidc_jwks.middleware.DPoPNonceMiddleware"


@pytest.fixture
def dpop(oidc_settings: Any) -> Any:
    """DPoP in its default mode, "allowed"; call again with other keys."""

    def configure(**overrides: Any) -> dict[str, Any]:
        return oidc_settings(**{"DPOP": "allowed", "SYNC_USERS": False, **overrides})

    configure()
    return configure


@pytest.fixture
def key(issuer: TestIssuer) -> DPoPKey:
    return issuer.dpop_key()


def send(api: APIClient, token: str, proof: str | None, *, method: str = "get", path: str = "/api/me") -> Any:
    extra = {"HTTP_AUTHORIZATION": f"DPoP {token}"}
    if proof is not None:
        extra["HTTP_DPOP"] = proof
    return getattr(api, method)(path, **extra)


def refused(response: Any, code: str, error: str) -> str:
    assert response.status_code == 401, response.content
    assert response.json()["code"] == code
    challenge = response["WWW-Authenticate"]
    # Both schemes where both are accepted, Bearer first, the error on the DPoP one (RFC 9449 7.1).
    assert challenge.startswith('Bearer realm="api", DPoP error="' + error + '"'), challenge
    assert challenge.endswith(ALGS)
    return str(challenge)


def test_a_bound_token_with_its_proof_is_accepted_and_request_auth_names_the_key(dpop, issuer, key, api) -> None:
    token = issuer.token(sub="alice", cnf=key.cnf())
    response = key.send(api, "get", "/api/me", token)
    assert response.status_code == 200, response.content
    assert response.json()["sub"] == "alice"
    assert response.json()["claims"]["dpop_jkt"] == key.jkt


def test_a_bearer_token_keeps_working_when_dpop_is_allowed_and_has_no_jkt(dpop, issuer, api) -> None:
    response = api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {issuer.token()}")
    assert response.status_code == 200
    assert response.json()["claims"]["dpop_jkt"] is None


def test_a_bound_token_sent_as_bearer_stays_sender_constrained(dpop, issuer, key, api) -> None:
    response = api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {issuer.token(cnf=key.cnf())}")
    assert response.status_code == 401 and response.json()["code"] == "sender_constrained"
    assert response["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')
    assert response["WWW-Authenticate"].endswith(f"DPoP {ALGS}")


def test_a_memoised_dpop_token_is_still_sender_constrained_as_bearer(dpop, issuer, key, api) -> None:
    token = issuer.token(cnf=key.cnf())
    assert key.send(api, "get", "/api/me", token).status_code == 200
    assert len(get_memo(get_settings()) or ()) == 1
    response = api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.json()["code"] == "sender_constrained"


def test_the_memo_serves_the_token_but_every_request_needs_a_fresh_proof(dpop, issuer, key, api) -> None:
    token = issuer.token(cnf=key.cnf())
    proof = key.proof("GET", URL, access_token=token)
    assert send(api, token, proof).status_code == 200
    # The token is memoised now; the same proof again is a replay all the same.
    refused(send(api, token, proof), "invalid_dpop_proof", "invalid_dpop_proof")
    assert key.send(api, "get", "/api/me", token).status_code == 200


def test_the_anonymous_challenge_names_both_schemes_bearer_first(dpop, api) -> None:
    response = api.get("/api/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f'Bearer realm="api", DPoP {ALGS}'


def test_where_every_issuer_requires_dpop_only_dpop_is_challenged(dpop, issuer, api) -> None:
    dpop(DPOP="required", DPOP_ALGORITHMS=["EdDSA", "ES256"])
    assert api.get("/api/me")["WWW-Authenticate"] == 'DPoP algs="EdDSA ES256"'
    response = api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {issuer.token()}")
    assert response.json()["code"] == "dpop_required"
    assert response["WWW-Authenticate"].startswith('DPoP error="invalid_token", error_description="This API requires')


def test_required_accepts_a_bound_token_with_its_proof(dpop, issuer, key, api) -> None:
    dpop(DPOP="required")
    assert key.send(api, "get", "/api/me", issuer.token(cnf=key.cnf())).status_code == 200


def test_an_unbound_token_sent_with_the_dpop_scheme_is_refused(dpop, issuer, key, api) -> None:
    token = issuer.token()
    refused(send(api, token, key.proof("GET", URL, access_token=token)), "invalid_dpop_proof", "invalid_dpop_proof")


def test_with_dpop_off_the_dpop_scheme_is_left_to_other_classes(oidc_settings, issuer, key, api) -> None:
    oidc_settings(DPOP="off")
    token = issuer.token(cnf=key.cnf())
    response = key.send(api, "get", "/api/me", token)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_off_for_one_issuer_leaves_its_dpop_tokens_to_other_classes_and_answers_the_other(
    oidc_settings, issuer, server, key, api
) -> None:
    # The other issuer publishes no key the served JWKS holds: its tokens are refused, never ignored.
    other = TestIssuer("https://other.test", audience=issuer.audience)
    entry = {**other.settings(), "JWKS_URL": server.url("/jwks.json"), "DPOP": "required"}
    oidc_settings(ISSUERS=[issuer.settings(DPOP="off"), entry], SYNC_USERS=False)
    response = key.send(api, "get", "/api/me", issuer.token(cnf=key.cnf()))
    assert response.json()["code"] == "not_authenticated"
    response = key.send(api, "get", "/api/me", other.token(cnf=key.cnf()))
    assert response.status_code == 401
    assert response.json()["code"] in ("unknown_key", "invalid_signature")
    assert 'DPoP error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("no DPoP header", lambda k, t: None),
        ("two proofs", lambda k, t: k.proof("GET", URL, access_token=t) + "," + k.proof("GET", URL, access_token=t)),
        ("another method", lambda k, t: k.proof("POST", URL, access_token=t)),
        ("another URL", lambda k, t: k.proof("GET", "http://testserver/api/health", access_token=t)),
        ("another host", lambda k, t: k.proof("GET", "https://testserver/api/me", access_token=t)),
        ("another token", lambda k, t: k.proof("GET", URL, access_token=t + "x")),
        ("no ath", lambda k, t: k.proof("GET", URL)),
        ("too old", lambda k, t: k.proof("GET", URL, access_token=t, iat=int(time.time()) - 400)),
        ("in the future", lambda k, t: k.proof("GET", URL, access_token=t, iat=int(time.time()) + 120)),
        ("not dpop+jwt", lambda k, t: k.proof("GET", URL, access_token=t, headers={"typ": "JWT"})),
        ("no jwk", lambda k, t: k.proof("GET", URL, access_token=t, headers={"jwk": OMIT})),
        ("no jti", lambda k, t: k.proof("GET", URL, access_token=t, jti=OMIT)),
        ("another key", lambda k, t: DPoPKey().proof("GET", URL, access_token=t)),
        ("not a JWT", lambda k, t: "not.a.proof"),
    ],
)
def test_each_proof_failure_is_invalid_dpop_proof_with_the_dpop_challenge(dpop, issuer, key, api, case, make) -> None:
    token = issuer.token(cnf=key.cnf())
    challenge = refused(send(api, token, make(key, token)), "invalid_dpop_proof", "invalid_dpop_proof")
    assert token not in challenge


def test_an_algorithm_outside_dpop_algorithms_is_refused(dpop, issuer, api) -> None:
    dpop(DPOP_ALGORITHMS=["ES256"])
    eddsa = DPoPKey("EdDSA")
    token = issuer.token(cnf=eddsa.cnf())
    response = eddsa.send(api, "get", "/api/me", token)
    assert response.json()["code"] == "invalid_dpop_proof"
    assert response["WWW-Authenticate"].endswith('algs="ES256"')


def test_dpop_proof_max_age_is_the_issuers(dpop, issuer, key, api) -> None:
    dpop(DPOP_PROOF_MAX_AGE=30)
    token = issuer.token(cnf=key.cnf())
    old = key.proof("GET", URL, access_token=token, iat=int(time.time()) - 60)
    refused(send(api, token, old), "invalid_dpop_proof", "invalid_dpop_proof")


def test_a_refused_token_on_the_dpop_scheme_is_invalid_token_on_the_dpop_challenge(dpop, issuer, key, api) -> None:
    token = issuer.expired_token(cnf=key.cnf())
    refused(send(api, token, key.proof("GET", URL, access_token=token)), "token_expired", "invalid_token")
    response = api.get("/api/me", HTTP_AUTHORIZATION="DPoP ")
    refused(response, "missing_token", "invalid_token")


def test_htu_follows_the_proxy_settings_django_already_has(dpop, settings, issuer, key, api) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = ["*"]
    token = issuer.token(cnf=key.cnf())
    public = "https://api.example.com/api/me"
    proxied = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "api.example.com"}
    ok = send_extra(api, token, key.proof("GET", public, access_token=token), proxied)
    assert ok.status_code == 200, ok.content
    internal = send_extra(api, token, key.proof("GET", URL, access_token=token), proxied)
    assert internal.json()["code"] == "invalid_dpop_proof"


def send_extra(api: APIClient, token: str, proof: str, extra: dict[str, str]) -> Any:
    return api.get("/api/me?page=2", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof, **extra)


def test_a_post_is_proved_with_its_own_method_and_the_query_is_ignored(dpop, issuer, key, api) -> None:
    token = issuer.token(cnf=key.cnf())
    response = api.get("/api/me?x=1#f", **key.headers(token, "GET", URL + "?other=2"))
    assert response.status_code == 200


def test_an_outage_of_the_shared_cache_is_a_503_never_an_unrecorded_acceptance(
    dpop, settings, issuer, key, api
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "down": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"},
    }
    dpop(JWKS_CACHE_ALIAS="down")
    token = issuer.token(cnf=key.cnf())
    response = key.send(api, "get", "/api/me", token)
    assert response.status_code == 503
    assert response.json()["code"] == "idp_unavailable"


def test_nonces_use_dpop_nonce_then_accepted_with_the_handed_out_one(dpop, settings, issuer, key, api) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    dpop(DPOP_NONCE=True)
    token = issuer.token(cnf=key.cnf())
    first = key.send(api, "get", "/api/me", token)
    assert first.status_code == 401 and first.json()["code"] == "use_dpop_nonce"
    assert first["WWW-Authenticate"].startswith('Bearer realm="api", DPoP error="use_dpop_nonce"')
    nonce = first["DPoP-Nonce"]
    second = key.send(api, "get", "/api/me", token, nonce=nonce)
    assert second.status_code == 200
    assert "DPoP-Nonce" not in second  # still current: nothing new is due
    forged = key.send(api, "get", "/api/me", token, nonce="A" * 32)
    assert forged.json()["code"] == "use_dpop_nonce" and forged["DPoP-Nonce"] != "A" * 32


def test_a_nonce_of_the_previous_window_is_accepted_with_a_fresh_one_handed_out(dpop, settings, issuer, key, api):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    dpop(DPOP_NONCE=True)
    previous = NonceIssuer().issue(time.time() - NonceIssuer().window)
    response = key.send(api, "get", "/api/me", issuer.token(cnf=key.cnf()), nonce=previous)
    assert response.status_code == 200
    assert response["DPoP-Nonce"] == NonceIssuer().issue()


def test_the_proof_and_the_token_never_reach_a_log_line_or_the_answer(dpop, issuer, key, api, caplog) -> None:
    token = issuer.token(cnf=key.cnf())
    proof = key.proof("GET", URL, access_token=token)
    caplog.set_level(logging.DEBUG, logger="drf_oidc_jwks")
    assert send(api, token, proof).status_code == 200
    replay = send(api, token, proof)
    body = replay.content.decode() + replay["WWW-Authenticate"]
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "replayed" in logs
    for secret in (token, proof, *token.split("."), *proof.split(".")):
        assert secret not in body and secret not in logs


def test_metadata_names_the_proof_algorithms_and_whether_dpop_is_required(dpop, api) -> None:
    dpop(RESOURCE="https://api.test/", DPOP_ALGORITHMS=["ES256"])
    document = api.get("/.well-known/oauth-protected-resource").json()
    assert document["dpop_signing_alg_values_supported"] == ["ES256"]
    assert document["dpop_bound_access_tokens_required"] is False
    dpop(RESOURCE="https://api.test/", DPOP="required")
    document = api.get("/.well-known/oauth-protected-resource").json()
    assert document["dpop_bound_access_tokens_required"] is True
    dpop(RESOURCE="https://api.test/", DPOP="off")
    document = api.get("/.well-known/oauth-protected-resource").json()
    assert "dpop_signing_alg_values_supported" not in document
    assert "dpop_bound_access_tokens_required" not in document


def test_the_challenge_carries_resource_metadata_on_both_schemes(dpop, api) -> None:
    dpop(RESOURCE="https://api.test/")
    challenge = api.get("/api/me")["WWW-Authenticate"]
    assert challenge.count('resource_metadata="https://api.test/.well-known/oauth-protected-resource"') == 2


def test_the_settings_and_the_proof_check_agree_on_the_algorithms() -> None:
    assert SETTINGS_ALGORITHMS == SUPPORTED_ALGORITHMS


def test_the_replay_entry_is_small_and_keyed_by_a_hash(dpop, issuer, key, api) -> None:
    token = issuer.token(cnf=key.cnf())
    proof = key.proof("GET", URL, access_token=token, jti="j" * 200)
    assert caches["default"].get(replay_key(key.jkt, "j" * 200)) is None
    assert send(api, token, proof).status_code == 200
    entry = replay_key(key.jkt, "j" * 200)
    assert caches["default"].get(entry) == 1
    assert "j" * 200 not in entry and len(entry) < 100


def test_the_test_kit_sends_both_headers(issuer) -> None:
    key = issuer.dpop_key("EdDSA")
    headers = key.headers("tok", "GET", URL)
    assert headers["HTTP_AUTHORIZATION"] == "DPoP tok"
    assert headers["HTTP_DPOP"].count(".") == 2
    assert key.cnf() == {"jkt": key.jkt}
    from drf_oidc_jwks.testing_dpop import DPoPKey as Kept

    assert Kept is DPoPKey


def test_the_schema_says_dpop_where_it_is_required(settings) -> None:
    settings.DRF_OIDC_JWKS = {**settings.DRF_OIDC_JWKS, "OPENAPI_SCHEME": "bearer", "DPOP": "required"}
    scheme = APIClient().get("/api/schema/", {"format": "json"}).json()["components"]["securitySchemes"]["oidc"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "dpop")
    assert "Authorization: DPoP <token>" in scheme["description"] and "Bearer is refused" in scheme["description"]
    settings.DRF_OIDC_JWKS = {**settings.DRF_OIDC_JWKS, "OPENAPI_SCHEME": "openIdConnect", "DPOP": "required"}
    scheme = APIClient().get("/api/schema/", {"format": "json"}).json()["components"]["securitySchemes"]["oidc"]
    assert scheme["type"] == "openIdConnect" and scheme["description"].startswith("DPoP-bound JWT")
    settings.DRF_OIDC_JWKS = {**settings.DRF_OIDC_JWKS, "OPENAPI_SCHEME": "bearer", "DPOP": "allowed"}
    scheme = APIClient().get("/api/schema/", {"format": "json"}).json()["components"]["securitySchemes"]["oidc"]
    assert scheme["scheme"] == "bearer" and scheme["description"].startswith("Bearer JWT")


def decode(*args: str) -> tuple[int, dict[str, Any]]:
    import json
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = StringIO()
    try:
        call_command("oidc_decode", *args, "--json", stdout=out)
        status = 0
    except CommandError as exc:
        status = exc.returncode
    return status, json.loads(out.getvalue()) if out.getvalue() else {}


def test_oidc_decode_explains_a_refused_dpop_request_from_its_proof(dpop, issuer, key, api) -> None:
    token = issuer.token(cnf=key.cnf())
    proof = key.proof("GET", URL, access_token=token)
    assert decode(token, "--proof", proof, "--url", URL) == (0, decode(token, "--proof", proof, "--url", URL)[1])
    assert decode(token, "--proof", proof, "--url", URL)[1]["accepted"] is True
    status, result = decode(token, "--proof", proof, "--method", "POST", "--url", URL)
    assert status == 1 and result["refusal"]["code"] == "invalid_dpop_proof"
    assert "htm" in result["refusal"]["reason"]
    thief = DPoPKey().proof("GET", URL, access_token=token)
    assert "cnf.jkt" in decode(token, "--proof", thief, "--url", URL)[1]["refusal"]["reason"]
    assert send(api, token, proof).status_code == 200  # the API records it; decode now calls it a replay
    assert "replayed" in decode(token, "--proof", proof, "--url", URL)[1]["refusal"]["reason"]
    # Without --proof the bound token is what a Bearer request meets; --proof needs --url.
    assert decode(token)[1]["refusal"]["code"] == "sender_constrained"
    assert decode(token, "--proof", proof)[0] == 2


def test_oidc_decode_says_dpop_required_for_a_bearer_token(dpop, issuer) -> None:
    dpop(DPOP="required")
    status, result = decode(issuer.token())
    assert status == 1 and result["refusal"]["code"] == "dpop_required"


@pytest.mark.parametrize(
    ("path", "script_name"),
    [
        ("/api/me", ""),
        ("/a b/ü?x=1", ""),
        ("/a%25b/%7e/%3F", ""),
        ("//double/slash", ""),
        ("/x/./y/../z", ""),
        ("/x/..", ""),
        ("/api/me", "/prefix"),
    ],
)
def test_the_htu_url_is_build_absolute_uri_without_its_query(settings, path, script_name) -> None:
    from django.test import RequestFactory

    from drf_oidc_jwks.dpop_urls import normalize_htu, request_url

    settings.ALLOWED_HOSTS = ["api.test"]
    request = RequestFactory().get(path, SCRIPT_NAME=script_name, HTTP_HOST="api.test:8443")
    url = request_url(request.scheme, request.get_host(), request.path)
    absolute = request.build_absolute_uri().partition("?")[0]
    # Django resolves "/./" and "/../" itself (urljoin); htu's normal form resolves every dot segment.
    assert url == absolute or "/." in path
    assert normalize_htu(url) == normalize_htu(absolute)
    assert url.startswith(f"http://api.test:8443{script_name}/")


def test_a_proof_for_a_host_outside_allowed_hosts_is_refused_before_it_is_compared(dpop, settings, issuer, key, api):
    # htu must never match a Host header Django would refuse: a proof made for another site stays useless here.
    settings.ALLOWED_HOSTS = ["testserver"]
    token = issuer.token(cnf=key.cnf())
    evil = key.proof("GET", "http://evil.example/api/me", access_token=token)
    response = api.get("/api/me", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=evil, HTTP_HOST="evil.example")
    assert response.status_code == 400
    ok = key.proof("GET", URL, access_token=token)
    assert api.get("/api/me", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=ok).status_code == 200


def authenticate_directly(token: str, proof: str, host: str) -> Any:
    """The authentication class alone, with no middleware (CommonMiddleware checks the host itself)."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from drf_oidc_jwks.authentication import JWKSAuthentication

    headers = {"HTTP_AUTHORIZATION": f"DPoP {token}", "HTTP_DPOP": proof, "HTTP_HOST": host}
    django_request = RequestFactory().get("/api/me", **headers)
    return JWKSAuthentication().authenticate(Request(django_request))


def test_a_host_allowed_once_is_refused_after_allowed_hosts_changes(dpop, settings, issuer, key) -> None:
    # The host each Host header names is checked once and kept: a settings change must forget it.
    from django.core.exceptions import DisallowedHost

    settings.ALLOWED_HOSTS = ["api.example.com"]
    token = issuer.token(cnf=key.cnf())
    url = "http://api.example.com/api/me"
    user, claims = authenticate_directly(token, key.proof("GET", url, access_token=token), "api.example.com")
    assert claims.dpop_jkt == key.jkt
    settings.ALLOWED_HOSTS = ["testserver"]
    with pytest.raises(DisallowedHost):
        authenticate_directly(token, key.proof("GET", url, access_token=token), "api.example.com")


def test_a_refused_host_is_refused_on_every_request_not_only_the_first(dpop, settings, issuer, key) -> None:
    from django.core.exceptions import DisallowedHost

    settings.ALLOWED_HOSTS = ["testserver"]
    token = issuer.token(cnf=key.cnf())
    for _ in range(2):
        proof = key.proof("GET", "http://evil.example/api/me", access_token=token)
        with pytest.raises(DisallowedHost):
            authenticate_directly(token, proof, "evil.example")


def test_x_forwarded_host_counts_only_while_use_x_forwarded_host_is_on(dpop, settings, issuer, key, api) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    token = issuer.token(cnf=key.cnf())
    public = "http://api.example.com/api/me"
    forwarded = {"HTTP_X_FORWARDED_HOST": "api.example.com"}
    settings.USE_X_FORWARDED_HOST = True
    assert send_extra(api, token, key.proof("GET", public, access_token=token), forwarded).status_code == 200
    settings.USE_X_FORWARDED_HOST = False
    # The same headers now name testserver: the proof for the forwarded host no longer matches.
    late = send_extra(api, token, key.proof("GET", public, access_token=token), forwarded)
    assert late.json()["code"] == "invalid_dpop_proof"
    assert send_extra(api, token, key.proof("GET", URL, access_token=token), forwarded).status_code == 200


def test_a_request_without_a_host_header_gets_the_host_django_rebuilds(dpop, settings) -> None:
    from django.test import RequestFactory

    from drf_oidc_jwks.dpop_urls import request_host

    settings.ALLOWED_HOSTS = ["backend.internal"]
    request = RequestFactory().get("/api/me", SERVER_NAME="backend.internal", SERVER_PORT="8000")
    request.META.pop("HTTP_HOST", None)
    assert request_host(request) == "backend.internal:8000"
    request.META["SERVER_PORT"] = "9000"
    assert request_host(request) == "backend.internal:9000"
