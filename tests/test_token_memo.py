"""The verified-token memo: keyed by a hash, bounded, ends at exp, dropped with its key."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_oidc_jwks import tokens
from drf_oidc_jwks.conf import build
from drf_oidc_jwks.exceptions import TokenError
from drf_oidc_jwks.permissions import HasRole
from drf_oidc_jwks.tokens import verify_token


def test_a_repeated_token_is_served_from_the_memo(oidc_settings, issuer):
    token = issuer.token()
    first = verify_token(token)
    assert verify_token(token) is first


def test_memo_can_be_turned_off(oidc_settings, issuer):
    oidc_settings(TOKEN_CACHE_TTL=0)
    token = issuer.token()
    assert verify_token(token) is not verify_token(token)


def test_memo_is_keyed_by_a_hash_never_the_token(oidc_settings, issuer):
    token = issuer.token()
    verify_token(token)
    memo = tokens._memo
    assert memo is not None and len(memo) == 1
    (key,) = memo._data.keys()
    assert isinstance(key, bytes) and len(key) == 32
    assert token.encode() != key and token not in repr(memo._data)


def test_memo_is_bounded(oidc_settings, issuer):
    oidc_settings(TOKEN_CACHE_SIZE=3)
    for i in range(10):
        verify_token(issuer.token(sub=f"user-{i}"))
    assert len(tokens._memo) == 3


def test_memoised_token_still_expires_at_its_exp(oidc_settings, issuer):
    oidc_settings(LEEWAY=0)
    token = issuer.token(expires_in=1)
    verify_token(token)
    time.sleep(1.1)
    with pytest.raises(TokenError) as exc:
        verify_token(token)
    assert exc.value.code == "token_expired"


def test_memoised_token_is_dropped_when_its_key_leaves_the_jwks(oidc_settings, issuer, call, server):
    old = issuer.key
    token = issuer.token(key=old)
    assert call(token).status_code == 200
    new = issuer.add_key("RS256")
    issuer.remove_key(old)
    assert call(issuer.token(key=new)).status_code == 200  # unknown kid: refetch, old key gone
    response = call(token)
    assert response.status_code == 401
    assert response.json()["code"] == "unknown_key"


def test_memo_is_cleared_when_settings_change(oidc_settings, issuer):
    token = issuer.token()
    verify_token(token)
    oidc_settings(AUDIENCE="https://another-api.test")
    with pytest.raises(TokenError) as exc:
        verify_token(token)
    assert exc.value.code == "invalid_audience"


def test_refused_tokens_are_not_memoised(oidc_settings, issuer):
    token = issuer.token(aud="https://other.test")
    for _ in range(2):
        with pytest.raises(TokenError):
            verify_token(token)
    assert tokens._memo is None or len(tokens._memo) == 0


def test_claims_of_a_memoised_token_are_read_only(oidc_settings, issuer):
    claims = verify_token(issuer.token(role="user"))
    with pytest.raises(TypeError):
        claims.raw["role"] = "admin"  # type: ignore[index]


def test_a_token_memoised_under_one_settings_object_is_verified_afresh_under_another(oidc_settings, issuer):
    # verify_token(raw, settings): the memo answers only for the settings the token was verified under, or a
    # caller passing its own settings (another audience, say) would get claims those settings refuse.
    token = issuer.token()
    own = verify_token(token)
    other = build(issuer.settings(AUDIENCE="https://another-api.test", DPOP="off"))
    with pytest.raises(TokenError) as exc:
        verify_token(token, other)
    assert exc.value.code == "invalid_audience"
    same_audience = build(issuer.settings(DPOP="off"))
    assert verify_token(token, same_audience) is not own  # verified again, under these settings
    assert verify_token(token, same_audience) is verify_token(token, same_audience)  # and memoised for them


# -- a view cannot change what the next request with the same token sees -------------


def _attempt(change: Any) -> str:
    try:
        change()
    except (AttributeError, TypeError) as exc:
        return type(exc).__name__
    return "changed"


class MutatingView(APIView):
    """A careless view: tries to grant itself admin on the shared, memoised ``request.auth``."""

    def get(self, request: Request) -> Response:
        auth = request.auth
        attempts = {
            "attribute": _attempt(lambda: setattr(auth, "roles", frozenset({"admin"}))),
            "nested list": _attempt(lambda: auth.raw["roles"].append("admin")),
            "nested object": _attempt(lambda: auth.raw["realm_access"].__setitem__("roles", ["admin"])),
            "raw": _attempt(lambda: auth.raw.__setitem__("role", "admin")),
        }
        # The frozen payload renders through DRF's JSON renderer as the token's JSON.
        return Response({"attempts": attempts, "roles": sorted(auth.roles), "raw": auth.raw})


class AdminView(APIView):
    permission_classes = [HasRole("admin")]

    def get(self, request: Request) -> Response:
        return Response({"admin": True})


urlpatterns = [path("mutate", MutatingView.as_view()), path("admin", AdminView.as_view())]


@pytest.mark.urls("tests.test_token_memo")
def test_a_view_mutating_request_auth_leaves_the_next_request_with_the_same_token_unaffected(
    oidc_settings, issuer, call
):
    token = issuer.token(roles=["user"], realm_access={"roles": ["user"]})
    first = call(token, path="/mutate")
    assert first.status_code == 200, first.content
    assert first.json()["attempts"] == {
        "attribute": "AttributeError",
        "nested list": "TypeError",
        "nested object": "TypeError",
        "raw": "TypeError",
    }
    assert tokens._memo is not None and len(tokens._memo) == 1  # the next request reuses these very Claims
    second = call(token, path="/mutate")
    assert second.json()["roles"] == ["user"]
    assert second.json()["raw"]["roles"] == ["user"] and second.json()["raw"]["realm_access"] == {"roles": ["user"]}
    assert "role" not in second.json()["raw"]
    denied = call(token, path="/admin")
    assert denied.status_code == 403
    assert call(issuer.token(roles=["admin"]), path="/admin").status_code == 200
