"""Tests that kill mutants of tokens_jws.py which the rest of the suite let through (scripts/mutation.sh).

Each names what it pins of the token reading: strict JSON, the size limit, the reasons of the
segment-by-segment reading, the kept header parses, the unverified ids of a refusal's log line.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from drf_oidc_jwks.exceptions import MalformedToken
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
