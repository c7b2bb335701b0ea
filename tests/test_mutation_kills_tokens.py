"""Tests that kill mutants of tokens.py which the rest of the suite let through (scripts/mutation.sh).

Each names the check it pins; docs/security.md, "Mutation testing", lists the mutant each one kills.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from drf_oidc_jwks.exceptions import TokenError
from drf_oidc_jwks.tokens import verify_token
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
