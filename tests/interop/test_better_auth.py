"""Better Auth (interop/auth.ts, its JWT and organization plugins) mints; the testproject API verifies and decides.

Every token here comes from a real Better Auth server on loopback: a user signs up and signs in by
HTTP, and the JWT plugin's ``/api/auth/token`` issues the JWT the API is then called with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import API_AUDIENCE, BetterAuth, jwt_parts, start_django

pytestmark = [pytest.mark.interop, pytest.mark.django_db]


def test_eddsa_jwt_of_a_signed_in_user_is_accepted_with_its_custom_claims_mapped(settings, better_auth, bearer):
    user = better_auth.sign_up("Ada", admin=True)
    org = user.create_organization("Acme")
    token = user.jwt()
    header, payload = jwt_parts(token)
    assert header["alg"] == "EdDSA" and header["kid"]
    assert payload["iss"] == better_auth.url and payload["aud"] == API_AUDIENCE
    settings.DRF_OIDC_JWKS = better_auth.settings()

    response = bearer(token)

    assert response.status_code == 200, response.content
    me = response.json()
    assert me["sub"] == user.id
    assert me["email"] == user.email
    assert me["roles"] == ["admin"]
    assert me["tenant_id"] == org
    tenant = bearer(token, "/api/tenant/data")
    assert tenant.status_code == 200, tenant.content
    assert tenant.json() == {"tenant_id": org, "org_role": "owner", "organizations": [org]}


def test_better_auth_publishes_an_ed25519_key_without_private_members(better_auth):
    user = better_auth.sign_up("Key")
    user.jwt()  # the JWT plugin creates its key pair on first use
    keys = requests.get(better_auth.jwks_url, timeout=10).json()["keys"]
    assert [(k["kty"], k["crv"], k.get("alg")) for k in keys] == [("OKP", "Ed25519", "EdDSA")]
    assert "d" not in keys[0]


def test_admin_role_passes_has_role_and_a_plain_user_is_refused_with_role_required(settings, better_auth, bearer):
    settings.DRF_OIDC_JWKS = better_auth.settings()
    admin = better_auth.sign_up("Grace", admin=True).jwt()
    plain = better_auth.sign_up("Linus").jwt()

    allowed = bearer(admin, "/api/admin/users")
    refused = bearer(plain, "/api/admin/users")

    assert allowed.status_code == 200, allowed.content
    assert refused.status_code == 403
    assert refused.json()["code"] == "role_required"


def test_role_sent_at_sign_up_is_ignored_so_a_user_cannot_make_itself_admin(settings, better_auth, bearer):
    settings.DRF_OIDC_JWKS = better_auth.settings()
    user = better_auth.sign_up("Mallory", extra={"role": "admin"})
    token = user.jwt()

    assert jwt_parts(token)[1]["role"] == "user"
    response = bearer(token, "/api/admin/users")
    assert response.status_code == 403
    assert response.json()["code"] == "role_required"


def test_active_organization_chosen_in_better_auth_becomes_the_tenant_and_its_role(settings, better_auth, bearer):
    settings.DRF_OIDC_JWKS = better_auth.settings()
    user = better_auth.sign_up("Hedy")
    first = user.create_organization("First")
    second = user.create_organization("Second")
    assert bearer(user.jwt()).json()["tenant_id"] == second  # a new organisation becomes the active one

    user.set_active_organization(first)
    response = bearer(user.jwt(), "/api/tenant/data")

    assert response.status_code == 200, response.content
    assert response.json() == {"tenant_id": first, "org_role": "owner", "organizations": [first, second]}


def test_organization_member_creates_a_resource_stamped_with_its_better_auth_organization(
    settings, better_auth, bearer
):
    settings.DRF_OIDC_JWKS = better_auth.settings()
    alice = better_auth.sign_up("Alice")
    alice_org = alice.create_organization("Alpha")
    bob = better_auth.sign_up("Bob")
    bob.create_organization("Beta")

    created = bearer(alice.jwt(), "/api/tenant/resources", "post", data={"name": "Q3 plan"}, format="json")
    listed_by_bob = bearer(bob.jwt(), "/api/tenant/resources")

    assert created.status_code == 201, created.content
    assert created.json()["tenant_id"] == alice_org
    assert created.json()["created_by"] == alice.id
    assert listed_by_bob.status_code == 200
    assert listed_by_bob.json() == []


def test_user_without_an_organization_is_refused_tenant_endpoints_with_tenant_required(settings, better_auth, bearer):
    settings.DRF_OIDC_JWKS = better_auth.settings()
    token = better_auth.sign_up("Solo").jwt()

    response = bearer(token, "/api/tenant/data")

    assert jwt_parts(token)[1]["tenant_id"] is None
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_required"


def test_eddsa_jwt_is_refused_with_unsupported_algorithm_when_algorithms_holds_only_rs256(
    settings, better_auth, bearer
):
    settings.DRF_OIDC_JWKS = better_auth.settings(ALGORITHMS=["RS256"])
    token = better_auth.sign_up("Ada").jwt()

    response = bearer(token)

    assert response.status_code == 401
    assert response.json()["code"] == "unsupported_algorithm"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_jwt_for_another_audience_is_refused_with_invalid_audience(settings, better_auth, bearer):
    settings.DRF_OIDC_JWKS = better_auth.settings(AUDIENCE="https://another-api.interop.test")
    token = better_auth.sign_up("Ada").jwt()

    response = bearer(token)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_audience"


def test_jwt_with_a_forged_signature_is_refused_with_invalid_signature(settings, better_auth, bearer):
    settings.DRF_OIDC_JWKS = better_auth.settings()
    token = better_auth.sign_up("Eve").jwt()
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"

    response = bearer(forged)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"


def test_rs256_configured_better_auth_jwt_is_accepted_with_its_claims_mapped(settings, better_auth_rs256, bearer):
    user = better_auth_rs256.sign_up("Ada", admin=True)
    org = user.create_organization("Acme")
    token = user.jwt()
    assert jwt_parts(token)[0]["alg"] == "RS256"
    settings.DRF_OIDC_JWKS = better_auth_rs256.settings()

    me = bearer(token)
    admin = bearer(token, "/api/admin/users")

    assert me.status_code == 200, me.content
    assert (me.json()["sub"], me.json()["roles"], me.json()["tenant_id"]) == (user.id, ["admin"], org)
    assert admin.status_code == 200


def test_two_better_auth_servers_eddsa_and_rs256_are_trusted_side_by_side_through_issuers(
    settings, better_auth, better_auth_rs256, bearer
):
    settings.DRF_OIDC_JWKS = {
        "AUDIENCE": API_AUDIENCE,
        "PROVIDER": "better-auth",
        "ISSUERS": [
            {"ISSUER": better_auth.url, "JWKS_URL": better_auth.jwks_url, "ALGORITHMS": ["EdDSA"]},
            {"ISSUER": better_auth_rs256.url, "JWKS_URL": better_auth_rs256.jwks_url, "ALGORITHMS": ["RS256"]},
        ],
    }
    eddsa_user = better_auth.sign_up("Ed")
    rsa_user = better_auth_rs256.sign_up("Rosa")

    subs = [bearer(u.jwt()).json().get("sub") for u in (eddsa_user, rsa_user)]

    assert subs == [eddsa_user.id, rsa_user.id]


def _get(url: str, token: str | None = None, **kwargs: Any) -> requests.Response:
    http = requests.Session()
    http.trust_env = False
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request(kwargs.pop("method", "GET"), url, headers=headers, timeout=10, **kwargs)


def test_better_auth_jwt_is_verified_by_the_testproject_running_under_runserver(
    better_auth: BetterAuth, tmp_path: Path
):
    env = {
        "OIDC_ISSUER": better_auth.url,
        "OIDC_JWKS_URL": better_auth.jwks_url,
        "OIDC_AUDIENCE": API_AUDIENCE,
        "OIDC_ALGORITHMS": "EdDSA",
        "OIDC_PROVIDER": "better-auth",
    }
    admin = better_auth.sign_up("Ada", admin=True)
    org = admin.create_organization("Acme")
    plain = better_auth.sign_up("Linus").jwt()
    server = start_django(env, tmp_path)
    try:
        token = admin.jwt()
        me = _get(server.url + "/api/me", token)
        admin_users = _get(server.url + "/api/admin/users", token)
        created = _get(server.url + "/api/tenant/resources", token, method="POST", json={"name": "Roadmap"})
        refused = _get(server.url + "/api/admin/users", plain)
        anonymous = _get(server.url + "/api/me")
    finally:
        server.stop()

    assert me.status_code == 200, me.text
    assert (me.json()["sub"], me.json()["roles"], me.json()["tenant_id"]) == (admin.id, ["admin"], org)
    assert admin_users.status_code == 200
    assert created.status_code == 201, created.text
    assert created.json()["tenant_id"] == org
    assert refused.status_code == 403 and refused.json()["code"] == "role_required"
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer ")
