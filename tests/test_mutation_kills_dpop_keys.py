"""The proof key's encodings: unpadded base64url output, and RFC 7638 thumbprints of members outside ASCII.

Written against surviving mutants of drf_oidc_jwks/dpop_keys.py (docs/security.md, "Mutation testing").
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from drf_oidc_jwks.dpop_keys import b64url_decode, b64url_encode, jwk_thumbprint


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [(b"\x00\x00\x17", "AAAX"), (b"\x00\x01", "AAE"), (b"\x00", "AA"), (b"\xfb\xff", "-_8"), (b"", "")],
)
def test_base64url_output_drops_only_the_padding(raw: bytes, encoded: str) -> None:
    assert b64url_encode(raw) == encoded
    assert b64url_decode(encoded) == raw


def test_a_thumbprint_hashes_members_outside_ascii_as_literal_utf8() -> None:
    # RFC 7638 3.3: the JSON of the required members, no whitespace, characters as themselves (no \\u escapes).
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "cl\u00e9", "d": "ignored"}
    literal = '{"crv":"Ed25519","kty":"OKP","x":"cl\u00e9"}'.encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(literal).digest()).rstrip(b"=").decode()
    assert jwk_thumbprint(jwk) == expected
