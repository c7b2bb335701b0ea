"""The one-pass token reading and the direct signature check (tokens_jws.py), and the claim tables (issue 18).

The fast reading must refuse exactly what the segment-by-segment reading refuses, with the same reason;
the signature check calls cryptography on the parsed key and must keep PyJWT's answers for every
algorithm; the attribute tables must give what the paths say, per mapping.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from drf_oidc_jwks.claims import PRESETS, Claims
from drf_oidc_jwks.exceptions import MalformedToken, TokenError
from drf_oidc_jwks.testing import TestIssuer
from drf_oidc_jwks.tokens import read_unverified, verify_token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def reason(token: str | bytes) -> str:
    with pytest.raises(MalformedToken) as exc:
        read_unverified(token, 16_000)
    return exc.value.reason


HEAD = b64(json.dumps({"alg": "RS256", "kid": "k"}).encode())
BODY = b64(json.dumps({"sub": "alice", "iss": "https://issuer.test"}).encode())
SIG = b64(b"\x01" * 256)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (f"{HEAD}.{BODY}.{SIG}.x.y", "JWE (5 segments)"),
        (f"{HEAD}.{BODY}", "2 segments, 3 expected"),
        (f"{HEAD}..{SIG}", "3 segments, 3 expected"),
        (f"{HEAD}.+{BODY[1:]}.{SIG}", "payload is not base64url JSON"),  # the standard alphabet's +
        (f"/{HEAD[1:]}.{BODY}.{SIG}", "header is not base64url JSON"),
        (f"{HEAD}.{BODY}=.{SIG}", "payload is not base64url JSON"),  # padding is not base64url
        (f"{HEAD}.{BODY}.{SIG}=", "signature is not base64url"),
        (f"{HEAD}.{BODY}.{SIG}AAA", "signature is not base64url"),  # 4n+1 characters decode to nothing
        (f"{HEAD}.{BODY}\u00e9.{SIG}", "payload is not base64url JSON"),  # not ASCII
        (f"{HEAD}.{b64(b'[1, 2]')}.{SIG}", "payload is not a JSON object"),
        (f"{b64(b'{')}.{BODY}.{SIG}", "header is not base64url JSON"),
    ],
)
def test_the_one_pass_reading_refuses_what_the_segment_reading_refuses_with_the_same_reason(
    token: str, expected: str
) -> None:
    assert reason(token) == expected


def test_a_non_canonical_spelling_of_a_kept_header_is_still_refused() -> None:
    token = f"{HEAD}.{BODY}.{SIG}"
    first = read_unverified(token, 16_000)
    assert read_unverified(token, 16_000).header is first.header  # the header's parse is kept
    assert len(HEAD) % 4 in (2, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    low_bits = alphabet[alphabet.index(HEAD[-1]) | {2: 0b1111, 3: 0b11}[len(HEAD) % 4]]
    respelt = HEAD[:-1] + low_bits
    assert base64.urlsafe_b64decode(respelt + "==") == base64.urlsafe_b64decode(HEAD + "==")
    assert reason(f"{respelt}.{BODY}.{SIG}") == "header is not base64url JSON"


def test_the_signing_input_and_signature_are_the_bytes_of_the_token() -> None:
    parsed = read_unverified(f"{HEAD}.{BODY}.{SIG}".encode(), 16_000)
    assert parsed.signing_input == f"{HEAD}.{BODY}".encode()
    assert parsed.signature == b"\x01" * 256 and parsed.payload["sub"] == "alice"


@pytest.mark.parametrize(
    "alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
)
def test_every_algorithm_verifies_with_the_key_object_and_refuses_a_changed_signature(
    oidc_settings: Any, issuer: TestIssuer, alg: str
) -> None:
    key = issuer.add_key(alg)
    oidc_settings(ALGORITHMS=[alg])
    token = issuer.token(key=key)
    assert verify_token(token).sub == "alice"
    head, body, signature = token.split(".")
    flipped = bytearray(base64.urlsafe_b64decode(signature + "=="))
    flipped[len(flipped) // 2] ^= 1
    with pytest.raises(TokenError) as exc:
        verify_token(f"{head}.{body}.{b64(bytes(flipped))}")
    assert exc.value.code == "invalid_signature"


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_an_ecdsa_signature_of_the_wrong_length_is_a_bad_signature_not_a_500(
    oidc_settings: Any, issuer: TestIssuer, length: int
) -> None:
    key = issuer.add_key("ES256")
    oidc_settings(ALGORITHMS=["ES256"])
    head, body, _ = issuer.token(key=key).split(".")
    with pytest.raises(TokenError) as exc:
        verify_token(f"{head}.{body}.{b64(bytes([7]) * length)}")
    assert exc.value.code == "invalid_signature"


def test_pyjwt_and_the_direct_check_agree_on_a_pss_signature_with_another_salt_length(
    oidc_settings: Any, issuer: TestIssuer
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = issuer.add_key("PS256")
    oidc_settings(ALGORITHMS=["PS256"])
    head, body, _ = issuer.token(key=key).split(".")
    # RFC 7518 3.5: the salt is as long as the hash; PyJWT refuses a maximal salt, and so must we.
    pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    signature = key.private_key.sign(f"{head}.{body}".encode(), pad, hashes.SHA256())
    public = key.private_key.public_key()
    assert jwt.get_algorithm_by_name("PS256").verify(f"{head}.{body}".encode(), public, signature) is False
    with pytest.raises(TokenError) as exc:
        verify_token(f"{head}.{body}.{b64(signature)}")
    assert exc.value.code == "invalid_signature"


# -- claim tables ----------------------------------------------------------------------------------


def test_reading_one_identity_attribute_fills_them_all_and_leaves_the_rest_for_their_first_access() -> None:
    c = Claims({"sub": "u", "email": "u@example.com", "role": "admin", "scope": "a b"}, PRESETS["better-auth"])
    assert c.sub == "u"
    # Read through the slot descriptors: they raise for an empty slot instead of computing it.
    assert (Claims.email.__get__(c), Claims.username.__get__(c), Claims.is_machine.__get__(c)) == (
        "u@example.com",
        None,
        False,
    )
    for name in ("roles", "scopes", "expires_at"):
        with pytest.raises(AttributeError):
            getattr(Claims, name).__get__(c)
    assert (c.roles, c.scopes) == ({"admin"}, {"a", "b"})
    assert Claims.roles.__get__(c) is c.roles


def test_each_paths_mapping_gets_its_own_table() -> None:
    payload = {"sub": "u", "realm_access": {"roles": ["r"]}, "groups": ["g"], "given_name": "Ann", "gn": "A."}
    keycloak = Claims(payload, PRESETS["keycloak"])
    custom = Claims(payload, {**PRESETS["generic"], "roles": "groups", "given_name": ["gn"], "subject": None})
    assert (keycloak.roles, keycloak.given_name, keycloak.sub) == ({"r"}, "Ann", "u")
    assert (custom.roles, custom.given_name, custom.sub) == ({"g"}, "A.", "u")


def test_a_first_name_path_of_several_names_takes_the_first_that_is_a_string() -> None:
    paths = {**PRESETS["generic"], "username": [["nick"], ["login"], ["preferred_username"]]}
    from drf_oidc_jwks.claims import normalise_path

    paths["username"] = normalise_path(paths["username"])
    c = Claims({"sub": "u", "nick": ["a", "b"], "login": "", "preferred_username": "pu"}, paths)
    assert c.username == "pu"
    assert Claims({"sub": "u", "nick": 7}, paths).username == "7"
