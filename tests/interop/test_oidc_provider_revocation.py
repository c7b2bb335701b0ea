"""panva's oidc-provider: opaque tokens through introspection, revocation at the IdP, and back-channel logout.

* ``OP_INTROSPECTION=1``: client-credentials access tokens for a ``.../opaque`` resource are opaque; the
  API introspects them (RFC 7662), and after the IdP revokes one (RFC 7009) answers ``token_inactive``
  once the cached answer expires.
* ``OP_BACKCHANNEL_LOGOUT_URI``: a user signs in through oidc-provider's own login and consent forms
  (driven over HTTP here), gets a JWT access token, signs out at the IdP's end_session endpoint; the IdP
  POSTs a logout token to the testproject running under runserver, and the old token is then refused
  with ``token_revoked`` while a token of a new session works.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from drf_oidc_jwks.introspection import looks_like_jws
from drf_oidc_jwks.testing import DPoPKey

from .conftest import API_AUDIENCE, HTTP_TIMEOUT, DjangoServer, free_port, start_django, start_node_server
from .oidc_browser import WEB_CLIENT, Browser, Provider

pytestmark = [pytest.mark.interop, pytest.mark.django_db]

OPAQUE_AUDIENCE = API_AUDIENCE + "/opaque"


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


@pytest.fixture(scope="module")
def opaque_provider(interop_logs: Path) -> Iterator[Provider]:
    client_id, secret = "reporting-service", uuid.uuid4().hex
    env = {"OP_CLIENT_ID": client_id, "OP_CLIENT_SECRET": secret, "OP_INTROSPECTION": "1"}
    node = start_node_server("oidc-provider-opaque", "oidc-provider-server.mjs", env, interop_logs)
    try:
        yield Provider(node, client_id, secret)
    finally:
        node.stop()


def opaque_settings(p: Provider, **introspection: Any) -> dict[str, Any]:
    """DRF_OIDC_JWKS for the provider's opaque tokens, introspected with its client's credentials."""
    return {
        "ISSUER": p.issuer,
        "AUDIENCE": OPAQUE_AUDIENCE,
        "SYNC_USERS": False,
        # oidc-provider's answers for client-credentials tokens carry client_id, not sub (RFC 7662 makes sub optional).
        "REQUIRED_CLAIMS": ["exp", "client_id"],
        "INTROSPECTION": {"CLIENT_ID": p.client_id, "CLIENT_SECRET": p.client_secret, **introspection},
    }


def test_an_opaque_token_is_introspected_and_refused_as_inactive_after_the_idp_revokes_it(
    settings, opaque_provider, bearer
):
    p = opaque_provider
    settings.DRF_OIDC_JWKS = opaque_settings(p, CACHE_TTL=2)
    token = p.client_credentials(OPAQUE_AUDIENCE)
    assert not looks_like_jws(token)

    ok = bearer(token, "/api/me")
    assert ok.status_code == 200, ok.content
    assert ok.json()["claims"]["scopes"] == ["reports:read"]

    p.revoke(token)
    assert bearer(token, "/api/me").status_code == 200  # the cached answer serves until CACHE_TTL
    time.sleep(2.1)
    refused = bearer(token, "/api/me")
    assert (refused.status_code, refused.json()["code"]) == (401, "token_inactive")


def test_a_jwt_of_the_same_provider_keeps_working_beside_introspection(settings, opaque_provider, bearer):
    p = opaque_provider
    settings.DRF_OIDC_JWKS = {
        "ISSUER": p.issuer,
        "AUDIENCE": [API_AUDIENCE, OPAQUE_AUDIENCE],
        "SYNC_USERS": False,
        "INTROSPECTION": {"CLIENT_ID": p.client_id, "CLIENT_SECRET": p.client_secret},
    }
    token = p.client_credentials(API_AUDIENCE)
    assert looks_like_jws(token)
    assert bearer(token, "/api/me").status_code == 200


def dpop_opaque_token(p: Provider, key: DPoPKey) -> tuple[str, dict[str, Any]]:
    """Client credentials with a DPoP proof, for the opaque resource: the token and the token response."""
    endpoint, nonce = p.meta["token_endpoint"], None
    for _ in range(2):
        r = _session().post(
            endpoint,
            data={"grant_type": "client_credentials", "resource": OPAQUE_AUDIENCE, "scope": "reports:read"},
            auth=(p.client_id, p.client_secret),
            headers={"DPoP": key.proof("POST", endpoint, nonce=nonce)},
            timeout=HTTP_TIMEOUT,
        )
        if r.status_code == 400 and r.json().get("error") == "use_dpop_nonce":
            nonce = r.headers["DPoP-Nonce"]
            continue
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"]), r.json()
    pytest.fail("the token endpoint kept asking for a nonce")


def test_a_dpop_bound_opaque_token_is_introspected_and_held_to_its_key(settings, opaque_provider, api, bearer):
    # oidc-provider's introspection answer for a DPoP-bound token says token_type DPoP and cnf.jkt (RFC 9449 6.2).
    p = opaque_provider
    settings.DRF_OIDC_JWKS = opaque_settings(p)
    key, thief = DPoPKey("ES256"), DPoPKey("ES256")
    token, answer = dpop_opaque_token(p, key)
    assert answer["token_type"] == "DPoP" and not looks_like_jws(token)
    url = "http://testserver/api/me"

    def send(proof_key: DPoPKey) -> Any:
        proof = proof_key.proof("GET", url, access_token=token)
        return api.get("/api/me", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)

    ok = send(key)
    assert ok.status_code == 200, ok.content
    assert ok.json()["claims"]["dpop_jkt"] == key.jkt
    stolen, as_bearer = send(thief), bearer(token, "/api/me")
    assert (stolen.status_code, stolen.json()["code"]) == (401, "invalid_dpop_proof")
    assert (as_bearer.status_code, as_bearer.json()["code"]) == (401, "sender_constrained")


# ---------------------------------------------------------------------------
# Back-channel logout


@pytest.fixture(scope="module")
def logout_setup(
    interop_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Provider, DjangoServer]]:
    port = free_port()
    web_secret = uuid.uuid4().hex
    env = {
        "OP_CLIENT_ID": "reporting-service",
        "OP_CLIENT_SECRET": uuid.uuid4().hex,
        "OP_WEB_CLIENT_ID": WEB_CLIENT,
        "OP_WEB_CLIENT_SECRET": web_secret,
        "OP_BACKCHANNEL_LOGOUT_URI": f"http://127.0.0.1:{port}/backchannel-logout/",
    }
    node = start_node_server("oidc-provider-logout", "oidc-provider-server.mjs", env, interop_logs)
    django: DjangoServer | None = None
    try:
        provider = Provider(node, env["OP_CLIENT_ID"], env["OP_CLIENT_SECRET"], web_secret)
        django_env = {
            "OIDC_ISSUER": provider.issuer,
            "OIDC_AUDIENCE": API_AUDIENCE,
            "OIDC_PROVIDER": "generic",
            "OIDC_SYNC_USERS": "false",
            "OIDC_BACKCHANNEL_LOGOUT_AUDIENCE": WEB_CLIENT,
        }
        django = start_django(django_env, tmp_path_factory.mktemp("logout-api"), port=port)
        yield provider, django
    finally:
        if django is not None:
            django.stop()
        node.stop()


def call(server: DjangoServer, token: str) -> requests.Response:
    return _session().get(server.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT)


def test_signing_out_at_the_idp_pushes_a_logout_that_revokes_the_sessions_token(logout_setup):
    provider, api = logout_setup
    browser = Browser(provider)
    tokens = browser.sign_in("alice")
    access = tokens["access_token"]
    assert looks_like_jws(access)
    before = call(api, access)
    assert before.status_code == 200, before.text
    assert before.json()["sub"] == "alice"

    browser.sign_out(tokens["id_token"])

    refused = call(api, access)
    assert (refused.status_code, refused.json().get("code")) == (401, "token_revoked"), refused.text
    time.sleep(1.1)  # a new session's tokens have a later iat than the logout token
    again = Browser(provider).sign_in("alice")
    assert call(api, again["access_token"]).status_code == 200
    log = api.log.read_text(errors="replace")
    assert '/backchannel-logout/ HTTP/1.1" 200' in log, log[-3000:]
