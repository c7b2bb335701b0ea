"""DPoP at request time: who answers it, the proof check on a plain Django request, the leeway, the replay signal.

Written against surviving mutants of drf_oidc_jwks/dpop_auth.py (docs/security.md, "Mutation testing"). Proofs are
made with the test kit's keys, tokens with the test issuer; the functions are called with the settings in force.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.http import HttpRequest
from django.test import RequestFactory

from drf_oidc_jwks import signals
from drf_oidc_jwks.claims import Claims
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.dpop_auth import NONCE_ATTR, algorithms, answers_dpop, check_bearer, check_request, hand_out_nonce
from drf_oidc_jwks.dpop_store import ReplayStore
from drf_oidc_jwks.exceptions import DPoPRequired, InvalidDPoPProof
from drf_oidc_jwks.testing import DPoPKey, TestIssuer

URL = "http://testserver/api/me"


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey()


def two_issuers(
    oidc_settings: Any, issuer: TestIssuer, server: Any, first: dict[str, Any], second: dict[str, Any]
) -> Any:
    other = TestIssuer("https://other.test", audience=issuer.audience)
    entry = {**other.settings(), "JWKS_URL": server.url("/jwks.json"), **second}
    oidc_settings(ISSUERS=[issuer.settings(**first), entry], SYNC_USERS=False)
    return other


def claims_of(issuer: TestIssuer, key: DPoPKey) -> tuple[str, Claims]:
    payload = {"iss": issuer.issuer, "sub": "alice", "cnf": key.cnf()}
    return issuer.token(**payload), Claims(payload)


def test_the_challenge_algorithms_leave_out_the_issuers_with_dpop_off(oidc_settings, issuer, server) -> None:
    two_issuers(
        oidc_settings,
        issuer,
        server,
        {"DPOP": "off", "DPOP_ALGORITHMS": ["ES256"]},
        {"DPOP": "allowed", "DPOP_ALGORITHMS": ["EdDSA"]},
    )
    assert algorithms(get_settings()) == ["EdDSA"]


def test_a_strangers_token_is_answered_on_the_dpop_scheme_only_where_dpop_is_answered(oidc_settings) -> None:
    oidc_settings(DPOP="allowed")
    assert answers_dpop(get_settings(), "https://stranger.test") is True
    oidc_settings(DPOP="off")
    assert answers_dpop(get_settings(), "https://stranger.test") is False


def test_bearer_is_refused_only_for_the_issuer_that_requires_dpop(oidc_settings, issuer, server) -> None:
    other = two_issuers(oidc_settings, issuer, server, {"DPOP": "allowed"}, {"DPOP": "required"})
    s = get_settings()
    check_bearer(s, Claims({"iss": issuer.issuer, "sub": "a"}))
    check_bearer(s, Claims({"iss": "https://stranger.test", "sub": "a"}))
    with pytest.raises(DPoPRequired):
        check_bearer(s, Claims({"iss": other.issuer, "sub": "a"}))


def test_a_dpop_request_for_an_issuer_with_dpop_off_or_unknown_is_refused(oidc_settings, issuer, key) -> None:
    oidc_settings(DPOP="off")
    raw, claims = claims_of(issuer, key)
    request = RequestFactory().get("/api/me", HTTP_DPOP=key.proof("GET", URL, access_token=raw))
    with pytest.raises(InvalidDPoPProof):
        check_request(request, raw, claims, get_settings())
    oidc_settings(DPOP="allowed")
    with pytest.raises(InvalidDPoPProof):
        check_request(request, raw, Claims({"iss": "https://stranger.test", "sub": "a"}), get_settings())


def test_a_plain_django_request_is_checked_like_the_drf_request_around_it(oidc_settings, issuer, key) -> None:
    oidc_settings(DPOP="allowed")
    raw, claims = claims_of(issuer, key)
    request = RequestFactory().get("/api/me", HTTP_DPOP=key.proof("GET", URL, access_token=raw))
    assert check_request(request, raw, claims, get_settings()).htm == "GET"


def test_a_request_without_a_method_matches_no_proof(oidc_settings, issuer, key) -> None:
    oidc_settings(DPOP="allowed")
    raw, claims = claims_of(issuer, key)
    request = RequestFactory().get("/api/me", HTTP_DPOP=key.proof("XXXX", URL, access_token=raw))
    request.method = None
    with pytest.raises(InvalidDPoPProof):
        check_request(request, raw, claims, get_settings())


def test_the_proof_iat_gets_the_settings_leeway(oidc_settings, issuer, key) -> None:
    oidc_settings(DPOP="allowed", LEEWAY=100)
    raw, claims = claims_of(issuer, key)
    ahead = key.proof("GET", URL, access_token=raw, iat=int(time.time()) + 80)
    request = RequestFactory().get("/api/me", HTTP_DPOP=ahead)
    assert check_request(request, raw, claims, get_settings()).htm == "GET"


def test_a_replay_sends_dpop_replay_from_the_replay_store_with_the_issuer(oidc_settings, issuer, key) -> None:
    oidc_settings(DPOP="allowed")
    raw, claims = claims_of(issuer, key)
    proof = key.proof("GET", URL, access_token=raw)
    heard: list[tuple[Any, dict[str, Any]]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        heard.append((sender, kwargs))

    signals.dpop_replay.connect(receiver, weak=False)
    try:
        check_request(RequestFactory().get("/api/me", HTTP_DPOP=proof), raw, claims, get_settings())
        assert heard == []
        with pytest.raises(InvalidDPoPProof):
            check_request(RequestFactory().get("/api/me", HTTP_DPOP=proof), raw, claims, get_settings())
    finally:
        signals.dpop_replay.disconnect(receiver)
    assert heard == [(ReplayStore, {"issuer": issuer.issuer})]


def test_a_nonce_is_handed_out_on_a_plain_django_request_too() -> None:
    request = HttpRequest()
    hand_out_nonce(request, "the-nonce")
    assert getattr(request, NONCE_ATTR) == "the-nonce"
