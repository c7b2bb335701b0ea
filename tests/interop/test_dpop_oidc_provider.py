"""panva's oidc-provider issues DPoP-bound JWT access tokens (RFC 9449) to a Python client with its own key.

The client asks the token endpoint with a proof (answering the provider's own ``use_dpop_nonce`` first), gets a
JWT access token bound by ``cnf.jkt``, and calls the API with a fresh proof per request: ``check_proof`` and the
binding accept it; a replayed proof, a proof for another URL and a proof from another key are refused.
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
from drf_oidc_jwks.testing_dpop import DPoPKey

from .conftest import API_AUDIENCE, HTTP_TIMEOUT, OidcProvider, jwt_parts, start_node_server

pytestmark = [pytest.mark.interop, pytest.mark.django_db]

API_URL = "http://testserver/api/dpop/proof"  # what the Django test client's requests look like to the view


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


def test_a_fresh_proof_per_request_is_accepted_and_a_replayed_one_refused(dpop_provider, api):
    key = DPoPKey()
    token, claims, _ = dpop_token(dpop_provider, key)
    first, second = (key.headers(token, "GET", API_URL) for _ in range(2))

    answers = [api.get("/api/dpop/proof", **extra) for extra in (first, second, first)]

    assert [a.status_code for a in answers] == [200, 200, 401]
    assert answers[0].json()["jkt"] == answers[1].json()["jkt"] == claims["cnf"]["jkt"]
    assert answers[2].json()["code"] == "invalid_dpop_proof"


def test_a_proof_for_another_url_is_refused(dpop_provider, api):
    key = DPoPKey()
    token, _, _ = dpop_token(dpop_provider, key)
    extra = key.headers(token, "GET", "http://testserver/api/dpop/other")

    response = api.get("/api/dpop/proof", **extra)

    assert (response.status_code, response.json()["code"]) == (401, "invalid_dpop_proof")


def test_a_proof_for_another_token_is_refused(dpop_provider, api):
    key = DPoPKey()
    token, _, _ = dpop_token(dpop_provider, key)
    other_token, _, _ = dpop_token(dpop_provider, key)
    extra = {**key.headers(token, "GET", API_URL), "HTTP_AUTHORIZATION": f"DPoP {other_token}"}

    response = api.get("/api/dpop/proof", **extra)

    assert (response.status_code, response.json()["code"]) == (401, "invalid_dpop_proof")


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
