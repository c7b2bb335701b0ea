"""ecdsa_der.der_signature: the JWS form of an ECDSA signature as DER, the same bytes encode_dss_signature gives."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from drf_oidc_jwks.ecdsa_der import der_signature

SIZES = {"P-256": (32, ec.SECP256R1(), hashes.SHA256()), "P-384": (48, ec.SECP384R1(), hashes.SHA384())}
SIZES["P-521"] = (66, ec.SECP521R1(), hashes.SHA512())


def generic(signature: bytes, size: int) -> bytes:
    return encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))


def shaped(size: int, first_r: int, first_s: int) -> bytes:
    r, s = bytearray(os.urandom(size)), bytearray(os.urandom(size))
    r[0], s[0] = first_r, first_s
    return bytes(r + s)


@pytest.mark.parametrize("size", [32, 48, 66, 28])
@pytest.mark.parametrize("first_r", [0x00, 0x01, 0x7F, 0x80, 0xFF])
@pytest.mark.parametrize("first_s", [0x00, 0x01, 0x7F, 0x80, 0xFF])
def test_every_top_byte_gives_the_bytes_encode_dss_signature_gives(size, first_r, first_s):
    for _ in range(20):
        signature = shaped(size, first_r, first_s)
        assert der_signature(signature, size) == generic(signature, size)


@pytest.mark.parametrize("size", [32, 48, 66])
def test_random_signatures_give_the_bytes_encode_dss_signature_gives(size):
    for _ in range(2000):
        signature = os.urandom(2 * size)
        assert der_signature(signature, size) == generic(signature, size)


@pytest.mark.parametrize("size", [32, 66])
def test_halves_of_zeros_give_the_generic_encoding(size):
    for signature in (bytes(2 * size), bytes(size) + b"\x80" * size, b"\x80" * size + bytes(size)):
        assert der_signature(signature, size) == generic(signature, size)


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_a_signature_of_another_length_is_a_value_error(length):
    with pytest.raises(ValueError, match="wrong length"):
        der_signature(b"\x01" * length, 32)


@pytest.mark.parametrize("curve", sorted(SIZES))
def test_real_signatures_verify_after_the_conversion_and_a_changed_one_does_not(curve):
    size, named, digest = SIZES[curve]
    key = ec.generate_private_key(named)
    message = b"header.payload"
    signed = zero_top_bytes = 0
    # At least 200 signatures, and on until one has a half with a zero top byte (the generic path): 1 in 128
    # on P-256 and P-384, so 5,000 tries miss it about once in 10**17 runs.
    while signed < 5000 and (signed < 200 or not zero_top_bytes):
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(digest)))
        jws = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        zero_top_bytes += jws[0] == 0 or jws[size] == 0
        key.public_key().verify(der_signature(jws, size), message, ec.ECDSA(digest))
        signed += 1
    assert zero_top_bytes
    with pytest.raises(InvalidSignature):
        key.public_key().verify(der_signature(jws[:-1] + bytes([jws[-1] ^ 1]), size), message, ec.ECDSA(digest))
