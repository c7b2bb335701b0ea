"""Back-Channel Logout 1.0 receiver: section 2.6 rules, one use per jti, and the revocation it records."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from django.core.cache import caches
from django.test import Client

from drf_oidc_jwks import revocation
from drf_oidc_jwks.backchannel import LOGOUT_EVENT
from drf_oidc_jwks.revocation import RevocationStore
from drf_oidc_jwks.testing import OMIT, TestIssuer

RP = "rp-client"
URL = "/backchannel-logout/"


@pytest.fixture(autouse=True)
def receiver(oidc_settings: Any) -> None:
    oidc_settings(SYNC_USERS=False, BACKCHANNEL_LOGOUT_AUDIENCE=[RP, "another-client"])


def logout_token(issuer: TestIssuer, sub: Any = "alice", **claims: Any) -> str:
    claims.setdefault("aud", RP)
    claims.setdefault("events", {LOGOUT_EVENT: {}})
    claims.setdefault("jti", uuid.uuid4().hex)
    claims.setdefault("sid", "session-1")
    headers = {"typ": claims.pop("typ", "logout+jwt")}
    return issuer.token(sub, headers=headers, expires_in=120, **claims)


FORM = "application/x-www-form-urlencoded"


def post(token: Any, client: Client | None = None, *, form: Any = None) -> Any:
    body = urlencode(form if form is not None else {"logout_token": token}, doseq=True)
    return (client or Client()).post(URL, body, content_type=FORM)


def me(api: Any, token: str) -> Any:
    return api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def nothing_recorded() -> bool:
    return caches["default"].get(RevocationStore.prefix + "gen") is None


def test_a_valid_logout_token_is_accepted_and_revokes_the_sessions_earlier_tokens(issuer, api):
    before = issuer.token("alice", sid="session-1", iat=int(time.time()) - 5)
    other_user = issuer.token("bob", iat=int(time.time()) - 5)
    assert me(api, before).status_code == 200

    response = post(logout_token(issuer))

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    refused = me(api, before)
    assert (refused.status_code, refused.json()["code"]) == (401, "token_revoked")
    assert 'error="invalid_token"' in refused["WWW-Authenticate"]
    assert me(api, other_user).status_code == 200
    after = issuer.token("alice", sid="session-2", iat=int(time.time()) + 2)
    assert me(api, after).status_code == 200


def test_a_sid_only_logout_leaves_the_users_other_sessions_working(issuer, api):
    now = int(time.time())
    mine, other = issuer.token("alice", sid="s1", iat=now - 5), issuer.token("alice", sid="s2", iat=now - 5)
    assert post(logout_token(issuer, sub=OMIT, sid="s1")).status_code == 200
    assert me(api, mine).json()["code"] == "token_revoked"
    assert me(api, other).status_code == 200


def test_a_replayed_logout_token_is_refused(issuer):
    token = logout_token(issuer)
    assert post(token).status_code == 200
    replay = post(token)
    assert (replay.status_code, replay.json()) == (400, {"error": "invalid_request"})


def test_typ_may_be_absent_and_csrf_does_not_apply(issuer):
    payload = issuer.claims("alice", aud=RP, events={LOGOUT_EVENT: {}}, jti="j-1")
    # PyJWT writes typ "JWT" unless told None: a logout token without typ, as older IdPs send.
    untyped = jwt.encode(payload, issuer.key.private_key, "RS256", headers={"kid": issuer.key.kid, "typ": None})
    assert "typ" not in jwt.get_unverified_header(untyped)
    response = post(untyped, Client(enforce_csrf_checks=True))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "someone-else"},
        {"aud": OMIT},
        {"events": OMIT},
        {"events": {"http://schemas.openid.net/event/other": {}}},
        {"events": {LOGOUT_EVENT: "yes"}},
        {"nonce": "n-0S6_WzA2Mj"},
        {"sub": OMIT, "sid": OMIT},
        {"sid": 42},
        {"jti": OMIT},
        {"typ": "JWT"},
        {"iat": OMIT},
        {"iat": int(time.time()) - 3600},
        {"iat": int(time.time()) + 3600},
        {"iat": "now"},
        {"exp": int(time.time()) - 3600},
        {"iss": "https://not-configured.test"},
    ],
    ids=lambda c: ",".join(f"{k}={v!r}"[:40] for k, v in c.items()),
)
def test_a_logout_token_breaking_a_rule_is_refused_with_nothing_recorded(issuer, claims):
    claims = dict(claims)  # a copy: the parameter's dict is reused by a second run in one process (mutmut)
    sub = claims.pop("sub", "alice")
    response = post(logout_token(issuer, sub, **claims))
    assert (response.status_code, response.json()) == (400, {"error": "invalid_request"})
    assert response["Cache-Control"] == "no-store"
    assert nothing_recorded()


def test_a_token_signed_by_an_unknown_key_or_an_unlisted_algorithm_is_refused(issuer):
    forged = issuer.foreign_token("alice", aud=RP, events={LOGOUT_EVENT: {}}, jti="j", sid="s")
    assert post(forged).status_code == 400
    ec = issuer.add_key("ES256")
    assert post(logout_token(issuer)).status_code == 400  # ES256 is not in ALGORITHMS
    issuer.remove_key(ec)
    assert nothing_recorded()


@pytest.mark.parametrize("body", ["not-a-jwt", "a.b.c", ""])
def test_garbage_is_refused(body):
    assert post(body).status_code == 400
    assert nothing_recorded()


def test_wrong_content_type_missing_or_repeated_parameter_and_get_are_refused(issuer):
    token = logout_token(issuer)
    client = Client()
    as_json = client.post(URL, {"logout_token": token}, content_type="application/json")
    assert as_json.status_code == 400
    multipart = client.post(URL, {"logout_token": token})
    assert multipart.status_code == 400
    assert post(None, form={}).status_code == 400
    assert post(None, form={"logout_token": [token, token]}).status_code == 400
    got = client.get(URL)
    assert (got.status_code, got["Cache-Control"]) == (405, "no-store")
    assert nothing_recorded()
    assert post(token).status_code == 200


def test_the_revocation_is_dated_by_the_logout_tokens_iat(issuer):
    iat = int(time.time()) - 100
    assert post(logout_token(issuer, iat=iat)).status_code == 200
    assert revocation.is_revoked(issuer.issuer, "alice", None, None, iat)
    assert not revocation.is_revoked(issuer.issuer, "alice", None, None, iat + 1)
