"""Each ``PROVIDER`` preset against a token shaped like that provider's real tokens, end to end through the API.

The tokens are minted by our TestIssuer and served from a loopback JWKS server; their header
and claim layout follow each provider's documentation of its access tokens (and, where an API
may see them, ID tokens and client-credentials tokens):

* Better Auth: the JWT plugin's payload plus ``definePayload`` claims of the RoboLearn auth server
  (docs/interop.md has a real Better Auth server);
* Auth0: "Access Token Profiles" (RFC 9068 profile and the default ``auth0`` profile), RBAC
  ``permissions``, namespaced custom claims, M2M tokens with ``gty: client-credentials``;
* Okta: "Access token claims" of custom authorization servers (``ver``, ``cid``, ``uid``, ``scp``);
* Keycloak: ``AccessToken`` (``realm_access``, ``resource_access``, ``azp``), service accounts,
  the ``organization`` claim of Keycloak 26;
* Microsoft Entra ID: "Access token claims reference", v2.0 (``oid``, ``tid``, ``scp``, ``roles``,
  ``azp``, pairwise ``sub``), app-only tokens;
* Amazon Cognito: "Understanding the access token" / "ID token" (``cognito:groups``,
  ``token_use``, ``client_id`` instead of ``aud``, ``username`` / ``cognito:username``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from drf_oidc_jwks.models import OIDCIdentity
from drf_oidc_jwks.testing import OMIT, TestIssuer

User = get_user_model()

Start = Callable[..., TestIssuer]


@pytest.fixture
def idp(settings: Any) -> Iterator[Start]:
    """``idp(issuer_url, PROVIDER=..., AUDIENCE=..., ...)``: a provider-shaped issuer on loopback, configured."""
    stack = ExitStack()

    def start(issuer_url: str | None, *, alg: str = "RS256", discovery: bool = False, **conf: Any) -> TestIssuer:
        issuer = TestIssuer(issuer_url, algorithm=alg)
        server = stack.enter_context(issuer.serve(issuer_is_server=issuer_url is None))
        if discovery:
            # The issuer is the loopback server itself (with whatever suffix the caller gave), no JWKS_URL.
            issuer.issuer = server.base_url + (conf.pop("ISSUER_SUFFIX", ""))
            settings.DRF_OIDC_JWKS = {"ISSUER": issuer.issuer, "ALGORITHMS": [alg], **conf}
        else:
            settings.DRF_OIDC_JWKS = issuer.settings(**conf)
        return issuer

    yield start
    stack.close()


def get(token: str, path: str = "/api/me") -> Any:
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def ok(token: str, path: str = "/api/me") -> dict[str, Any]:
    response = get(token, path)
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


# -- Better Auth ------------------------------------------------------------------------------

BETTER_AUTH_URL = "http://localhost:3001"


def better_auth_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "Jm4VqXbQ2bYk3nT8aP0Lw1zR",
        "aud": BETTER_AUTH_URL,  # the JWT plugin's default audience is the base URL
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "email_verified": True,
        "image": None,
        "role": "admin",
        "tenant_id": "org_acme",
        "organization_ids": ["org_acme", "org_globex"],
        "org_role": "owner",
        "software_background": "advanced",
        "hardware_tier": "tier3",
    }
    claims.update(changes)
    return claims


@pytest.mark.parametrize("alg", ["EdDSA", "RS256"])
def test_better_auth_token_maps_role_tenant_and_profile_claims(idp, alg):
    issuer = idp(None, alg=alg, PROVIDER="better-auth", AUDIENCE=BETTER_AUTH_URL)
    token = issuer.token(**better_auth_claims())

    me = ok(token)
    assert (me["sub"], me["role"], me["roles"], me["tenant_id"]) == (
        "Jm4VqXbQ2bYk3nT8aP0Lw1zR",
        "admin",
        ["admin"],
        "org_acme",
    )
    assert me["claims"]["organization_ids"] == ["org_acme", "org_globex"]
    assert me["claims"]["org_role"] == "owner"
    assert me["claims"]["email_verified"] is True
    assert me["user"]["kind"] == "django" and me["user"]["email"] == "ada@example.com"
    assert me["user"]["username"] == "ada@example.com"  # no username claim: the e-mail
    assert ok(token, "/api/personalized") == {
        "content_level": "advanced",
        "hardware_requirements": "tier3",
        "message": "Content optimized for advanced with tier3 hardware",
    }
    assert get(token, "/api/admin/users").status_code == 200
    assert ok(token, "/api/tenant/data")["tenant_id"] == "org_acme"


def test_better_auth_comma_separated_roles_and_missing_profile_claims_use_the_defaults(idp):
    issuer = idp(None, PROVIDER="better-auth", AUDIENCE=BETTER_AUTH_URL)
    token = issuer.token(**better_auth_claims(role="user,admin", software_background=None, hardware_tier=None))
    assert ok(token)["roles"] == ["admin", "user"]
    personalized = ok(token, "/api/personalized")
    assert (personalized["content_level"], personalized["hardware_requirements"]) == ("beginner", "tier1")
    plain = issuer.token(**better_auth_claims(sub="u2", role="user", tenant_id=None, organization_ids=[]))
    assert get(plain, "/api/admin/users").status_code == 403
    assert get(plain, "/api/tenant/data").json()["code"] == "tenant_required"


# -- Auth0 -----------------------------------------------------------------------------------

AUTH0_API = "https://api.example.com"
NS = "https://example.com/"  # the namespace an Auth0 Action uses for custom claims


def auth0_user_claims(tenant: str, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "auth0|64f1c2a9e8b7d6c5b4a39281",
        "aud": [AUTH0_API, f"{tenant.rstrip('/')}/userinfo"],
        "azp": "xYz123SpaClientId",
        "scope": "openid profile email reports:read",
        "permissions": ["read:billing", "reports:read"],
        f"{NS}roles": ["admin"],
        f"{NS}email": "ada@example.com",
        "org_id": "org_9ybW3sd2ihVjOEKq",
    }
    claims.update(changes)
    return claims


def test_auth0_user_token_through_discovery_with_its_trailing_slash_issuer(idp):
    issuer = idp(
        None,
        discovery=True,
        ISSUER_SUFFIX="/",
        PROVIDER="auth0",
        AUDIENCE=AUTH0_API,
        CLAIMS={"roles": f"{NS}roles"},
        USER_FIELDS={"email": f"{NS}email"},
    )
    assert issuer.issuer.endswith("/")
    token = issuer.token(headers={"typ": "at+jwt"}, **auth0_user_claims(issuer.issuer))

    me = ok(token)
    assert me["sub"] == "auth0|64f1c2a9e8b7d6c5b4a39281"
    assert me["roles"] == ["admin"]
    assert me["claims"]["scopes"] == ["email", "openid", "profile", "reports:read"]
    assert me["claims"]["permissions"] == ["read:billing", "reports:read"]
    assert me["tenant_id"] == "org_9ybW3sd2ihVjOEKq"
    assert me["claims"]["client_id"] == "xYz123SpaClientId"
    assert me["user"]["email"] == "ada@example.com"
    assert get(token, "/api/billing").status_code == 200
    assert get(token, "/api/reports").status_code == 200
    assert get(token, "/api/admin/users").status_code == 200


def test_auth0_issuer_without_the_trailing_slash_is_another_issuer(idp):
    issuer = idp("https://dev-abc123.us.auth0.com/", PROVIDER="auth0", AUDIENCE=AUTH0_API)
    good = issuer.token(**auth0_user_claims(issuer.issuer))
    assert ok(good)["sub"].startswith("auth0|")
    bad = issuer.token(**auth0_user_claims(issuer.issuer, iss="https://dev-abc123.us.auth0.com"))
    response = get(bad)
    assert (response.status_code, response.json()["code"]) == (401, "invalid_issuer")


def test_auth0_machine_to_machine_token_is_a_service_principal(idp, django_assert_num_queries):
    issuer = idp("https://dev-abc123.us.auth0.com/", PROVIDER="auth0", AUDIENCE=AUTH0_API)
    token = issuer.token(
        sub="M2mCl1entId@clients",
        aud=AUTH0_API,
        azp="M2mCl1entId",
        gty="client-credentials",
        scope="reports:read",
        permissions=["reports:read"],
    )
    ok(token, "/api/personalized")  # warm the JWKS
    with django_assert_num_queries(0):
        me = ok(token)
        assert get(token, "/api/reports").status_code == 200
    assert me["user"] == {**me["user"], "kind": "service", "id": "M2mCl1entId@clients", "username": "M2mCl1entId"}
    assert me["claims"]["is_machine"] is True
    assert not User.objects.exists()


# -- Okta ------------------------------------------------------------------------------------

OKTA_ISSUER = "https://dev-123456.okta.com/oauth2/default"


def test_okta_token_reads_scp_groups_and_keys_the_user_by_the_immutable_uid(idp):
    issuer = idp(OKTA_ISSUER, PROVIDER="okta", AUDIENCE="api://default")
    common = {
        "ver": 1,
        "jti": "AT.x3Jx0bTlkf2gD9mZ1Vc7r8Tq",
        "aud": "api://default",
        "cid": "0oa1b2c3d4e5f6g7h8i9",
        "uid": "00u1a2b3c4d5e6f7g8h9",
        "scp": ["openid", "email", "reports:read"],
        "auth_time": 1700000000,
        "groups": ["Everyone", "admin"],
    }
    me = ok(issuer.token(sub="alice@example.com", **common))
    assert me["sub"] == "00u1a2b3c4d5e6f7g8h9"
    assert me["roles"] == ["Everyone", "admin"]
    assert me["claims"]["scopes"] == ["email", "openid", "reports:read"]
    assert me["claims"]["client_id"] == "0oa1b2c3d4e5f6g7h8i9"
    assert me["user"]["username"] == "alice@example.com"
    # The login is renamed: sub changes, uid does not, so it is still the same Django user.
    renamed = ok(issuer.token(sub="alice.liddell@example.com", **common))
    assert renamed["user"]["id"] == me["user"]["id"]
    assert OIDCIdentity.objects.get().subject == "00u1a2b3c4d5e6f7g8h9"


def test_okta_client_credentials_token_is_a_service_principal(idp):
    issuer = idp(OKTA_ISSUER, PROVIDER="okta", AUDIENCE="api://default")
    token = issuer.token(
        sub="0oa9z8y7x6w5v4u3t2s1",
        ver=1,
        aud="api://default",
        cid="0oa9z8y7x6w5v4u3t2s1",
        scp=["reports:read"],
    )
    me = ok(token)
    assert (me["user"]["kind"], me["user"]["username"]) == ("service", "0oa9z8y7x6w5v4u3t2s1")
    assert get(token, "/api/reports").status_code == 200
    assert not User.objects.exists()


# -- Keycloak --------------------------------------------------------------------------------

API_CLIENT = "reports-api"


def keycloak_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "jti": str(uuid.uuid4()),
        "aud": [API_CLIENT, "account"],
        "typ": "Bearer",
        "azp": "web-app",
        "sid": str(uuid.uuid4()),
        "acr": "1",
        "allowed-origins": ["https://app.example.com"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-acme", "admin"]},
        "resource_access": {
            API_CLIENT: {"roles": ["reports-editor"]},
            "account": {"roles": ["manage-account", "view-profile"]},
        },
        "scope": "openid email profile organization",
        "organization": {"acme": {"id": "8c1f..."}, "globex": {"id": "2b7e..."}},
        "email_verified": True,
        "name": "Alice Liddell",
        "preferred_username": "alice",
        "given_name": "Alice",
        "family_name": "Liddell",
        "email": "alice@example.com",
    }
    claims.update(changes)
    return claims


def test_keycloak_token_reads_realm_and_client_roles_through_several_paths(idp):
    issuer = idp(
        "https://sso.example.com/realms/acme",
        PROVIDER="keycloak",
        AUDIENCE=API_CLIENT,
        CLAIMS={"roles": [["realm_access", "roles"], ["resource_access", API_CLIENT, "roles"]]},
    )
    sub = str(uuid.uuid4())
    me = ok(issuer.token(sub=sub, **keycloak_claims()))
    assert me["sub"] == sub
    assert "admin" in me["roles"] and "reports-editor" in me["roles"] and "manage-account" not in me["roles"]
    assert me["claims"]["organization_ids"] == ["acme", "globex"]
    assert me["claims"]["client_id"] == "web-app"
    user = me["user"]
    assert (user["username"], user["first_name"], user["last_name"]) == ("alice", "Alice", "Liddell")


def test_keycloak_service_account_token_is_a_service_principal(idp):
    issuer = idp("https://sso.example.com/realms/acme", PROVIDER="keycloak", AUDIENCE=API_CLIENT)
    token = issuer.token(
        sub=str(uuid.uuid4()),
        aud=[API_CLIENT, "account"],
        azp="billing-job",
        client_id="billing-job",
        preferred_username="service-account-billing-job",
        realm_access={"roles": ["default-roles-acme"]},
        scope="email profile",
    )
    me = ok(token)
    assert (me["user"]["kind"], me["user"]["username"]) == ("service", "billing-job")
    assert not User.objects.exists()


# -- Microsoft Entra ID ----------------------------------------------------------------------

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
API_APP_ID = "6e74172b-be56-4843-9ff4-e66a39bb12e3"


def entra_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "aud": API_APP_ID,
        "nbf": 1700000000,
        "aio": "AWQAm/8TAAAA...",
        "azp": "1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b",
        "azpacr": "0",
        "name": "Ada Lovelace",
        "oid": "00000000-0000-0000-66f3-3332eca7ea81",
        "preferred_username": "ada@contoso.com",
        "rh": "0.ARoAv4j5cvGGr0GRqy180BHbR...",
        "roles": ["Reports.Admin"],
        "scp": "Reports.Read user_impersonation",
        "tid": TENANT,
        "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "ver": "2.0",
    }
    claims.update(changes)
    return claims


def test_entra_token_keys_the_user_by_oid_not_the_pairwise_sub(idp):
    issuer = idp(f"https://login.microsoftonline.com/{TENANT}/v2.0", PROVIDER="entra", AUDIENCE=API_APP_ID)
    first = ok(issuer.token(sub="AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", **entra_claims()))
    assert first["sub"] == "00000000-0000-0000-66f3-3332eca7ea81"
    assert first["roles"] == ["Reports.Admin"]
    assert first["claims"]["scopes"] == ["Reports.Read", "user_impersonation"]
    assert first["tenant_id"] == TENANT
    assert first["user"]["username"] == "ada@contoso.com"
    # The same person through another client application: another pairwise sub, the same oid.
    second = ok(issuer.token(sub="BBBBBBBBBBBBBBBBBBBBBBzqFVrSaSaFHy782bbtaQ", **entra_claims(azp="other-app")))
    assert second["user"]["id"] == first["user"]["id"]
    assert OIDCIdentity.objects.get().subject == "00000000-0000-0000-66f3-3332eca7ea81"


def test_entra_app_only_token_is_a_service_principal(idp):
    issuer = idp(f"https://login.microsoftonline.com/{TENANT}/v2.0", PROVIDER="entra", AUDIENCE=API_APP_ID)
    sp = "3b1f6a9e-7c2d-4e8f-9a0b-1c2d3e4f5a6b"
    token = issuer.token(sub=sp, **entra_claims(oid=sp, roles=["Jobs.Run"], scp=OMIT, name=OMIT))
    me = ok(token)
    assert me["user"]["kind"] == "service" and me["roles"] == ["Jobs.Run"]
    assert not User.objects.exists()


# Multi-tenant apps: the settings of docs/providers.md, two tenants, v2.0 and v1.0 tokens, one key set.

OTHER_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
COMMON_KEYS = "https://login.microsoftonline.com/common/discovery/v2.0/keys"


def documented_entra_multi_tenant_settings() -> dict[str, Any]:
    """The DRF_OIDC_JWKS value of docs/providers.md's "Multi-tenant apps" section, executed as written."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "providers.md").read_text()
    section = page.split("### Multi-tenant apps", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict[str, Any] = {}
    exec(block, namespace)  # noqa: S102 - our own documentation, run as a settings module would be
    return dict(namespace["DRF_OIDC_JWKS"])


@pytest.fixture
def entra_tenants(settings: Any) -> Iterator[tuple[TestIssuer, Any]]:
    """Entra's common key set on loopback, and the documented settings pointed at it (JWKS_URL only)."""
    keys = TestIssuer(f"https://login.microsoftonline.com/{TENANT}/v2.0")
    with keys.serve(issuer_is_server=False) as server:
        value = documented_entra_multi_tenant_settings()
        assert [entry["JWKS_URL"] for entry in value["ISSUERS"]] == [COMMON_KEYS, COMMON_KEYS]
        value["ISSUERS"] = [{**entry, "JWKS_URL": server.url("/jwks.json")} for entry in value["ISSUERS"]]
        settings.DRF_OIDC_JWKS = value
        yield keys, server


def entra_v1_claims(tenant: str, **changes: Any) -> dict[str, Any]:
    """A v1.0 access token's claims: sts.windows.net issuer, the Application ID URI, appid, upn."""
    claims = entra_claims(
        iss=f"https://sts.windows.net/{tenant}/",
        aud=f"api://{API_APP_ID}",
        tid=tenant,
        ver="1.0",
        appid="1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b",
        azp=OMIT,
        azpacr=OMIT,
        preferred_username=OMIT,
        upn="bob@fabrikam.com",
        unique_name="bob@fabrikam.com",
        oid="11111111-0000-0000-66f3-3332eca7ea81",
    )
    claims.update(changes)
    return claims


def test_the_documented_entra_multi_tenant_settings_accept_v2_and_v1_tokens_of_two_tenants_with_one_fetch(
    entra_tenants,
):
    keys, server = entra_tenants
    v2 = keys.token(sub="pairwise-ada", **entra_claims(iss=f"https://login.microsoftonline.com/{TENANT}/v2.0"))
    v1 = keys.token(sub="pairwise-bob", **entra_v1_claims(OTHER_TENANT))
    ada, bob = ok(v2), ok(v1)
    assert (ada["tenant_id"], ada["user"]["username"]) == (TENANT, "ada@contoso.com")
    assert (bob["tenant_id"], bob["user"]["username"]) == (OTHER_TENANT, "bob@fabrikam.com")
    assert bob["claims"]["client_id"] == "1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b"  # appid in v1.0 tokens
    # Users are keyed by the concrete issuer and oid.
    identities = sorted(OIDCIdentity.objects.values_list("issuer", "subject"))
    assert identities == [
        (f"https://login.microsoftonline.com/{TENANT}/v2.0", "00000000-0000-0000-66f3-3332eca7ea81"),
        (f"https://sts.windows.net/{OTHER_TENANT}/", "11111111-0000-0000-66f3-3332eca7ea81"),
    ]
    # A v2.0 token of the other tenant and a v1.0 token of the first: still the one key set, fetched once.
    ok(keys.token(**entra_claims(iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0", tid=OTHER_TENANT)))
    ok(keys.token(**entra_v1_claims(TENANT)))
    assert server.total("/jwks.json") == 1


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        (entra_claims(iss="https://login.microsoftonline.com/0a0a0a0a-1111-2222-3333-444455556666/v2.0"), "unlisted"),
        (entra_claims(iss=f"https://login.microsoftonline.com/{TENANT}/v2.0", tid=OTHER_TENANT), "tid disagrees"),
        (entra_v1_claims(OTHER_TENANT, tid=TENANT), "tid disagrees, v1.0"),
        (entra_claims(iss=f"https://login.microsoftonline.com/{TENANT}/v2.0", tid=OMIT), "no tid"),
    ],
)
def test_the_documented_entra_settings_refuse_other_tenants_and_a_tid_that_disagrees_with_iss(
    entra_tenants, claims, why
):
    keys, server = entra_tenants
    response = get(keys.token(**claims))
    assert (response.status_code, response.json()["code"]) == (401, "invalid_issuer"), why


def test_the_entra_preset_ties_a_templated_issuer_to_tid_and_an_explicit_tenant_claim_wins(settings):
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.issuer_lookup import index_for

    entry = {"ISSUER": "https://login.microsoftonline.com/{tenant}/v2.0", "TENANTS": "*", "JWKS_URL": COMMON_KEYS}
    cases = [("entra", {}, "tid"), ("entra", {"TENANT_CLAIM": "tenant"}, "tenant"), ("generic", {}, None)]
    for provider, extra, expected in cases:
        settings.DRF_OIDC_JWKS = {"AUDIENCE": API_APP_ID, "PROVIDER": provider, "ISSUERS": [{**entry, **extra}]}
        match = index_for(get_settings()).find(f"https://login.microsoftonline.com/{TENANT}/v2.0")
        assert match is not None and match.tenant_claim == expected, (provider, extra)


# -- Amazon Cognito --------------------------------------------------------------------------

POOL = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI"
APP_CLIENT = "3n4b5urk1ft4fl3mg5e62d9ado"


def cognito_access_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["admin", "editors"],
        "version": 2,
        "client_id": APP_CLIENT,
        "origin_jti": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin reports/read",
        "auth_time": 1700000000,
        "jti": str(uuid.uuid4()),
        "username": "ada",
    }
    claims.update(changes)
    return claims


def test_cognito_access_token_has_no_aud_and_is_checked_against_client_id(idp):
    issuer = idp(POOL, PROVIDER="cognito", AUDIENCE=APP_CLIENT)
    me = ok(issuer.token(**cognito_access_claims()))
    assert me["sub"] == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert me["roles"] == ["admin", "editors"]
    assert me["claims"]["scopes"] == ["aws.cognito.signin.user.admin", "reports/read"]
    assert me["claims"]["client_id"] == APP_CLIENT
    assert me["user"]["username"] == "ada"
    assert get(issuer.token(**cognito_access_claims()), "/api/admin/users").status_code == 200


def test_cognito_access_token_of_another_app_client_is_refused_with_invalid_audience(idp):
    issuer = idp(POOL, PROVIDER="cognito", AUDIENCE=APP_CLIENT)
    response = get(issuer.token(**cognito_access_claims(client_id="someotherappclient0000000")))
    assert (response.status_code, response.json()["code"]) == (401, "invalid_audience")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    missing = get(issuer.token(**cognito_access_claims(client_id=OMIT)))
    assert (missing.status_code, missing.json()["code"]) == (401, "invalid_audience")


def test_cognito_id_token_carries_aud_and_cognito_username(idp):
    issuer = idp(POOL, PROVIDER="cognito", AUDIENCE=APP_CLIENT)
    token = issuer.token(
        sub="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        aud=APP_CLIENT,
        token_use="id",
        email="ada@example.com",
        email_verified=True,
        **{"cognito:username": "ada", "cognito:groups": ["admin"]},
    )
    me = ok(token)
    assert (me["user"]["username"], me["user"]["email"], me["roles"]) == ("ada", "ada@example.com", ["admin"])
    assert me["claims"]["client_id"] == APP_CLIENT
    wrong = get(issuer.token(sub="x", aud="someotherappclient0000000", token_use="id"))
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_audience")


def test_cognito_client_credentials_token_is_a_service_principal(idp):
    issuer = idp(POOL, PROVIDER="cognito", AUDIENCE=APP_CLIENT)
    token = issuer.token(sub=APP_CLIENT, client_id=APP_CLIENT, token_use="access", scope="reports/read", version=2)
    me = ok(token)
    assert (me["user"]["kind"], me["user"]["username"]) == ("service", APP_CLIENT)
    assert not User.objects.exists()


# -- generic ---------------------------------------------------------------------------------


def test_generic_preset_reads_the_standard_names(idp):
    issuer = idp(None, AUDIENCE="https://api.test")
    me = ok(
        issuer.token(
            sub="s-1",
            aud="https://api.test",
            roles=["admin"],
            scope="reports:read",
            tenant_id="acme",
            client_id="spa",
            preferred_username="sam",
        )
    )
    assert (me["roles"], me["claims"]["scopes"], me["tenant_id"]) == (["admin"], ["reports:read"], "acme")
    assert (me["claims"]["client_id"], me["user"]["username"]) == ("spa", "sam")
