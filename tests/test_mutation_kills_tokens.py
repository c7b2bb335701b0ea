"""Tests that kill mutants of tokens.py which the rest of the suite let through (scripts/mutation.sh).

Each names the check it pins; docs/security.md, "Mutation testing", lists the mutant each one kills.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from drf_oidc_jwks import tokens
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import TokenError
from drf_oidc_jwks.signals import token_verified
from drf_oidc_jwks.testing import TestIssuer
from drf_oidc_jwks.tokens import get_memo, reset_memo, validate_claims, verify_token
from tests.test_resolver import ANSWERS, TABLE_RESOLVER
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


def reason_of(payload: dict[str, Any]) -> str:
    with pytest.raises(TokenError) as exc:
        validate_claims(payload, get_settings().issuers[0], 0, 2_000_000_000)
    return exc.value.reason


@pytest.mark.parametrize("value", [None, "2000000060", [2_000_000_060], {"at": 1}])
def test_a_time_claim_that_is_no_number_is_refused_as_not_a_number_not_as_not_finite(oidc_settings, value):
    payload = claims_at(2_000_000_000)
    payload["exp"] = value
    assert reason_of(payload).startswith("exp is not a number")
    payload["exp"] = 1e400
    assert reason_of(payload) == "exp is not a finite number"


class Seconds(int):
    """A leeway given as an int subclass (an IntEnum member, a units type): still a finite number."""


@pytest.mark.parametrize("leeway", [True, False, None, "30", [30], math.nan, math.inf, -math.inf, 10**400])
def test_a_leeway_that_is_no_finite_number_is_improperly_configured(oidc_settings, leeway):
    with pytest.raises(ImproperlyConfigured, match="LEEWAY must be a finite number"):
        validate_claims(claims_at(2_000_000_000), get_settings().issuers[0], leeway, 2_000_000_000)


def test_a_leeway_of_an_int_subclass_or_a_float_is_a_number_of_seconds(oidc_settings):
    payload = claims_at(2_000_000_000, nbf=2_000_000_030)
    assert code_of(payload, leeway=Seconds(30)) is None
    assert code_of(payload, leeway=29.5) == "token_not_yet_valid"
    assert code_of(payload, leeway=Seconds(29)) == "token_not_yet_valid"


JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def test_validate_claims_refuses_a_cnf_bound_payload_unless_told_it_came_with_dpop(oidc_settings):
    payload = claims_at(2_000_000_000, cnf={"jkt": JKT})
    assert code_of(payload) == "sender_constrained"  # the default: a bearer token
    issuer = get_settings().issuers[0]
    assert validate_claims(payload, issuer, 0, 2_000_000_000, dpop=True) is None


def test_a_dpop_bound_token_verifies_when_it_came_with_the_dpop_scheme_also_from_the_memo(oidc_settings, issuer):
    token = issuer.token(cnf={"jkt": JKT})
    first = verify_token(token, dpop=True)
    assert first["cnf"]["jkt"] == JKT
    assert verify_token(token, dpop=True) is first  # the memo answers, and the binding is still accepted
    assert refused(token) == "sender_constrained"  # the memoised token, now as a bearer token


def test_a_required_aud_that_is_absent_is_an_invalid_audience_not_a_missing_claim(oidc_settings):
    oidc_settings(REQUIRED_CLAIMS=["exp", "iss", "aud"])
    payload = claims_at(2_000_000_000)
    del payload["aud"]
    assert code_of(payload) == "invalid_audience"
    oidc_settings(REQUIRED_CLAIMS=["exp", "iss", "aud"], AUDIENCE=None)
    assert code_of(payload) == "invalid_audience"


@pytest.mark.parametrize(
    "aud", [{"https://api.test": True}, 5, True, ["https://api.test", 5], ["https://api.test", None]]
)
def test_an_aud_that_is_neither_a_string_nor_a_list_of_strings_is_an_invalid_audience(oidc_settings, aud):
    assert code_of(claims_at(2_000_000_000, aud=aud)) == "invalid_audience"


@pytest.mark.parametrize("iss", [["https://issuer.test"], {"https://issuer.test": 1}, 5, None])
def test_an_iss_that_is_not_a_string_is_an_invalid_issuer_not_an_error(oidc_settings, issuer, iss):
    payload = {**issuer.claims(), "iss": iss}
    assert refused(sign_text(issuer, json.dumps(payload).encode())) == "invalid_issuer"


def test_token_verified_is_sent_by_verify_token_with_the_issuer_and_whether_the_memo_answered(oidc_settings, issuer):
    heard: list[tuple[Any, dict[str, Any]]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        heard.append((sender, kwargs))

    token_verified.connect(receiver, weak=False)
    try:
        token = issuer.token()
        verify_token(token)
        verify_token(token)
    finally:
        token_verified.disconnect(receiver)
    assert heard == [
        (verify_token, {"issuer": issuer.issuer, "memoised": False}),
        (verify_token, {"issuer": issuer.issuer, "memoised": True}),
    ]


def test_token_verified_names_no_issuer_for_a_memoised_token_whose_resolved_issuer_was_forgotten(
    settings, issuer, server
):
    # The memo answers for a token of a resolved issuer that the resolver cache has since let go (one entry
    # kept, another issuer resolved meanwhile): the signal's label is then None, never an error.
    other = TestIssuer(audience=issuer.audience)
    with other.serve() as other_server:
        settings.DRF_OIDC_JWKS = {
            "ISSUER_RESOLVER": TABLE_RESOLVER,
            "ISSUER_RESOLVER_CACHE_SIZE": 1,
            "ALGORITHMS": ["RS256"],
        }
        for idp, srv in ((issuer, server), (other, other_server)):
            ANSWERS[idp.issuer] = {"ISSUER": idp.issuer, "AUDIENCE": idp.audience, "JWKS_URL": srv.url("/jwks.json")}
        heard: list[dict[str, Any]] = []

        def receiver(sender: Any, **kwargs: Any) -> None:
            heard.append({"issuer": kwargs["issuer"], "memoised": kwargs["memoised"]})

        token = issuer.token()
        token_verified.connect(receiver, weak=False)
        try:
            first = verify_token(token)
            verify_token(other.token())
            assert verify_token(token) is first
        finally:
            token_verified.disconnect(receiver)
            ANSWERS.clear()
    assert heard == [
        {"issuer": issuer.issuer, "memoised": False},
        {"issuer": other.issuer, "memoised": False},
        {"issuer": None, "memoised": True},
    ]


def test_at_most_1024_selected_issuers_are_kept_then_they_start_over(settings, issuer, server):
    # TENANTS "*": every tenant name is a new iss, so the kept selections are bounded.
    settings.DRF_OIDC_JWKS = {
        "AUDIENCE": issuer.audience,
        "ALGORITHMS": ["RS256"],
        "ISSUERS": [{"ISSUER": issuer.issuer + "/{tenant}", "TENANTS": "*", "JWKS_URL": server.url("/jwks.json")}],
    }
    header = {"alg": "RS256", "typ": "JWT", "kid": issuer.key.kid}
    head = b64(json.dumps(header).encode())

    def select_tenant(n: int) -> None:
        body = b64(json.dumps({**issuer.claims(), "iss": f"{issuer.issuer}/t{n}"}).encode())
        assert refused(f"{head}.{body}.{b64(bytes(256))}") == "invalid_signature"  # selected, then refused

    for n in range(1024):
        select_tenant(n)
    assert len(tokens._selected) == 1024
    select_tenant(1024)
    assert len(tokens._selected) == 1


def test_a_memoised_token_is_not_served_at_the_very_second_of_its_exp(oidc_settings, issuer, monkeypatch):
    oidc_settings(LEEWAY=0, TOKEN_CACHE_TTL=3600)
    exp = int(time.time()) + 100
    token = sign_text(issuer, json.dumps({**issuer.claims(), "iat": exp - 200, "exp": exp}).encode())
    monkeypatch.setattr(time, "time", lambda: exp - 0.5)
    first = verify_token(token)
    assert verify_token(token) is first  # served from the memo
    monkeypatch.setattr(time, "time", lambda: float(exp))
    assert refused(token) == "token_expired"


def test_a_memoised_token_past_its_exp_leaves_the_memo(oidc_settings, issuer, monkeypatch):
    oidc_settings(LEEWAY=0)
    exp = int(time.time()) + 100
    token = sign_text(issuer, json.dumps({**issuer.claims(), "iat": exp - 200, "exp": exp}).encode())
    monkeypatch.setattr(time, "time", lambda: exp - 1.0)
    verify_token(token)
    memo = get_memo(get_settings())
    assert memo is not None and len(memo) == 1
    monkeypatch.setattr(time, "time", lambda: exp + 1.0)
    assert refused(token) == "token_expired"
    assert len(memo) == 0


@pytest.mark.parametrize(("ttl", "size"), [(0, 100), (0, 1), (60, 0), (1, 0)])
def test_a_token_cache_ttl_or_size_of_zero_turns_the_memo_off(oidc_settings, issuer, ttl, size):
    oidc_settings(TOKEN_CACHE_TTL=ttl, TOKEN_CACHE_SIZE=size)
    token = issuer.token()
    assert verify_token(token) is not verify_token(token)
    assert get_memo(get_settings()) is None


@pytest.mark.parametrize(("ttl", "size"), [(1, 1), (1, 100), (60, 1)])
def test_a_token_cache_of_one_second_or_one_entry_is_a_memo(oidc_settings, issuer, ttl, size):
    oidc_settings(TOKEN_CACHE_TTL=ttl, TOKEN_CACHE_SIZE=size)
    token = issuer.token()
    assert verify_token(token) is verify_token(token)
    memo = get_memo(get_settings())
    assert memo is not None and len(memo) == 1


def test_a_verification_at_an_explicit_now_is_never_answered_from_the_memo(oidc_settings, issuer):
    claims = issuer.claims()
    token = issuer.token()
    first = verify_token(token)
    assert verify_token(token) is first
    # Checked at that instant: before the token was issued, it is not yet valid.
    with pytest.raises(TokenError) as exc:
        verify_token(token, now=claims["iat"] - 3600)
    assert exc.value.code == "token_not_yet_valid"
    at_now = verify_token(token, now=time.time())
    assert at_now is not first and verify_token(token, now=time.time()) is not at_now


def test_a_token_given_as_bytes_is_verified_and_memoised_like_its_text(oidc_settings, issuer):
    token = issuer.token()
    first = verify_token(token.encode())
    assert first.sub == "alice"
    assert verify_token(token) is first and verify_token(token.encode()) is first


@pytest.mark.parametrize("head", ["\ud800", "e30\udfff"])
def test_a_token_holding_a_lone_surrogate_is_malformed_with_the_memo_on(oidc_settings, issuer, head):
    assert get_memo(get_settings()) is not None
    body, signature = issuer.token().split(".")[1:]
    assert refused(f"{head}.{body}.{signature}") == "malformed_token"


def test_the_verified_claims_carry_the_tokens_header(oidc_settings, issuer):
    claims = verify_token(issuer.token(headers={"typ": "at+jwt"}))
    assert claims.header["kid"] == issuer.key.kid and claims.header["typ"] == "at+jwt"
    assert claims.header["alg"] == "RS256"


def test_a_token_without_exp_is_memoised_for_the_token_cache_ttl(oidc_settings, issuer):
    oidc_settings(REQUIRED_CLAIMS=["iss"])
    payload = {k: v for k, v in issuer.claims().items() if k != "exp"}
    token = sign_text(issuer, json.dumps(payload).encode())
    first = verify_token(token)
    assert "exp" not in first.raw and verify_token(token) is first


def test_the_memo_serves_a_token_through_the_leeway_after_its_exp(oidc_settings, issuer, monkeypatch):
    oidc_settings(LEEWAY=60, TOKEN_CACHE_TTL=3600)
    exp = int(time.time()) + 100
    token = sign_text(issuer, json.dumps({**issuer.claims(), "iat": exp - 200, "exp": exp}).encode())
    monkeypatch.setattr(time, "time", lambda: exp - 90.0)
    first = verify_token(token)
    for moment in (exp - 30.0, exp + 30.0, exp + 59.5):
        monkeypatch.setattr(time, "time", lambda moment=moment: moment)
        assert verify_token(token) is first, moment
    monkeypatch.setattr(time, "time", lambda: exp + 60.0)
    assert refused(token) == "token_expired"


def test_reset_memo_forgets_every_memoised_token(oidc_settings, issuer):
    token = issuer.token()
    first = verify_token(token)
    assert verify_token(token) is first
    reset_memo()
    memo = get_memo(get_settings())
    assert memo is not None and len(memo) == 0
    assert verify_token(token) is not first
