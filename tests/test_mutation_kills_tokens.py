"""Tests that kill mutants of tokens.py which the rest of the suite let through (scripts/mutation.sh).

Each names the check it pins; docs/security.md, "Mutation testing", lists the mutant each one kills.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import TokenError
from drf_oidc_jwks.tokens import validate_claims, verify_token
from tests.test_tokens import b64, sign_text


def refused(token: str) -> str:
    with pytest.raises(TokenError) as exc:
        verify_token(token)
    return exc.value.code


@pytest.mark.parametrize("text", [b"x", b"}", b"-", b" "])
def test_a_one_character_segment_that_is_not_json_is_malformed_not_an_error(oidc_settings, issuer, text):
    # The fast JSON scan fails on one character; the full decoder must still run and refuse it.
    head, _, signature = issuer.token().split(".")
    assert refused(f"{head}.{b64(text)}.{signature}") == "malformed_token"
    assert refused(f"{b64(text)}.{b64(b'{}')}.{signature}") == "malformed_token"


def test_json_with_whitespace_around_the_value_is_still_read(oidc_settings, issuer):
    claims: dict[str, Any] = issuer.claims()
    token = sign_text(issuer, b"  " + json.dumps(claims).encode() + b"\n")
    assert verify_token(token)["sub"] == claims["sub"]


def code_of(payload: dict[str, Any], issuer: Any = None, leeway: float = 0, now: float = 2_000_000_000) -> str | None:
    try:
        validate_claims(payload, issuer or get_settings().issuers[0], leeway, now)
    except TokenError as exc:
        return exc.code
    return None


def claims_at(now: float, **extra: Any) -> dict[str, Any]:
    base = {"iss": get_settings().issuers[0].issuer, "aud": "https://api.test", "exp": now + 60, "sub": "alice"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def test_a_nbf_or_iat_at_exactly_now_is_valid_with_leeway_zero(oidc_settings):
    assert code_of(claims_at(2_000_000_000, nbf=2_000_000_000, iat=2_000_000_000)) is None
    assert code_of(claims_at(2_000_000_000, nbf=2_000_000_001)) == "token_not_yet_valid"


@pytest.mark.parametrize("name", ["sub", "jti"])
@pytest.mark.parametrize("value", [5, ["alice"], {"a": 1}, True])
def test_sub_and_jti_must_be_strings(oidc_settings, name, value):
    assert code_of(claims_at(2_000_000_000, **{name: value})) == "malformed_token"
    assert code_of(claims_at(2_000_000_000, **{name: "alice"})) is None


def test_a_sub_holding_a_nul_byte_is_malformed_and_a_token_without_sub_is_not(oidc_settings):
    assert code_of(claims_at(2_000_000_000, sub="ali\x00ce")) == "malformed_token"
    oidc_settings(REQUIRED_CLAIMS=["exp", "iss"])
    payload = claims_at(2_000_000_000)
    del payload["sub"]
    assert code_of(payload) is None


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [None, "2000000060", [2_000_000_060], True])
def test_a_time_claim_present_but_not_a_number_is_malformed(oidc_settings, name, value):
    payload = claims_at(2_000_000_000)
    payload[name] = value
    assert code_of(payload) == "malformed_token"


def test_a_kid_of_exactly_the_maximum_length_is_looked_up_and_one_longer_is_malformed(oidc_settings, issuer):
    assert refused(issuer.token(headers={"kid": "k" * 256})) == "unknown_key"
    assert refused(issuer.token(headers={"kid": "k" * 257})) == "malformed_token"


def test_allowed_types_compare_without_the_application_prefix_and_case(oidc_settings, issuer):
    with issuer.configure(ALLOWED_TYPES=["application/AT+JWT"]):
        assert verify_token(issuer.token(headers={"typ": "at+jwt"}))["sub"]
        assert verify_token(issuer.token(headers={"typ": "application/at+jwt"}))["sub"]
        assert refused(issuer.token(headers={"typ": "JWT"})) == "invalid_token_type"
        assert refused(issuer.token(headers={"typ": 5})) == "invalid_token_type"
