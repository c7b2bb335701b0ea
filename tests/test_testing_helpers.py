"""Helpers for users' tests: installed keys, bad tokens, Claims for force_authenticate, pytest fixtures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.test import override_settings
from rest_framework.test import APIClient

from drf_oidc_jwks.claims import Claims
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.jwks import get_client, install_jwks
from drf_oidc_jwks.testing import TestIssuer, project_settings
from drf_oidc_jwks.users import TokenUser

pytest_plugins = ["drf_oidc_jwks.pytest_plugin"]
pytestmark = pytest.mark.django_db  # accepted tokens sync their user

ROOT = Path(__file__).resolve().parent.parent
AUDIENCE = "https://api.test"


def refused(response: Any, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response.data["detail"].code == code
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_installed_jwks_is_exactly_the_entry_a_fetch_stores(issuer, server, oidc_settings):
    oidc_settings(JWKS_CACHE_TTL=120)
    issuer_settings = get_settings().issuers[0]
    fetched = get_client(issuer_settings).current_keyset()
    cache = caches["default"]
    prefix = get_client(issuer_settings)._prefix
    stored = cache.get(prefix + "jwks")
    cache.clear()
    installed = install_jwks(issuer_settings, issuer.jwks())
    again = cache.get(prefix + "jwks")
    assert sorted(again) == sorted(stored) == ["fetched_at", "fresh_until", "keys", "stale_until", "version"]
    assert again["keys"] == stored["keys"]
    assert again["version"] == stored["version"] == installed.version == fetched.version
    assert again["fresh_until"] - again["fetched_at"] == stored["fresh_until"] - stored["fetched_at"] == 120
    assert again["stale_until"] - again["fresh_until"] == stored["stale_until"] - stored["fresh_until"]


def test_installed_keys_verify_tokens_without_any_http_request():
    issuer = TestIssuer(audience=AUDIENCE)  # https://issuer.test: nothing listens there
    with issuer.configure():
        response = APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {issuer.token(sub='alice', role='admin')}")
        assert response.status_code == 200, response.content
        assert response.json()["sub"] == "alice"
        assert get_client(get_settings().issuers[0]).fetch_count == 0


def test_install_again_after_a_key_rotation_accepts_the_new_key():
    issuer = TestIssuer(audience=AUDIENCE)
    with issuer.configure(JWKS_REFRESH_COOLDOWN=3600):
        old = issuer.key
        issuer.add_key("RS256")
        issuer.remove_key(old)
        issuer.install()
        response = APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {issuer.token()}")
        assert response.status_code == 200, response.content
        assert get_client(get_settings().issuers[0]).fetch_count == 0


def test_install_refuses_an_issuer_the_settings_do_not_trust(settings):
    settings.DRF_OIDC_JWKS = {"ISSUER": "https://someone-else.test", "AUDIENCE": AUDIENCE}
    with pytest.raises(LookupError, match="does not trust 'https://issuer.test'"):
        TestIssuer().install()


def test_configure_restores_the_projects_setting_and_the_minting_audience():
    before = django_settings.DRF_OIDC_JWKS
    issuer = TestIssuer()
    with issuer.configure() as value:
        assert django_settings.DRF_OIDC_JWKS is value
        assert issuer.audience == before["AUDIENCE"]  # minted for what the project checks
    assert django_settings.DRF_OIDC_JWKS is before
    assert issuer.audience is None
    assert get_settings().issuers[0].issuer == before["ISSUER"]


def test_project_settings_keep_the_projects_provider_and_claims_but_trust_only_the_test_issuer(settings):
    settings.DRF_OIDC_JWKS = {
        "ISSUERS": [
            {"ISSUER": "https://real.example.com", "PROVIDER": "keycloak", "CLAIMS": {"tenant_id": "org"}},
            {"ISSUER": "https://other.example.com"},
        ],
        "AUDIENCE": "https://api.example.com",
        "ALGORITHMS": ["RS256", "ES256"],
        "JWKS_CACHE_TTL": 10,
    }
    issuer = TestIssuer(algorithm="ES256")
    value = project_settings(issuer.settings(), LEEWAY=0)
    assert value == {
        "ISSUER": "https://issuer.test",
        "AUDIENCE": "https://api.example.com",
        "ALGORITHMS": ["ES256"],
        "PROVIDER": "keycloak",
        "CLAIMS": {"tenant_id": "org"},
        "JWKS_CACHE_TTL": 10,
        "LEEWAY": 0,
    }


def test_project_claim_mapping_applies_to_test_tokens(settings):
    settings.DRF_OIDC_JWKS = {"ISSUER": "https://real.example.com", "AUDIENCE": AUDIENCE, "PROVIDER": "keycloak"}
    issuer = TestIssuer()
    with issuer.configure():
        token = issuer.token(sub="kc-user", realm_access={"roles": ["admin"]})
        response = APIClient().get("/api/admin/users", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.content


def test_expired_token_is_refused_as_expired_far_past_the_leeway():
    issuer = TestIssuer(audience=AUDIENCE)
    with issuer.configure(LEEWAY=600):
        refused(APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {issuer.expired_token()}"), "token_expired")
        token = issuer.expired_token(expired_for=60)
        assert APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


def test_foreign_token_with_the_known_kid_is_an_invalid_signature():
    issuer = TestIssuer(audience=AUDIENCE)
    with issuer.configure():
        token = issuer.foreign_token(sub="mallory", role="admin")
        refused(APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}"), "invalid_signature")


def test_foreign_token_with_its_own_kid_is_an_unknown_key_after_one_refetch(issuer, server, oidc_settings):
    token = issuer.foreign_token(same_kid=False)
    refused(APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}"), "unknown_key")
    assert server.total("/jwks.json") == 2  # the first fetch, then one refetch for the unknown kid


def test_make_claims_builds_what_request_auth_holds_for_force_authenticate():
    issuer = TestIssuer(audience=AUDIENCE)
    with issuer.configure(PROVIDER="better-auth"):
        claims = issuer.make_claims(sub="alice", role="admin,editor", tenant_id="acme", scope="reports:read")
        assert isinstance(claims, Claims)
        assert (claims.sub, claims.issuer, claims.tenant_id) == ("alice", issuer.issuer, "acme")
        assert claims.roles == {"admin", "editor"}  # the better-auth preset reads "role", comma-separated
        assert claims.scopes == {"reports:read"}
        assert claims.audience == (AUDIENCE,)
        client = APIClient()
        client.force_authenticate(user=TokenUser(claims), token=claims)
        assert client.get("/api/admin/users").status_code == 200
        assert client.get("/api/reports").status_code == 200
        assert get_client(get_settings().issuers[0]).fetch_count == 0


def test_make_claims_without_settings_for_the_issuer_uses_the_generic_paths():
    claims = TestIssuer().make_claims(roles=["admin"], role="ignored")
    assert claims.roles == {"admin"}


def test_every_supported_algorithm_can_sign_test_tokens():
    for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"):
        issuer = TestIssuer(algorithm=alg, audience=AUDIENCE)
        with issuer.configure():
            response = APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {issuer.token()}")
            assert response.status_code == 200, (alg, response.content)


# -- the pytest plugin --


def test_oidc_client_is_authenticated_with_the_claims_given(oidc_client):
    response = oidc_client(sub="bob", role="admin", tenant_id="acme").get("/api/me")
    assert response.status_code == 200, response.content
    assert response.json()["sub"] == "bob"
    assert response.json()["tenant_id"] == "acme"


def test_oidc_token_mints_for_the_configured_issuer(oidc_token, oidc_issuer):
    token = oidc_token(sub="carol", scope="reports:read")
    response = APIClient().get("/api/reports", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert get_settings().issuers[0].issuer == oidc_issuer.issuer == "https://issuer.test"


def test_oidc_issuer_keeps_the_projects_audience(oidc_issuer):
    assert oidc_issuer.audience == "http://127.0.0.1:8000/api"  # testproject's API_AUDIENCE
    assert get_settings().issuers[0].audience == ("http://127.0.0.1:8000/api",)


def test_oidc_served_issuer_is_fetched_over_loopback_http(oidc_served_issuer):
    assert oidc_served_issuer.issuer.startswith("http://127.0.0.1:")
    token = oidc_served_issuer.token(sub="dave")
    assert APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert get_client(get_settings().issuers[0]).fetch_count == 1


class TestOverridingTheFixturesSettings:
    @pytest.fixture
    def oidc_overrides(self) -> dict[str, Any]:
        return {"ALGORITHMS": ["EdDSA"], "REQUIRED_SCOPES": ["api"], "AUDIENCE": "https://other.test"}

    def test_overrides_choose_the_algorithm_audience_and_required_scopes(self, oidc_issuer, oidc_client):
        assert oidc_issuer.key.alg == "EdDSA"
        assert get_settings().issuers[0].audience == ("https://other.test",)
        assert oidc_client(scope="api").get("/api/me").status_code == 200
        response = oidc_client(scope="other").get("/api/me")
        assert response.status_code == 403
        assert response.data["detail"].code == "insufficient_scope"


def test_the_plugin_is_opt_in_and_not_a_pytest11_entry_point():
    assert "pytest11" not in (ROOT / "pyproject.toml").read_text()


@override_settings(DRF_OIDC_JWKS={"ISSUER": "https://real.example.com", "AUDIENCE": None})
def test_an_audience_opt_out_in_the_project_mints_tokens_without_aud():
    issuer = TestIssuer()
    with issuer.configure() as value:
        assert value["AUDIENCE"] is None
        assert "aud" not in issuer.claims()
        assert APIClient().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {issuer.token()}").status_code == 200


def test_the_downstream_example_passes_on_its_own_without_this_suites_conftest(tmp_path):
    # As a user's suite runs it: no tests/conftest.py fixtures, only the plugin line in the module.
    # Its own SQLite database: this session's pytest-django already holds the PostgreSQL test database.
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--noconftest", "tests/test_downstream_example.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"\b10 passed\b", result.stdout)


def test_a_stopped_jwks_server_is_unreachable_even_over_a_kept_alive_connection():
    import requests

    from drf_oidc_jwks.testing import JWKSServer, TestIssuer

    server = JWKSServer(TestIssuer())
    server.start()
    with requests.Session() as session:
        url = server.url("/jwks.json")
        assert session.get(url, timeout=5).status_code == 200  # the connection is kept alive
        server.stop()
        try:
            session.get(url, timeout=5)
        except requests.ConnectionError:
            pass
        else:
            raise AssertionError("the stopped server still answered")
