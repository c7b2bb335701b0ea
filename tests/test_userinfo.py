"""Userinfo enrichment: off by default; asked only on creation or changed claims; cached; never refuses."""

from __future__ import annotations

import json

import pytest

from drf_oidc_jwks.testing import OMIT, Response

USERINFO = "/userinfo"


def userinfo_says(server, issuer_sub="alice", **claims):
    body = {"sub": issuer_sub, "email": "alice@example.com", "given_name": "Alice", "family_name": "Liddell", **claims}
    server.respond(USERINFO, Response(200, json.dumps(body).encode(), {"Content-Type": "application/json"}))


def me(call, token):
    response = call(token)
    assert response.status_code == 200, response.content
    return response.json()["user"]


@pytest.fixture
def access_token(issuer):
    """An Auth0-style access token: no e-mail, no names."""

    def mint(**claims):
        return issuer.token(sub="alice", email=OMIT, **claims)

    return mint


def test_userinfo_is_off_by_default(oidc_settings, server, call, access_token):
    userinfo_says(server)
    assert me(call, access_token())["email"] == ""
    assert server.total(USERINFO) == 0


def test_userinfo_fills_what_the_access_token_lacks_on_creation(oidc_settings, server, call, access_token):
    oidc_settings(USERINFO=True)
    userinfo_says(server)
    token = access_token()
    user = me(call, token)
    assert (user["email"], user["first_name"], user["last_name"]) == ("alice@example.com", "Alice", "Liddell")
    assert server.total(USERINFO) == 1
    assert server.last_headers[USERINFO]["Authorization"] == f"Bearer {token}"  # the presented token


def test_userinfo_is_not_asked_again_in_the_steady_state(oidc_settings, server, call, access_token):
    oidc_settings(USERINFO=True)
    userinfo_says(server)
    for _ in range(3):
        me(call, access_token(jti="same-claims"))
    me(call, access_token(jti="another-token-same-claims"))
    assert server.total(USERINFO) == 1


def test_userinfo_is_cached_per_subject_when_claims_change(oidc_settings, server, call, access_token):
    oidc_settings(USERINFO=True)
    userinfo_says(server)
    me(call, access_token())
    me(call, access_token(given_name="Alicia"))  # fingerprint changed: the cached userinfo serves
    assert server.total(USERINFO) == 1


def test_the_token_wins_over_userinfo(oidc_settings, server, call, issuer):
    oidc_settings(USERINFO=True)
    userinfo_says(server, email="old@example.com")
    user = me(call, issuer.token(sub="alice", email="token@example.com"))
    assert (user["email"], user["first_name"]) == ("token@example.com", "Alice")


@pytest.mark.parametrize(
    "failure",
    [Response(500, b"down"), Response(200, b"<html>"), Response(200, b"[]"), Response(401, b"{}")],
    ids=["http-500", "html", "not-an-object", "http-401"],
)
def test_a_failing_userinfo_never_refuses_a_valid_token(oidc_settings, server, call, access_token, failure):
    oidc_settings(USERINFO=True)
    server.respond(USERINFO, failure)
    assert me(call, access_token())["email"] == ""


def test_a_slow_userinfo_is_bounded_by_the_timeout(oidc_settings, server, call, access_token):
    import time

    oidc_settings(USERINFO=True, HTTP_TIMEOUT=0.5)
    me(call, access_token(jti="warm-the-jwks"))  # JWKS fetched; this user is created without userinfo
    userinfo_says(server)
    server.respond(USERINFO, Response(200, b"{}", delay=3))
    started = time.monotonic()
    me(call, issuer_token := access_token(given_name="Changed"))
    assert time.monotonic() - started < 1.5
    assert issuer_token


def test_userinfo_for_another_subject_is_ignored(oidc_settings, server, call, access_token):
    oidc_settings(USERINFO=True)
    userinfo_says(server, issuer_sub="mallory", email="mallory@example.com")
    assert me(call, access_token())["email"] == ""


def test_userinfo_url_can_be_set_instead_of_discovered(oidc_settings, server, call, access_token):
    oidc_settings(USERINFO=True, USERINFO_URL=server.url("/custom-userinfo"))
    server.respond(
        "/custom-userinfo", Response(200, json.dumps({"sub": "alice", "email": "custom@example.com"}).encode())
    )
    assert me(call, access_token())["email"] == "custom@example.com"
    assert server.total(USERINFO) == 0
