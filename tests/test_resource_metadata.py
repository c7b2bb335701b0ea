"""RFC 9728 protected-resource metadata, resource_metadata in challenges, REQUIRED_SCOPES, RFC 8707 audience."""

from __future__ import annotations

from drf_oidc_jwks.urls import metadata_url

RESOURCE = "https://api.test/mcp"


def test_metadata_url_follows_rfc_9728_path_insertion():
    assert metadata_url("https://api.test") == "https://api.test/.well-known/oauth-protected-resource"
    assert metadata_url("https://api.test/mcp") == "https://api.test/.well-known/oauth-protected-resource/mcp"
    assert metadata_url("https://api.test/a/b/") == "https://api.test/.well-known/oauth-protected-resource/a/b"


def test_metadata_document_lists_issuers_scopes_and_bearer_header(oidc_settings, issuer, api):
    oidc_settings(RESOURCE=RESOURCE, REQUIRED_SCOPES=["mcp:tools"])
    response = api.get("/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    assert response.json() == {
        "resource": RESOURCE,
        "authorization_servers": [issuer.issuer],
        "bearer_methods_supported": ["header"],
        # REQUIRED_SCOPES plus every HasScope reachable in the test project's URLconf (MCP 2026-07-28).
        "scopes_supported": ["analytics:read", "mcp:tools", "reports:export", "reports:read", "reports:write"],
    }


def test_metadata_carries_resource_documentation_where_set(oidc_settings, api):
    oidc_settings(RESOURCE="https://api.test", RESOURCE_DOCUMENTATION="https://docs.api.test")
    body = api.get("/.well-known/oauth-protected-resource").json()
    assert body["resource_documentation"] == "https://docs.api.test"
    assert body["scopes_supported"] == ["analytics:read", "reports:export", "reports:read", "reports:write"]


def test_metadata_for_another_path_or_when_unset_is_404(oidc_settings, api):
    assert api.get("/.well-known/oauth-protected-resource").status_code == 404  # RESOURCE not set
    oidc_settings(RESOURCE=RESOURCE)
    assert api.get("/.well-known/oauth-protected-resource").status_code == 404  # resource is under /mcp
    assert api.get("/.well-known/oauth-protected-resource/other").status_code == 404


def test_every_401_challenge_names_the_metadata_url(oidc_settings, issuer, call):
    oidc_settings(RESOURCE=RESOURCE)
    expected = 'resource_metadata="https://api.test/.well-known/oauth-protected-resource/mcp"'
    assert expected in call()["WWW-Authenticate"]
    refused = call(issuer.token(expires_in=-999))
    assert refused.status_code == 401
    assert expected in refused["WWW-Authenticate"] and 'error="invalid_token"' in refused["WWW-Authenticate"]


def test_required_scopes_refuse_with_insufficient_scope(oidc_settings, issuer, call):
    oidc_settings(REQUIRED_SCOPES=["mcp:tools", "openid"])
    response = call(issuer.token(scope="openid"))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="mcp:tools openid", '
        'error_description="Requires scope: mcp:tools openid."'
    )
    assert call(issuer.token(scope="openid mcp:tools profile")).status_code == 200


def test_resource_url_is_accepted_as_audience(oidc_settings, issuer, call):
    oidc_settings(RESOURCE=RESOURCE)
    assert call(issuer.token(aud=RESOURCE)).status_code == 200
    assert call(issuer.token(aud="https://api.test")).status_code == 200
    assert call(issuer.token(aud="https://elsewhere.test")).json()["code"] == "invalid_audience"
