"""``oidc_check`` probes the introspection endpoint; ``oidc_decode`` introspects opaque tokens and explains refusals."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from drf_oidc_jwks import revocation
from drf_oidc_jwks.management.commands.oidc_decode import decode
from tests.introspection_server import IntrospectionServer, introspection_server

pytestmark = pytest.mark.django_db
AUD = "https://api.test"


@pytest.fixture
def idp() -> Iterator[IntrospectionServer]:
    with introspection_server() as server:
        yield server


def intro(idp: IntrospectionServer, **extra: Any) -> dict[str, Any]:
    return {"CLIENT_ID": idp.client_id, "CLIENT_SECRET": idp.client_secret, "URL": idp.url, **extra}


def run(name: str, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command(name, *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_check_shows_the_introspection_endpoint_and_probes_it_with_the_client_credentials(oidc_settings, idp):
    oidc_settings(INTROSPECTION=intro(idp))
    status, out = run("oidc_check")
    assert status == 0, out
    assert f"introspection: {idp.url}" in out
    assert "POST a random token (client_secret_basic) -> active: false" in out
    assert idp.requests == 1 and idp.client_secret not in out
    status, out = run("oidc_check", "--json")
    probe = json.loads(out)["issuers"][0]["introspection"]
    assert (probe["endpoint"], probe["active"]) == (idp.url, False)


def test_check_fails_when_the_introspection_credentials_are_refused(oidc_settings, idp):
    oidc_settings(INTROSPECTION=intro(idp, CLIENT_SECRET="wrong-secret"))
    status, out = run("oidc_check")
    assert status == 1, out
    assert "introspection endpoint: HTTP 401" in out
    assert "wrong-secret" not in out


def test_decode_introspects_an_opaque_token_and_explains_token_inactive(oidc_settings, idp, issuer):
    oidc_settings(SYNC_USERS=False, INTROSPECTION=intro(idp))
    now = int(time.time())
    idp.tokens["opaque-good"] = {"iss": issuer.issuer, "sub": "alice", "aud": AUD, "exp": now + 60}
    accepted = decode("opaque-good")
    assert accepted["accepted"] and accepted["introspected_at"] == issuer.issuer
    assert accepted["claims"]["token_format"] == "opaque"
    refused = decode("opaque-unknown")["refusal"]
    assert refused["code"] == "token_inactive" and refused["status"] == 401
    assert idp.url in refused["context"] and "CACHE_TTL (60s)" in refused["context"]
    assert "active: false" in refused["likely_cause"]


def test_decode_explains_token_revoked(oidc_settings, issuer):
    oidc_settings(SYNC_USERS=False)
    token = issuer.token("alice", iat=int(time.time()) - 5)
    revocation.revoke(issuer.issuer, sub="alice")
    status, out = run("oidc_decode", token)
    assert status == 1
    assert "token_revoked" in out and "REVOCATION_POLL (5s)" in out
