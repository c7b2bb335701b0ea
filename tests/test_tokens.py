"""The verifier's own checks (tokens.py), each at its boundary: a test per check that a careless change breaks.

These kill the mutations of issue 20 that the rest of the suite let through: an audience prefix, the
``exp`` instant with ``LEEWAY = 0``, the issuer equality inside the claim checks, the strict base64url
alphabet (and canonical spelling), and JSON's non-standard constants.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import TokenError
from drf_oidc_jwks.tokens import read_unverified, validate_claims, verify_token

AUD = "https://api.test"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_text(issuer: Any, payload_text: bytes, header: dict[str, Any] | None = None) -> str:
    header = header or {"alg": "RS256", "typ": "JWT", "kid": issuer.key.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload_text)}"
    signature = jwt.get_algorithm_by_name("RS256").sign(signing_input.encode(), issuer.key.private_key)
    return f"{signing_input}.{b64(signature)}"


def refused_code(token: str, **kwargs: Any) -> str:
    with pytest.raises(TokenError) as exc:
        verify_token(token, **kwargs)
    return exc.value.code


def issuer_settings() -> Any:
    return get_settings().issuers[0]


def with_low_bits_set(segment: str) -> str:
    """The same bytes spelt differently: the last character's unused low bits set (RFC 4648 3.5)."""
    unused = {2: 4, 3: 2}[len(segment) % 4]
    value = ALPHABET.index(segment[-1])
    return segment[:-1] + ALPHABET[value | ((1 << unused) - 1)]


def segment_with_unused_bits(data: bytes) -> bytes:
    """Pad ``data`` (JSON: trailing spaces are allowed) until its base64url form has unused bits."""
    while len(b64(data)) % 4 == 0:
        data += b" "
    return data


# -- aud: exact members, never a prefix ---------------------------------------


@pytest.mark.parametrize("aud", ["https://api", "https://api.tes", "https://api.test/", ["https://api"], "api.test"])
def test_an_audience_that_is_a_prefix_or_part_of_the_expected_one_is_refused(oidc_settings, issuer, aud):
    assert refused_code(issuer.token(aud=aud)) == "invalid_audience"


def test_an_audience_that_extends_the_expected_one_is_refused(oidc_settings, issuer):
    assert refused_code(issuer.token(aud=AUD + ".evil")) == "invalid_audience"
    assert verify_token(issuer.token(aud=["https://other.test", AUD])).audience == ("https://other.test", AUD)


# -- aud: the MCP canonical URI rule (scheme and host case-insensitive, path exact) -------------


@pytest.mark.parametrize("aud", ["HTTPS://API.TEST", "https://Api.Test", ["x", "hTTps://api.TEST"]])
def test_an_audience_differing_only_in_the_case_of_scheme_or_host_is_accepted(oidc_settings, issuer, aud):
    assert verify_token(issuer.token(aud=aud)).sub


@pytest.mark.parametrize(
    "aud",
    [
        "https://api.test/MCP",
        "https://api.test/mcp/",
        "https://api.test:8443/mcp",
        "http://api.test/mcp",
        "https://user@api.test/mcp",
    ],
)
def test_an_audience_differing_in_path_port_scheme_or_user_info_is_refused(oidc_settings, issuer, aud):
    oidc_settings(AUDIENCE="https://api.test/mcp")
    assert verify_token(issuer.token(aud="https://API.test/mcp")).sub
    assert refused_code(issuer.token(aud=aud)) == "invalid_audience"


def test_a_non_uri_audience_is_compared_exactly(oidc_settings, issuer):
    oidc_settings(AUDIENCE="Client-ID-42")
    assert verify_token(issuer.token(aud="Client-ID-42")).sub
    assert refused_code(issuer.token(aud="client-id-42")) == "invalid_audience"


# -- exp at its instant, LEEWAY = 0 -------------------------------------------


def test_with_leeway_zero_a_token_is_expired_at_exactly_its_exp_instant(oidc_settings, issuer):
    oidc_settings(LEEWAY=0)
    payload = {"iss": issuer.issuer, "aud": AUD, "sub": "alice", "exp": 2_000_000_000}
    validate_claims(payload, issuer_settings(), 0, 1_999_999_999.999)
    with pytest.raises(TokenError) as exc:
        validate_claims(payload, issuer_settings(), 0, 2_000_000_000)
    assert exc.value.code == "token_expired"


def test_with_leeway_zero_verify_token_refuses_at_the_exp_instant_and_accepts_a_second_before(oidc_settings, issuer):
    oidc_settings(LEEWAY=0)
    token = issuer.token(exp=2_000_000_000, iat=1_999_999_000)
    assert verify_token(token, now=1_999_999_999).sub == "alice"
    assert refused_code(token, now=2_000_000_000) == "token_expired"


def test_the_leeway_moves_the_exp_boundary_by_exactly_its_seconds(oidc_settings, issuer):
    payload = {"iss": issuer.issuer, "aud": AUD, "sub": "alice", "exp": 2_000_000_000}
    validate_claims(payload, issuer_settings(), 30, 2_000_000_029.5)
    with pytest.raises(TokenError):
        validate_claims(payload, issuer_settings(), 30, 2_000_000_030)


# -- the issuer equality inside the claim checks (the second guard) ------------


@pytest.mark.parametrize("iss", ["https://evil.test", None, "", 5, ["x"]])
def test_validate_claims_itself_refuses_an_iss_other_than_the_issuers(oidc_settings, issuer, iss):
    payload: dict[str, Any] = {"aud": AUD, "sub": "alice", "exp": 2_000_000_000}
    if iss is not None:
        payload["iss"] = iss
    with pytest.raises(TokenError) as exc:
        validate_claims(payload, issuer_settings(), 0, 1_000_000_000)
    assert exc.value.code == "invalid_issuer"


def test_validate_claims_refuses_an_iss_differing_only_by_a_suffix_or_case(oidc_settings, issuer):
    for iss in (issuer.issuer + "/", issuer.issuer.upper(), issuer.issuer[:-1]):
        payload = {"iss": iss, "aud": AUD, "sub": "alice", "exp": 2_000_000_000}
        with pytest.raises(TokenError) as exc:
            validate_claims(payload, issuer_settings(), 0, 1_000_000_000)
        assert exc.value.code == "invalid_issuer"
    validate_claims({**payload, "iss": issuer.issuer}, issuer_settings(), 0, 1_000_000_000)


# -- a non-finite leeway never switches the time checks off -------------------


@pytest.mark.parametrize("leeway", [math.nan, math.inf, -math.inf])
def test_validate_claims_refuses_a_non_finite_leeway_instead_of_skipping_the_time_checks(oidc_settings, issuer, leeway):
    expired = {"iss": issuer.issuer, "aud": AUD, "sub": "alice", "exp": 1_000_000_000}
    with pytest.raises(ImproperlyConfigured, match="LEEWAY"):
        validate_claims(expired, issuer_settings(), leeway, 2_000_000_000)


# -- strict base64url: the alphabet, no padding, one spelling ------------------


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda t: t + "==", id="padding-appended"),
        pytest.param(lambda t: t + "=", id="one-pad"),
        pytest.param(lambda t: t[:-10] + "!" + t[-10:], id="bang-in-signature"),
        pytest.param(lambda t: t[:-10] + "+" + t[-9:], id="plus-in-signature"),
        pytest.param(lambda t: t[:-10] + "/" + t[-9:], id="slash-in-signature"),
        pytest.param(lambda t: t[:-10] + "\n" + t[-10:], id="newline-in-signature"),
        pytest.param(lambda t: t.replace(".", "=.", 1), id="padded-header"),
        pytest.param(lambda t: t[:8] + "*" + t[9:], id="star-in-header"),
        pytest.param(
            lambda t: ".".join(s[:5] + " " + s[5:] if i == 1 else s for i, s in enumerate(t.split("."))),
            id="space-in-payload",
        ),
    ],
)
def test_a_token_spelt_outside_the_base64url_alphabet_is_malformed(oidc_settings, issuer, spoil):
    token = issuer.token()
    assert verify_token(token).sub == "alice"
    assert refused_code(spoil(token)) == "malformed_token"


def test_a_signature_re_encoded_with_its_unused_low_bits_set_is_refused(oidc_settings, issuer):
    token = issuer.token()
    head, body, signature = token.split(".")
    assert len(signature) % 4 in (2, 3)  # RS256-2048: 256 bytes, 342 characters, 4 unused bits
    respelt = with_low_bits_set(signature)
    assert respelt != signature
    assert base64.urlsafe_b64decode(respelt + "==") == base64.urlsafe_b64decode(signature + "==")  # same bytes
    assert refused_code(f"{head}.{body}.{respelt}") == "malformed_token"


def test_a_header_or_payload_re_encoded_with_unused_bits_set_is_refused(oidc_settings, issuer):
    payload = segment_with_unused_bits(json.dumps(issuer.claims()).encode())
    token = sign_text(issuer, payload)
    assert verify_token(token).sub == "alice"
    head, body, signature = token.split(".")
    assert refused_code(f"{head}.{with_low_bits_set(body)}.{signature}") == "malformed_token"
    header = segment_with_unused_bits(json.dumps({"alg": "RS256", "kid": issuer.key.kid}).encode())
    spelt = b64(header)
    with pytest.raises(TokenError) as exc:
        read_unverified(f"{with_low_bits_set(spelt)}.{body}.{signature}", 16_000)
    assert exc.value.code == "malformed_token"
    assert read_unverified(f"{spelt}.{body}.{signature}", 16_000).header["kid"] == issuer.key.kid


def test_a_segment_whose_length_is_one_more_than_a_multiple_of_four_is_malformed(oidc_settings, issuer):
    head, body, signature = issuer.token().split(".")
    assert refused_code(f"{head}.{body}.{signature[: len(signature) - len(signature) % 4]}A") == "malformed_token"


# -- JSON: NaN and Infinity are not JSON ---------------------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["claim", "nested", "list"])
def test_a_signed_payload_holding_nan_or_infinity_anywhere_is_malformed(oidc_settings, issuer, constant, where):
    member = {"claim": f'"x": {constant}', "nested": f'"x": {{"y": {constant}}}', "list": f'"x": [1, {constant}]'}
    base = json.dumps(issuer.claims()).encode()
    token = sign_text(issuer, base[:-1] + b", " + member[where].encode() + b"}")
    assert refused_code(token) == "malformed_token"


def test_a_header_holding_nan_is_malformed(oidc_settings, issuer):
    header = b64(b'{"alg": "RS256", "kid": "%s", "x": NaN}' % issuer.key.kid.encode())
    _, body, signature = issuer.token().split(".")
    assert refused_code(f"{header}.{body}.{signature}") == "malformed_token"


def test_json_with_whitespace_around_the_object_is_still_read(oidc_settings, issuer):
    token = sign_text(issuer, b"  " + json.dumps(issuer.claims()).encode() + b"\n ")
    assert verify_token(token).sub == "alice"
