"""panva's oidc-provider (a certified OpenID Provider) mints client-credentials access tokens; the API verifies them.

The tokens are RFC 9068 JWT access tokens (``typ: at+jwt``) for a resource indicator (RFC 8707).
The API is configured with ``ISSUER`` only: its keys are found through OpenID discovery.
"""

from __future__ import annotations

import pytest

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.jwks import get_client

from .conftest import API_AUDIENCE, OidcProvider, jwt_parts

pytestmark = [pytest.mark.interop, pytest.mark.django_db]

ES256_AUDIENCE = API_AUDIENCE + "/es256"  # the provider signs tokens for this resource with ES256


def discovery_only(provider: OidcProvider, **overrides: object) -> dict[str, object]:
    value: dict[str, object] = {
        "ISSUER": provider.issuer,
        "AUDIENCE": [API_AUDIENCE, ES256_AUDIENCE],
        "ALGORITHMS": ["RS256", "ES256"],
    }
    value.update(overrides)
    return value


def test_client_credentials_jwt_is_accepted_through_discovery_with_its_claims_mapped(settings, oidc_provider, bearer):
    settings.DRF_OIDC_JWKS = discovery_only(oidc_provider)
    token = oidc_provider.access_token(scope="reports:read")
    header, payload = jwt_parts(token)
    assert (header["alg"], header["typ"]) == ("RS256", "at+jwt")
    assert payload["aud"] == API_AUDIENCE and payload["client_id"] == oidc_provider.client_id

    response = bearer(token)

    assert response.status_code == 200, response.content
    me = response.json()
    assert (me["sub"], me["roles"], me["tenant_id"]) == (oidc_provider.client_id, ["reports-reader"], "acme")
    issuer = get_settings().issuer_for(oidc_provider.issuer)
    assert issuer is not None and issuer.jwks_url is None
    discovered = get_client(issuer).discovery_document()
    assert discovered is not None and discovered["jwks_uri"] == oidc_provider.discovery()["jwks_uri"]


def test_granted_scope_passes_has_scope_and_a_missing_one_is_refused_with_insufficient_scope(
    settings, oidc_provider, bearer
):
    settings.DRF_OIDC_JWKS = discovery_only(oidc_provider)
    token = oidc_provider.access_token(scope="reports:read")

    listed = bearer(token, "/api/reports")
    created = bearer(token, "/api/reports", "post")

    assert listed.status_code == 200, listed.content
    assert created.status_code == 403
    assert created.json()["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in created["WWW-Authenticate"]
    assert "reports:write" in created["WWW-Authenticate"]


def test_es256_access_token_for_a_second_resource_is_accepted(settings, oidc_provider, bearer):
    settings.DRF_OIDC_JWKS = discovery_only(oidc_provider)
    token = oidc_provider.access_token(resource=ES256_AUDIENCE)
    assert jwt_parts(token)[0]["alg"] == "ES256"

    response = bearer(token)

    assert response.status_code == 200, response.content
    assert response.json()["sub"] == oidc_provider.client_id


def test_access_token_for_another_resource_is_refused_with_invalid_audience(settings, oidc_provider, bearer):
    settings.DRF_OIDC_JWKS = discovery_only(oidc_provider)
    token = oidc_provider.access_token(resource="https://another-api.interop.test")

    response = bearer(token)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_audience"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_rfc9068_typ_at_jwt_passes_an_allowed_types_restriction(settings, oidc_provider, bearer):
    settings.DRF_OIDC_JWKS = discovery_only(oidc_provider, ALLOWED_TYPES=["at+jwt"])

    response = bearer(oidc_provider.access_token())

    assert response.status_code == 200, response.content


def test_key_rotation_in_the_running_provider_is_picked_up_without_restarting_django(settings, oidc_provider, bearer):
    settings.DRF_OIDC_JWKS = discovery_only(oidc_provider)
    before = oidc_provider.access_token()
    assert bearer(before).status_code == 200
    issuer = get_settings().issuer_for(oidc_provider.issuer)
    assert issuer is not None
    client = get_client(issuer)
    assert client.fetch_count == 2  # discovery, then the JWKS

    new_kid = oidc_provider.rotate()
    after = oidc_provider.access_token()

    assert jwt_parts(after)[0]["kid"] == new_kid != jwt_parts(before)[0]["kid"]
    assert new_kid in {k["kid"] for k in oidc_provider.jwks()["keys"]}
    response = bearer(after)
    assert response.status_code == 200, response.content
    assert client.fetch_count == 3  # the unknown kid refetched the JWKS once; discovery stayed cached
    assert bearer(before).status_code == 200  # the previous key is still published
    assert bearer(oidc_provider.access_token()).status_code == 200
    assert client.fetch_count == 3
