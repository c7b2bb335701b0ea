"""Opaque-token wiring pinned by mutation testing (docs/security.md, "Mutation testing").

Each test kills mutants of drf_oidc_jwks/opaque.py that tests/test_opaque_authentication.py let survive: real
requests through JWKSAuthentication, the loopback JWKS server and the loopback introspection endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from drf_oidc_jwks.claims import Claims
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import TokenError
from drf_oidc_jwks.opaque import confirm_jwt, opaque_claims
from drf_oidc_jwks.testing import DPoPKey, TestIssuer
from tests.introspection_server import IntrospectionServer, introspection_server
from tests.test_opaque_authentication import AUD, authenticate, intro, opaque


@pytest.fixture
def idp() -> Iterator[IntrospectionServer]:
    with introspection_server() as server:
        yield server


def test_an_opaque_tokens_claims_follow_the_issuers_claims_mapping(oidc_settings, idp, issuer, call):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp), CLAIMS={"roles": "realm_access.roles"})
    token = opaque(idp, issuer, realm_access={"roles": ["admin"]})
    assert call(token).status_code == 200
    _user, claims = authenticate(token)
    assert list(claims.roles) == ["admin"]


def test_opaque_claims_is_bearer_unless_told_dpop(oidc_settings, idp, issuer):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp))
    token = opaque(idp, issuer, cnf={"jkt": DPoPKey().jkt})
    s = get_settings()
    with pytest.raises(TokenError) as info:
        opaque_claims(token, s.issuers[0], s)
    assert info.value.code == "sender_constrained"
    assert opaque_claims(token, s.issuers[0], s, dpop=True).token_format == "opaque"


def test_with_for_jwts_at_one_issuer_another_issuers_jwt_is_verified_without_introspection(
    settings, idp, issuer, server, call
):
    other = TestIssuer(issuer="https://other.test", audience=AUD)
    other.keys = issuer.keys  # the same JWKS: only the issuer differs
    first = issuer.settings(INTROSPECTION=intro(idp, FOR_JWTS=True))
    second = issuer.settings(ISSUER=other.issuer)
    settings.DRF_OIDC_JWKS = {"SYNC_USERS": False, "DPOP": "off", "ISSUERS": [first, second]}
    response = call(other.token("bob"))
    assert response.status_code == 200, response.content
    assert idp.requests == 0


def test_confirm_jwt_leaves_claims_of_an_issuer_it_does_not_know_alone(oidc_settings, idp):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp, FOR_JWTS=True))
    claims = Claims({"iss": "https://unknown.test", "sub": "x", "exp": time.time() + 60})
    assert confirm_jwt("a.b.c", claims, get_settings()) is None
    assert idp.requests == 0
