"""panva's oidc-provider issues DPoP-bound JWT access tokens (RFC 9449) to a Python client with its own key.

The client asks the token endpoint with a proof (answering the provider's own ``use_dpop_nonce`` first), gets a
JWT access token bound by ``cnf.jkt``, and calls the API (the testproject served over HTTP, /api/me through
JWKSAuthentication) with a fresh proof per request; a replayed proof, a proof for another URL, a proof for another
token and a proof from another key than the token's are refused over HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from drf_oidc_jwks.dpop import DEFAULT_ALGORITHMS, check_binding, check_proof
from drf_oidc_jwks.dpop_store import ReplayStore
from drf_oidc_jwks.exceptions import InvalidDPoPProof
from drf_oidc_jwks.testing import DPoPKey

from .conftest import API_AUDIENCE, HTTP_TIMEOUT, DjangoServer, OidcProvider, jwt_parts, start_django, start_node_server

pytestmark = [pytest.mark.interop, pytest.mark.django_db]

API_URL = "http://testserver/api/me"  # for the checks called directly


@pytest.fixture(scope="module")
def dpop_provider(interop_logs: Path) -> Iterator[OidcProvider]:
    """oidc-provider taking every DPoP algorithm of DPOP_ALGORITHMS' default, and requiring its own nonce."""
    client_id, client_secret = "dpop-service", uuid.uuid4().hex
    env = {
        "OP_CLIENT_ID": client_id,
        "OP_CLIENT_SECRET": client_secret,
        "OP_DPOP_ALGS": ",".join(DEFAULT_ALGORITHMS),
        "OP_DPOP_REQUIRE_NONCE": "1",
    }
    node = start_node_server("oidc-provider-dpop", "oidc-provider-server.mjs", env, interop_logs)
    try:
        yield OidcProvider(node, client_id, client_secret)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def api_server(dpop_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DjangoServer]:
    """The testproject trusting the provider, served by runserver: DPoP answered (the default, "allowed")."""
    env = {
        "OIDC_ISSUER": dpop_provider.issuer,
        "OIDC_AUDIENCE": API_AUDIENCE,
        "OIDC_PROVIDER": "generic",
        "OIDC_SYNC_USERS": "false",
    }
    server = start_django(env, tmp_path_factory.mktemp("dpop-api"))
    try:
        yield server
    finally:
        server.stop()


def call(server: DjangoServer, token: str, proof: str, path: str = "/api/me") -> requests.Response:
    http = requests.Session()
    http.trust_env = False
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    return http.get(server.url + path, headers=headers, timeout=HTTP_TIMEOUT)


def dpop_token(provider: OidcProvider, key: DPoPKey) -> tuple[str, dict[str, Any], int]:
    """Client credentials with a DPoP proof; returns the token response, its verified claims and the attempts."""
    endpoint = provider.discovery()["token_endpoint"]
    nonce = None
    http = requests.Session()
    http.trust_env = False  # loopback only: never a proxy from the environment
    for attempt in (1, 2):
        response = http.post(
            endpoint,
            data={"grant_type": "client_credentials", "resource": API_AUDIENCE},
            auth=(provider.client_id, provider.client_secret),
            headers={"DPoP": key.proof("POST", endpoint, nonce=nonce)},
            timeout=HTTP_TIMEOUT,
        )
        if response.status_code == 400 and response.json().get("error") == "use_dpop_nonce":
            nonce = response.headers["DPoP-Nonce"]
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "DPoP"
        token = str(body["access_token"])
        header, _ = jwt_parts(token)
        jwk = next(k for k in provider.jwks()["keys"] if k["kid"] == header["kid"])
        claims = jwt.decode(
            token, jwt.PyJWK(jwk).key, algorithms=[header["alg"]], audience=API_AUDIENCE, issuer=provider.issuer
        )
        return token, claims, attempt
    pytest.fail("the token endpoint kept asking for a nonce")


@pytest.mark.parametrize("alg", DEFAULT_ALGORITHMS)
def test_oidc_provider_binds_a_jwt_access_token_to_the_client_key_thumbprint(dpop_provider, alg):
    key = DPoPKey(alg)
    token, claims, attempts = dpop_token(dpop_provider, key)

    assert jwt_parts(token)[0]["typ"] == "at+jwt"
    assert claims["cnf"] == {"jkt": key.jkt}
    assert attempts == 2  # the provider's use_dpop_nonce first, then the token
    proof = check_proof(key.proof("GET", API_URL, access_token=token), method="GET", url=API_URL, access_token=token)
    check_binding(claims, proof)
    assert proof.alg == alg


def test_a_fresh_proof_per_request_is_accepted_and_a_replayed_one_refused(dpop_provider, api_server):
    key = DPoPKey()
    token, claims, _ = dpop_token(dpop_provider, key)
    url = api_server.url + "/api/me"
    first, second = (key.proof("GET", url, access_token=token) for _ in range(2))

    answers = [call(api_server, token, proof) for proof in (first, second, first)]

    assert [a.status_code for a in answers] == [200, 200, 401]
    assert answers[0].json()["claims"]["dpop_jkt"] == answers[1].json()["claims"]["dpop_jkt"] == claims["cnf"]["jkt"]
    assert answers[0].json()["sub"] == claims["sub"]
    assert answers[2].json()["code"] == "invalid_dpop_proof"
    assert 'DPoP error="invalid_dpop_proof"' in answers[2].headers["WWW-Authenticate"]


def test_a_proof_for_another_url_is_refused(dpop_provider, api_server):
    key = DPoPKey()
    token, _, _ = dpop_token(dpop_provider, key)

    response = call(api_server, token, key.proof("GET", api_server.url + "/api/other", access_token=token))

    assert (response.status_code, response.json()["code"]) == (401, "invalid_dpop_proof")


def test_a_proof_for_another_token_is_refused(dpop_provider, api_server):
    key = DPoPKey()
    token, _, _ = dpop_token(dpop_provider, key)
    other_token, _, _ = dpop_token(dpop_provider, key)

    response = call(api_server, other_token, key.proof("GET", api_server.url + "/api/me", access_token=token))

    assert (response.status_code, response.json()["code"]) == (401, "invalid_dpop_proof")


def test_a_token_with_the_wrong_key_is_refused_over_http(dpop_provider, api_server):
    key, thief = DPoPKey(), DPoPKey()
    token, _, _ = dpop_token(dpop_provider, key)

    response = call(api_server, token, thief.proof("GET", api_server.url + "/api/me", access_token=token))

    assert (response.status_code, response.json()["code"]) == (401, "invalid_dpop_proof")
    assert response.json()["detail"] == "The DPoP proof's key is not the key the token is bound to."


def test_a_proof_from_another_key_than_the_token_is_bound_to_is_refused(dpop_provider):
    key, thief = DPoPKey(), DPoPKey()
    token, claims, _ = dpop_token(dpop_provider, key)
    stolen = check_proof(thief.proof("GET", API_URL, access_token=token), method="GET", url=API_URL, access_token=token)

    with pytest.raises(InvalidDPoPProof) as info:
        check_binding(claims, stolen)

    assert info.value.description == "The DPoP proof's key is not the key the token is bound to."


def test_the_replay_store_records_a_proof_of_a_real_token_once(dpop_provider):
    from django.core.cache import caches

    key = DPoPKey("EdDSA")
    token, claims, _ = dpop_token(dpop_provider, key)
    proof = check_proof(key.proof("GET", API_URL, access_token=token), method="GET", url=API_URL, access_token=token)
    check_binding(claims, proof)
    store = ReplayStore(caches["default"])

    store.remember(proof, max_age=300, leeway=0)
    with pytest.raises(InvalidDPoPProof):
        store.remember(proof, max_age=300, leeway=0)


def test_the_bound_token_sent_as_bearer_is_refused_as_sender_constrained(dpop_provider, settings, bearer):
    settings.DRF_OIDC_JWKS = {"ISSUER": dpop_provider.issuer, "AUDIENCE": API_AUDIENCE, "ALGORITHMS": ["RS256"]}
    token, _, _ = dpop_token(dpop_provider, DPoPKey())

    response = bearer(token)

    assert (response.status_code, response.json()["code"]) == (401, "sender_constrained")
