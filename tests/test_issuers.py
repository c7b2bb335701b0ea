"""Several trusted issuers: selection by exact iss, no network for strangers, keys bound to their issuer."""

from __future__ import annotations

import pytest

from drf_oidc_jwks.testing import Response, TestIssuer

AUD = "https://api.test"


@pytest.fixture
def two_issuers(settings):
    a = TestIssuer(audience=AUD)
    b = TestIssuer(audience=AUD, algorithm="ES256")
    with a.serve() as server_a, b.serve() as server_b:
        settings.DRF_OIDC_JWKS = {
            "AUDIENCE": AUD,
            "ISSUERS": [
                {"ISSUER": a.issuer, "JWKS_URL": server_a.url("/jwks.json"), "PROVIDER": "better-auth"},
                {"ISSUER": b.issuer, "ALGORITHMS": ["ES256"]},  # discovery
            ],
        }
        yield a, server_a, b, server_b


def test_tokens_of_each_configured_issuer_are_accepted(two_issuers, call):
    a, _, b, _ = two_issuers
    assert call(a.token(sub="from-a", role="admin")).json()["roles"] == ["admin"]
    assert call(b.token(sub="from-b")).json()["sub"] == "from-b"


def test_unconfigured_issuer_is_refused_without_any_network_request(two_issuers, call):
    a, server_a, b, server_b = two_issuers
    stranger = TestIssuer("http://127.0.0.1:9/stranger", audience=AUD)
    response = call(stranger.token())
    assert response.status_code == 401 and response.json()["code"] == "invalid_issuer"
    assert sum(server_a.hits.values()) == 0 and sum(server_b.hits.values()) == 0


def test_token_claiming_issuer_a_signed_with_issuer_b_key_is_refused(two_issuers, call):
    a, _, b, _ = two_issuers
    # Same algorithm family for the test: give A an ES256 key too, but sign with B's key and B's kid.
    forged = b.token(iss=a.issuer)
    response = call(forged)
    assert response.status_code == 401
    assert response.json()["code"] in {"unsupported_algorithm", "unknown_key"}


def test_token_claiming_issuer_a_with_a_key_of_b_of_the_same_type_is_refused(settings, call):
    a = TestIssuer(audience=AUD)
    b = TestIssuer(audience=AUD)
    with a.serve() as sa, b.serve() as sb:
        settings.DRF_OIDC_JWKS = {
            "AUDIENCE": AUD,
            "ISSUERS": [
                {"ISSUER": a.issuer, "JWKS_URL": sa.url("/jwks.json")},
                {"ISSUER": b.issuer, "JWKS_URL": sb.url("/jwks.json")},
            ],
        }
        assert call(b.token()).status_code == 200  # B's keys are cached now
        response = call(b.token(iss=a.issuer))
        assert response.status_code == 401 and response.json()["code"] == "unknown_key"


def test_one_issuer_down_does_not_affect_the_other(two_issuers, call):
    a, server_a, b, server_b = two_issuers
    server_b.respond("/.well-known/openid-configuration", Response(500, b"down"))
    assert call(b.token()).status_code == 503
    assert call(a.token()).status_code == 200


def test_each_issuer_has_its_own_cache_entry(two_issuers, call):
    a, server_a, b, server_b = two_issuers
    for _ in range(3):
        assert call(a.token()).status_code == 200
        assert call(b.token()).status_code == 200
    assert (server_a.total(), server_b.total(), server_b.total("/.well-known/openid-configuration")) == (1, 1, 1)


def test_per_issuer_audience_overrides_the_top_level_one(settings, call):
    a = TestIssuer(audience="aud-for-a")
    with a.serve() as sa:
        settings.DRF_OIDC_JWKS = {
            "AUDIENCE": AUD,
            "ISSUERS": [{"ISSUER": a.issuer, "JWKS_URL": sa.url("/jwks.json"), "AUDIENCE": "aud-for-a"}],
        }
        assert call(a.token()).status_code == 200
        assert call(a.token(aud=AUD)).json()["code"] == "invalid_audience"
