"""Keycloak-SHAPED tokens: a FIXTURE of the layout of Keycloak access tokens, NOT tokens from a Keycloak server.

Keycloak is a Java server that cannot be installed here, so these tests reproduce the structure of
its access tokens (header, claim names and nesting, realm URL layout, discovery document and
``certs`` JWKS with its extra encryption key) and sign them with our own TestIssuer. They prove
the ``"keycloak"`` preset reads that layout; they do not prove signature compatibility with Keycloak.

Sources for the layout:

* Keycloak Server Administration Guide (keycloak.org/docs/latest/server_admin/): "Audience support"
  (``aud`` holds ``account`` by default and the API's client id only with an audience mapper) and
  "Generating example tokens" (Clients > Client scopes > Evaluate > Generated access token, which
  shows the claims below for a realm user).
* Keycloak's token representation, ``org.keycloak.representations.AccessToken`` (``realm_access``,
  ``resource_access``, ``allowed-origins``, ``scope``) and its parents ``IDToken``/``JsonWebToken``
  (``typ: "Bearer"``, ``azp``, ``sid``, ``auth_time``, ``acr``, profile claims), in the keycloak/keycloak repository.
* The realm endpoints: issuer ``{server}/realms/{realm}``, discovery at
  ``{issuer}/.well-known/openid-configuration``, keys at ``{issuer}/protocol/openid-connect/certs``
  (which also publishes an ``RSA-OAEP`` key with ``use: "enc"``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from drf_oidc_jwks.testing import Response, TestIssuer, generate_key

from .conftest import jwt_parts

pytestmark = [pytest.mark.interop, pytest.mark.django_db]

REALM = "acme"
API_CLIENT = "reports-api"  # the API's Keycloak client id: the aud an audience mapper adds

#: Header of a Keycloak access token (realm key RS256); ``kid`` is the realm key's id.
KEYCLOAK_HEADER = {"alg": "RS256", "typ": "JWT"}


def keycloak_user_claims() -> dict[str, Any]:
    """The claim layout of a Keycloak access token for a realm user (authorization code flow, web-app client)."""
    return {
        "auth_time": 1700000000,
        "jti": str(uuid.uuid4()),
        "aud": [API_CLIENT, "account"],
        "typ": "Bearer",  # Keycloak's own token type claim, not the JOSE header
        "azp": "web-app",
        "sid": str(uuid.uuid4()),
        "acr": "1",
        "allowed-origins": ["https://app.example.com"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", f"default-roles-{REALM}", "admin"]},
        "resource_access": {
            API_CLIENT: {"roles": ["reports-editor"]},
            "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]},
        },
        "scope": "openid email profile",
        "email_verified": True,
        "name": "Alice Liddell",
        "preferred_username": "alice",
        "given_name": "Alice",
        "family_name": "Liddell",
        "email": "alice@example.com",
    }


def keycloak_service_account_claims() -> dict[str, Any]:
    """The claim layout of a Keycloak client-credentials token (a client's service account)."""
    return {
        "jti": str(uuid.uuid4()),
        "aud": [API_CLIENT, "account"],
        "typ": "Bearer",
        "azp": "billing-job",
        "acr": "1",
        "realm_access": {"roles": ["offline_access", "uma_authorization", f"default-roles-{REALM}"]},
        "resource_access": {API_CLIENT: {"roles": ["reports-reader"]}},
        "scope": "email profile",
        "clientHost": "127.0.0.1",
        "email_verified": False,
        "preferred_username": "service-account-billing-job",
        "clientAddress": "127.0.0.1",
        "client_id": "billing-job",
    }


@pytest.fixture
def realm() -> Iterator[TestIssuer]:
    """A Keycloak-layout realm on loopback: ``/realms/acme`` discovery and ``certs`` with an encryption key."""
    issuer = TestIssuer()
    enc_key = generate_key("RS256")
    enc_key.extra = {"use": "enc", "alg": "RSA-OAEP"}  # Keycloak publishes its encryption key in certs too
    issuer.keys.insert(0, enc_key)
    with issuer.serve(issuer_is_server=False) as server:
        issuer.issuer = f"{server.base_url}/realms/{REALM}"
        certs = f"/realms/{REALM}/protocol/openid-connect/certs"
        discovery = {
            "issuer": issuer.issuer,
            "authorization_endpoint": f"{issuer.issuer}/protocol/openid-connect/auth",
            "token_endpoint": f"{issuer.issuer}/protocol/openid-connect/token",
            "jwks_uri": server.url(certs),
            "id_token_signing_alg_values_supported": ["PS384", "RS384", "EdDSA", "ES384", "HS256", "RS256"],
        }
        server.respond(
            f"/realms/{REALM}/.well-known/openid-configuration",
            Response(200, json.dumps(discovery).encode(), {"Content-Type": "application/json"}),
        )
        server.respond(
            certs, Response(200, lambda: json.dumps(issuer.jwks()).encode(), {"Content-Type": "application/json"})
        )
        yield issuer


def keycloak_settings(realm: TestIssuer, **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"ISSUER": realm.issuer, "AUDIENCE": API_CLIENT, "PROVIDER": "keycloak"}
    value.update(overrides)
    return value


def mint(realm: TestIssuer, claims: dict[str, Any], sub: str) -> str:
    return realm.token(sub=sub, headers=KEYCLOAK_HEADER, **claims)


def test_keycloak_shaped_user_token_is_accepted_through_realm_discovery_with_realm_roles(settings, realm, bearer):
    settings.DRF_OIDC_JWKS = keycloak_settings(realm)
    sub = str(uuid.uuid4())
    token = mint(realm, keycloak_user_claims(), sub)
    assert jwt_parts(token)[0] == {**KEYCLOAK_HEADER, "kid": realm.key.kid}
    assert [k["use"] for k in realm.jwks()["keys"]] == ["enc", "sig"]

    me = bearer(token)
    admin = bearer(token, "/api/admin/users")

    assert me.status_code == 200, me.content
    body = me.json()
    assert body["sub"] == sub
    assert body["roles"] == sorted(["offline_access", "uma_authorization", f"default-roles-{REALM}", "admin"])
    assert (body["email"], body["name"], body["tenant_id"]) == ("alice@example.com", "Alice Liddell", None)
    assert admin.status_code == 200


def test_keycloak_client_roles_map_through_a_claims_override(settings, realm, bearer):
    settings.DRF_OIDC_JWKS = keycloak_settings(realm, CLAIMS={"roles": f"resource_access.{API_CLIENT}.roles"})
    sub = str(uuid.uuid4())
    token = mint(realm, keycloak_user_claims(), sub)

    me = bearer(token)
    admin = bearer(token, "/api/admin/users")

    assert me.status_code == 200, me.content
    assert me.json()["roles"] == ["reports-editor"]
    assert admin.status_code == 403
    assert admin.json()["code"] == "role_required"


def test_keycloak_service_account_token_is_accepted_with_its_scope_string(settings, realm, bearer):
    settings.DRF_OIDC_JWKS = keycloak_settings(realm)
    sub = str(uuid.uuid4())
    token = mint(realm, keycloak_service_account_claims(), sub)

    me = bearer(token)
    reports = bearer(token, "/api/reports")

    assert me.status_code == 200, me.content
    assert me.json()["sub"] == sub
    assert reports.status_code == 403  # "email profile" holds no reports:read
    assert reports.json()["code"] == "insufficient_scope"


def test_keycloak_default_audience_account_alone_is_refused_with_invalid_audience(settings, realm, bearer):
    settings.DRF_OIDC_JWKS = keycloak_settings(realm)
    sub = str(uuid.uuid4())
    claims = {**keycloak_user_claims(), "aud": "account"}  # no audience mapper for the API

    response = bearer(mint(realm, claims, sub))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_audience"
