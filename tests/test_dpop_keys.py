"""The proof's own key: verifiers built once per key, the bounded per-process cache, canonical base64url."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from drf_oidc_jwks.dpop import SUPPORTED_ALGORITHMS, access_token_hash, check_proof, proof_key_cache_info
from drf_oidc_jwks.dpop_keys import KEY_CACHE_SIZE, b64url_decode, b64url_encode
from drf_oidc_jwks.exceptions import InvalidDPoPProof
from drf_oidc_jwks.testing_dpop import DPoPKey

URL = "https://api.example.com/api/me"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
NOW = 1_700_000_000.0

pytestmark = pytest.mark.django_db(databases=[])


def check(proof: str, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {"method": "GET", "url": URL, "access_token": TOKEN, "now": NOW, "leeway": 5}
    kwargs.update(overrides)
    return check_proof(proof, **kwargs)


def refused(proof: str, **overrides: Any) -> InvalidDPoPProof:
    with pytest.raises(InvalidDPoPProof) as info:
        check(proof, **overrides)
    assert (info.value.code, info.value.status) == ("invalid_dpop_proof", 401)
    return info.value


def signed(key: DPoPKey, header: dict[str, Any], jti: str = "j-1", alg: str | None = None) -> str:
    """A compact JWS by ``key`` over exactly ``header`` and a good payload for URL and TOKEN."""
    payload = {"jti": jti, "htm": "GET", "htu": URL, "iat": int(NOW), "ath": access_token_hash(TOKEN)}
    segments = [b64url_encode(json.dumps(part).encode()) for part in (header, payload)]
    signature = jwt.get_algorithm_by_name(alg or key.alg).sign(".".join(segments).encode(), key.private_key)
    return ".".join([*segments, b64url_encode(signature)])


def header_of(key: DPoPKey, **members: Any) -> dict[str, Any]:
    return {"typ": "dpop+jwt", "alg": key.alg, "jwk": key.public_jwk(), **members}


# ---------------------------------------------------------------------------
# Verifiers (cryptography directly, one per key)

ALGORITHMS = sorted(SUPPORTED_ALGORITHMS - {"ES384", "ES512"}) + ["ES384", "ES512"]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_supported_algorithm_accepts_a_good_proof_twice_and_refuses_a_bit_flip(alg):
    key = DPoPKey(alg)
    first, second = signed(key, header_of(key), "a"), signed(key, header_of(key), "b")
    assert check(first, algorithms=[alg]).jkt == check(second, algorithms=[alg]).jkt == key.jkt
    head, body, sig = second.split(".")
    raw = bytearray(b64url_decode(sig))
    raw[len(raw) // 2] ^= 1
    assert "signature" in refused(f"{head}.{body}.{b64url_encode(bytes(raw))}", algorithms=[alg]).reason


def test_an_ed448_proof_verifies_under_eddsa():
    from cryptography.hazmat.primitives.asymmetric import ed448

    key = DPoPKey("EdDSA", ed448.Ed448PrivateKey.generate())
    assert key.public_jwk()["crv"] == "Ed448"
    assert check(signed(key, header_of(key))).jkt == key.jkt


@pytest.mark.parametrize("length", [1, 63, 65, 96])
def test_an_es256_signature_of_the_wrong_length_is_refused_not_padded(length):
    key = DPoPKey("ES256")
    head, body, _ = signed(key, header_of(key)).split(".")
    signature = b64url_encode(bytes([1]) * length)
    assert "signature" in refused(f"{head}.{body}.{signature}").reason


def test_a_der_encoded_es256_signature_is_refused():
    # JWS carries r || s; a DER signature (what cryptography itself makes) is no JWS signature.
    key = DPoPKey("ES256")
    head, body, _ = signed(key, header_of(key)).split(".")
    from cryptography.hazmat.primitives import hashes

    der = key.private_key.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    assert "signature" in refused(f"{head}.{body}.{b64url_encode(der)}").reason


# ---------------------------------------------------------------------------
# The per-process cache of checked headers and keys


def test_the_key_cache_is_bounded_however_many_headers_arrive():
    key = DPoPKey("ES256")
    # Distinct headers (a kid each) for one key: each is its own cache entry, and the cache stays bounded.
    for n in range(KEY_CACHE_SIZE + 20):
        check(signed(key, header_of(key, kid=f"k{n}")))
    info = proof_key_cache_info()
    assert info.maxsize == KEY_CACHE_SIZE
    assert info.currsize == KEY_CACHE_SIZE


def test_a_cached_key_is_used_again_for_the_next_proof_of_the_same_client():
    key = DPoPKey("ES256")
    check(signed(key, header_of(key), "first"))
    hits = proof_key_cache_info().hits
    check(signed(key, header_of(key), "second"))
    assert proof_key_cache_info().hits == hits + 1


def test_a_cached_key_verifies_nothing_it_did_not_sign():
    # The cached entry is the header's key: another key's signature under that header stays refused.
    key, thief = DPoPKey("ES256"), DPoPKey("ES256")
    check(signed(key, header_of(key)))
    assert "signature" in refused(signed(thief, header_of(key), "stolen-header")).reason


@pytest.mark.parametrize(
    ("member", "swap"),
    [
        ("x", "other"),  # a point that is not the cached key's (and not on the curve with this y)
        ("y", "other"),
        ("crv", "P-384"),
        ("kty", "OKP"),
        ("x", "trailing-bits"),  # the same bytes spelled another way
    ],
)
def test_a_jwk_differing_by_one_member_from_a_cached_one_is_not_taken_for_it(member, swap):
    key, other = DPoPKey("ES256"), DPoPKey("ES256")
    check(signed(key, header_of(key)))  # the cached one
    jwk = key.public_jwk()
    if swap == "other":
        jwk[member] = other.public_jwk()[member]
    elif swap == "trailing-bits":
        # 32 bytes in 43 characters leave 2 unused bits: setting one spells the same bytes another way.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        text = jwk[member]
        jwk[member] = text[:-1] + alphabet[alphabet.index(text[-1]) + 1]
        assert base64.urlsafe_b64decode(jwk[member] + "=") == b64url_decode(text)
    else:
        jwk[member] = swap
    # Signed by the cached key itself: only the jwk member differs, and that alone refuses the proof.
    error = refused(signed(key, {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}, "changed"))
    assert "signature" in error.reason or "jwk" in error.reason or "key" in error.reason


def test_a_member_outside_the_thumbprint_does_not_change_the_key_or_its_thumbprint():
    key = DPoPKey("ES256")
    plain = check(signed(key, header_of(key), "plain"))
    with_kid = check(signed(key, {"typ": "dpop+jwt", "alg": "ES256", "jwk": {**key.public_jwk(), "kid": "k"}}, "kid"))
    assert plain.jkt == with_kid.jkt == key.jkt


@pytest.mark.parametrize("member", ["d", "p", "k"])
def test_a_private_member_is_refused_even_when_the_public_part_is_cached(member):
    key = DPoPKey("ES256")
    check(signed(key, header_of(key)))
    if member == "d":
        private = json.loads(jwt.get_algorithm_by_name("ES256").to_jwk(key.private_key))
        jwk = {**key.public_jwk(), "d": private["d"]}
    else:
        jwk = {**key.public_jwk(), member: "AAAA"}
    for _ in range(2):  # a refused header is never cached, so the second time is refused the same way
        error = refused(signed(key, {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}))
        assert error.description == "The DPoP proof's key is not public."


def test_a_header_cached_for_one_algorithm_list_is_refused_under_another():
    key = DPoPKey("ES256")
    proof = signed(key, header_of(key))
    check(proof, algorithms=["ES256"])
    assert "DPOP_ALGORITHMS" in refused(proof, algorithms=["EdDSA"]).reason


# ---------------------------------------------------------------------------
# Canonical base64url, and proofs that are not ASCII


def reference_decode(segment: str) -> bytes | None:
    """What b64url_decode must answer: the bytes, or None when the text is not canonical unpadded base64url."""
    if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in segment):
        return None
    if len(segment) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return raw if base64.urlsafe_b64encode(raw).decode().rstrip("=") == segment else None


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \né\x00", max_size=12))
def test_b64url_decode_accepts_exactly_canonical_unpadded_base64url(segment):
    try:
        got: bytes | None = b64url_decode(segment)
    except ValueError:
        got = None
    assert got == reference_decode(segment)


@given(st.binary(max_size=70))
def test_b64url_encode_and_decode_round_trip(raw):
    text = b64url_encode(raw)
    assert "=" not in text
    assert b64url_decode(text) == raw == binascii.a2b_base64(base64.b64encode(raw))


@pytest.mark.parametrize("where", [0, 1, 2])
def test_a_proof_with_non_ascii_text_is_refused_not_an_error(where):
    key = DPoPKey("ES256")
    segments = signed(key, header_of(key)).split(".")
    segments[where] = "é" + segments[where]
    assert "ASCII" in refused(".".join(segments)).reason


@pytest.mark.parametrize("jkt", ["é" * 43, "\udc80" * 43, "ü"])
def test_a_token_whose_cnf_jkt_is_not_ascii_is_refused_not_an_error(jkt):
    from drf_oidc_jwks.dpop import check_binding

    key = DPoPKey("ES256")
    result = check(signed(key, header_of(key)))
    with pytest.raises(InvalidDPoPProof) as info:
        check_binding({"cnf": {"jkt": jkt}}, result)
    assert "cnf.jkt" in info.value.reason
    check_binding({"cnf": {"jkt": key.jkt}}, result)
