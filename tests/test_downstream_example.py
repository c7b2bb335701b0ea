"""What a project using drf-oidc-jwks writes to test its own API: copy this file and adapt the URLs.

It uses only the public helpers (``drf_oidc_jwks.pytest_plugin`` and ``drf_oidc_jwks.testing``) and
needs no identity provider and no network: the plugin trusts a test issuer for each test and puts its
keys straight into the JWKS cache. Your project's ``DRF_OIDC_JWKS`` stays the base, so its
``PROVIDER``, ``CLAIMS`` and ``AUDIENCE`` are what these tests exercise. See docs/testing.md.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from drf_oidc_jwks.users import TokenUser

# In your project this line goes in the top-level conftest.py, once for the whole suite.
pytest_plugins = ["drf_oidc_jwks.pytest_plugin"]

# With SYNC_USERS (the default) an authenticated request creates or reads its Django user.
pytestmark = pytest.mark.django_db


def test_an_authenticated_caller_sees_their_own_profile(oidc_client):
    client = oidc_client(sub="alice", email="alice@example.com", role="user", tenant_id="acme")
    response = client.get("/api/me")
    assert response.status_code == 200
    assert response.json()["sub"] == "alice"
    assert response.json()["tenant_id"] == "acme"


def test_no_token_is_401_with_a_bearer_challenge():
    response = APIClient().get("/api/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_admin_endpoint_lets_admins_in_and_keeps_others_out(oidc_client):
    assert oidc_client(role="admin").get("/api/admin/users").status_code == 200
    refused = oidc_client(role="user").get("/api/admin/users")
    assert refused.status_code == 403
    assert refused.data["detail"].code == "role_required"


def test_reports_need_the_read_scope(oidc_client):
    assert oidc_client(scope="reports:read").get("/api/reports").status_code == 200
    refused = oidc_client(scope="profile").get("/api/reports")
    assert refused.status_code == 403
    assert refused.data["detail"].code == "insufficient_scope"
    assert 'scope="reports:read"' in refused["WWW-Authenticate"]


def test_tenant_data_needs_an_organization(oidc_client):
    assert oidc_client(tenant_id="acme").get("/api/tenant/data").json()["tenant_id"] == "acme"
    assert oidc_client().get("/api/tenant/data").status_code == 403


def test_an_expired_token_is_refused(oidc_issuer):
    response = APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {oidc_issuer.expired_token()}")
    assert response.status_code == 401
    assert response.data["detail"].code == "token_expired"


def test_a_token_signed_by_someone_else_is_refused(oidc_issuer):
    forged = oidc_issuer.foreign_token(role="admin")
    response = APIClient().get("/api/admin/users", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert response.status_code == 401
    assert response.data["detail"].code == "invalid_signature"


def test_a_token_for_another_api_is_refused(oidc_token):
    token = oidc_token(aud="https://another-api.example.com")
    response = APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert response.data["detail"].code == "invalid_audience"


def test_force_authenticate_skips_the_crypto_but_keeps_the_claims(oidc_issuer):
    claims = oidc_issuer.make_claims(sub="bob", role="admin")
    client = APIClient()
    client.force_authenticate(user=TokenUser(claims), token=claims)
    assert client.get("/api/admin/users").status_code == 200


class TestWithTheApiRequiringAScopeEverywhere:
    """Override ``oidc_overrides`` to change DRF_OIDC_JWKS for the tests of one class or module."""

    @pytest.fixture
    def oidc_overrides(self):
        return {"REQUIRED_SCOPES": ["api"]}

    def test_a_token_without_the_scope_is_refused_everywhere(self, oidc_client):
        assert oidc_client(scope="api").get("/api/me").status_code == 200
        assert oidc_client().get("/api/me").status_code == 403
