"""Tests that kill mutants of tokens_jws.py which the rest of the suite let through (scripts/mutation.sh).

Each names what it pins of the token reading: strict JSON, the size limit, the reasons of the
segment-by-segment reading, the kept header parses, the unverified ids of a refusal's log line.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from drf_oidc_jwks import tokens_jws
from drf_oidc_jwks.exceptions import MalformedToken
from drf_oidc_jwks.testing import generate_key
from drf_oidc_jwks.tokens import read_unverified, unverified_ids, verify_token
from tests.test_tokens import refused_code, sign_text


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def reason(token: str | bytes, max_bytes: int = 16_000) -> str:
    with pytest.raises(MalformedToken) as exc:
        read_unverified(token, max_bytes)
    return exc.value.reason


def fresh_header(**extra: Any) -> str:
    return b64(json.dumps({"alg": "RS256", "kid": uuid.uuid4().hex, **extra}).encode())


BODY = b64(json.dumps({"sub": "alice", "iss": "https://issuer.test"}).encode())
SIG = b64(b"\x01" * 256)


@pytest.mark.parametrize("prefix", [b"x", b"]", b"1", b'"'])
def test_a_signed_payload_with_a_stray_character_before_the_object_is_malformed(oidc_settings, issuer, prefix):
    good = json.dumps(issuer.claims()).encode()
    assert verify_token(sign_text(issuer, good)).sub == "alice"
    assert refused_code(sign_text(issuer, prefix + good)) == "malformed_token"


@pytest.mark.parametrize("text", [b"x", b" ", b"}"])
def test_a_one_character_segment_that_no_json_scan_reads_is_a_clean_refusal(text):
    assert reason(f"{fresh_header()}.{b64(text)}.{SIG}") == "payload is not base64url JSON"
    assert reason(f"{b64(text)}.{BODY}.{SIG}") == "header is not base64url JSON"


def test_a_token_of_exactly_the_size_limit_is_read_and_one_byte_more_is_refused():
    token = f"{fresh_header()}.{BODY}.{SIG}"
    assert read_unverified(token, len(token)).payload["sub"] == "alice"
    assert reason(token, len(token) - 1) == f"token is {len(token)} bytes, limit {len(token) - 1}"


def test_the_parsed_token_keeps_the_text_it_was_read_from():
    token = f"{fresh_header()}.{BODY}.{SIG}"
    assert read_unverified(token, 16_000).token == token
    assert read_unverified(token.encode(), 16_000).token == token


def header_of_length(chars: int) -> str:
    """A fresh header segment of exactly ``chars`` characters (``chars`` % 4 != 1)."""
    size = chars * 3 // 4  # the bytes of JSON that many base64url characters spell
    base = {"alg": "RS256", "kid": uuid.uuid4().hex, "x": ""}
    base["x"] = "a" * (size - len(json.dumps(base)))
    head = b64(json.dumps(base).encode())
    assert len(head) == chars
    return head


def read_header(head: str) -> dict[str, Any]:
    return read_unverified(f"{head}.{BODY}.{SIG}", 16_000).header


@pytest.mark.parametrize(("chars", "kept"), [(511, True), (512, True), (514, False)])
def test_a_header_parse_is_kept_up_to_512_characters_of_header_text(chars, kept):
    head = header_of_length(chars)
    first = read_header(head)
    again = read_header(head)
    assert again == first and (again is first) is kept


def test_at_most_256_header_parses_are_kept_then_they_start_over():
    first = fresh_header()
    held = read_header(first)
    assert read_header(first) is held
    # Find the moment the kept parses start over: ``first`` is dropped (and kept again by this read).
    for _ in range(300):
        last = fresh_header()
        last_held = read_header(last)
        if read_header(first) is not held:
            break
    else:
        pytest.fail("the kept header parses never started over")
    # Now exactly two are kept (``last`` and ``first``): 254 more fill the 256.
    for _ in range(254):
        read_header(fresh_header())
    assert read_header(last) is last_held
    read_header(fresh_header())  # the 257th starts over
    assert read_header(last) is not last_held


def test_an_empty_signature_does_not_hide_the_reason_a_payload_is_refused():
    assert reason(f"{fresh_header()}.+{BODY[1:]}.") == "payload is not base64url JSON"
    assert reason(f"{fresh_header()}.{BODY}.+") == "signature is not base64url"


@pytest.mark.parametrize("head", ["\ud800", "e30\udfff", "\ud83d\ude00"])
def test_a_header_segment_holding_a_lone_surrogate_is_malformed_not_an_error(oidc_settings, head):
    assert reason(f"{head}.{BODY}.{SIG}") == "header is not base64url JSON"
    with pytest.raises(MalformedToken):
        verify_token(f"{head}.{BODY}.{SIG}")


def test_a_header_read_by_the_segment_reading_is_kept_under_its_own_segment():
    head = fresh_header()
    # Refused for its signature, after the header was read (and kept) segment by segment.
    assert reason(f"{head}.{BODY}.+") == "signature is not base64url"
    # A token whose header segment is that token's payload segment reads its own header.
    assert read_unverified(f"{BODY}.{BODY}.{SIG}", 16_000).header == json.loads(base64.urlsafe_b64decode(BODY + "=="))
    assert read_unverified(f"{head}.{BODY}.{SIG}", 16_000).header["alg"] == "RS256"


def test_the_segment_reading_decodes_the_url_safe_alphabet():
    head = b64(json.dumps({"alg": "RS256", "kid": "~~~??>"}).encode())
    assert "-" in head and "_" in head
    assert reason(f"{head}.{BODY}.+") == "signature is not base64url"


def test_the_unverified_ids_are_the_kid_and_the_iss_or_none_when_unreadable():
    head = b64(json.dumps({"alg": "RS256", "kid": "k-1"}).encode())
    assert unverified_ids(f"{head}.{BODY}.{SIG}") == ("k-1", "https://issuer.test")
    assert unverified_ids(f"{head}.{BODY}.{SIG}".encode()) == ("k-1", "https://issuer.test")
    assert unverified_ids(f"{b64(b'{}')}.{b64(b'{}')}.{SIG}") == (None, None)
    assert unverified_ids("not a token") == (None, None)


def deepest_payload_read(extra: str) -> int:
    """The deepest nesting of lists in a payload ``{"a": [[...]]<extra>}`` that read_unverified still reads."""

    def reads(depth: int) -> bool:
        body = b64(('{"a":' + "[" * depth + "]" * depth + extra + "}").encode())
        try:
            read_unverified(f"{fresh_header()}.{body}.{SIG}", 10**7)
        except MalformedToken:
            return False
        return True

    low, high = 1, 100_000
    assert reads(low) and not reads(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if reads(middle) else (low, middle)
    return low


def test_a_plain_unicode_escape_does_not_send_the_payload_through_the_utf8_re_encoding_check():
    # Only a surrogate escape (\ud800-\udfff) needs the re-encoding check (json.dumps). That check nests
    # deeper than the parse (on CPython 3.11, a few frames), so running it for any \u escape would refuse
    # payloads that nest just below the parser's limit but carry an escaped "A".
    assert deepest_payload_read(',"b":"\\u0041"') == deepest_payload_read("")


# -- the verifiers, built at test time -------------------------------------------------------------
# The table of verifiers is built when tokens_jws is imported, so a test through verify_token only ever
# meets the verifiers of the unmutated factories. These tests call the factories themselves and check
# the verifier each one builds against signatures made by PyJWT (and by cryptography, for what PyJWT
# will not make): the good signature verifies, anything else raises.

HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
FACTORIES = {"RS": tokens_jws._pkcs1, "PS": tokens_jws._pss, "ES": tokens_jws._ecdsa}
MESSAGE = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9"


def built_verifier(alg: str) -> Any:
    """The verifier for ``alg`` as its factory builds it now (EdDSA's is the function itself)."""
    if alg == "EdDSA":
        return tokens_jws._eddsa
    return FACTORIES[alg[:2]](HASHES[alg[2:]])


def jws_signature(alg: str, private_key: Any, message: bytes = MESSAGE) -> bytes:
    return jwt.get_algorithm_by_name(alg).sign(message, private_key)


ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
HASHED = [alg for alg in ALGORITHMS if alg != "EdDSA"]


def flipped(signature: bytes) -> bytes:
    changed = bytearray(signature)
    changed[len(changed) // 2] ^= 1
    return bytes(changed)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_verifier_built_by_its_factory_accepts_its_algorithms_signature_and_refuses_a_changed_one(alg):
    verify = built_verifier(alg)
    key = generate_key(alg)
    public = key.private_key.public_key()
    signature = jws_signature(alg, key.private_key)
    assert verify(public, MESSAGE, signature) is None
    with pytest.raises(InvalidSignature):
        verify(public, MESSAGE, flipped(signature))
    with pytest.raises(InvalidSignature):
        verify(public, MESSAGE + b"x", signature)
    # The table verify_token uses holds a verifier that answers the same.
    assert tokens_jws._VERIFIERS[alg](public, MESSAGE, signature) is None


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_verifier_built_by_its_factory_refuses_a_signature_made_by_another_key(alg):
    other = generate_key(alg, fresh=True)
    signature = jws_signature(alg, other.private_key)
    with pytest.raises(InvalidSignature):
        built_verifier(alg)(generate_key(alg).private_key.public_key(), MESSAGE, signature)


def signature_with_hash(alg: str, private_key: Any, hash_alg: hashes.HashAlgorithm) -> bytes:
    """A signature of ``alg``'s family and padding over MESSAGE, hashed with ``hash_alg`` instead of alg's own."""
    if alg.startswith("RS"):
        return private_key.sign(MESSAGE, padding.PKCS1v15(), hash_alg)
    if alg.startswith("PS"):
        return private_key.sign(MESSAGE, padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size), hash_alg)
    r, s = decode_dss_signature(private_key.sign(MESSAGE, ec.ECDSA(hash_alg)))
    size = (private_key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.mark.parametrize("alg", HASHED)
def test_a_verifier_built_by_its_factory_refuses_a_signature_hashed_with_another_hash(alg):
    key = generate_key(alg)
    public = key.private_key.public_key()
    own = HASHES[alg[2:]]
    assert built_verifier(alg)(public, MESSAGE, signature_with_hash(alg, key.private_key, own)) is None
    for bits, other in HASHES.items():
        if bits != alg[2:]:
            with pytest.raises(InvalidSignature):
                built_verifier(alg)(public, MESSAGE, signature_with_hash(alg, key.private_key, other))


@pytest.mark.parametrize("alg", ["PS256", "PS384", "PS512"])
def test_a_pss_verifier_built_by_its_factory_wants_the_salt_as_long_as_the_hash_and_mgf1_of_that_hash(alg):
    key = generate_key(alg)
    public = key.private_key.public_key()
    own = HASHES[alg[2:]]
    for pad in (
        padding.PSS(padding.MGF1(own), padding.PSS.MAX_LENGTH),
        padding.PSS(padding.MGF1(own), own.digest_size - 1),
        padding.PSS(padding.MGF1(hashes.SHA1()), own.digest_size),
    ):
        with pytest.raises(InvalidSignature):
            built_verifier(alg)(public, MESSAGE, key.private_key.sign(MESSAGE, pad, own))


@pytest.mark.parametrize(("alg", "size"), [("ES256", 32), ("ES384", 48), ("ES512", 66)])
def test_an_ecdsa_verifier_built_by_its_factory_takes_r_then_s_each_of_the_curves_size(alg, size):
    verify = built_verifier(alg)
    key = generate_key(alg)
    public = key.private_key.public_key()
    signature = jws_signature(alg, key.private_key)
    assert len(signature) == 2 * size
    verify(public, MESSAGE, signature)
    with pytest.raises(InvalidSignature):
        verify(public, MESSAGE, signature[size:] + signature[:size])  # s then r
    for wrong in (signature[:-1], signature + b"\x00", b"\x00" + signature, b"\x00" * size):
        with pytest.raises(ValueError, match="wrong length"):
            verify(public, MESSAGE, wrong)
