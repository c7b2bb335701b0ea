"""The verified-token memo: keyed by a hash, bounded, ends at exp, dropped with its key."""

from __future__ import annotations

import time

import pytest

from drf_oidc_jwks import tokens
from drf_oidc_jwks.exceptions import TokenError
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
