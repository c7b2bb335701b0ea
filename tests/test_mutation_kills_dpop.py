"""DPoP proof checks pinned by mutation testing (docs/security.md, "Mutation testing").

Each test kills mutants of drf_oidc_jwks/dpop.py that tests/test_dpop.py let survive. Proofs are real signed JWSs;
where the point is a byte layout PyJWT will not write (whitespace around the JSON, a ``b64`` header), the JWS is
put together by hand and signed with the same key.
"""

from __future__ import annotations

import hashlib
import json
import time
from types import MappingProxyType
from typing import Any

import jwt
import pytest

from drf_oidc_jwks.dpop import (
    access_token_hash,
    b64url_encode,
    bound_jkt,
    check_confirmation,
    check_proof,
)
from drf_oidc_jwks.exceptions import InvalidDPoPProof, SenderConstrained
from drf_oidc_jwks.testing_dpop import DPoPKey
from tests.test_dpop import NOW, TOKEN, URL, check, proof, refused

pytestmark = pytest.mark.django_db(databases=[])


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey()


def by_hand(key: DPoPKey, header_text: str | None = None, payload_text: str | None = None, **header: Any) -> str:
    """A proof from the JSON texts given (default: a good header and payload), signed with ``key``."""
    if header_text is None:
        header_text = json.dumps({"typ": "dpop+jwt", "alg": key.alg, "jwk": key.public_jwk(), **header})
    if payload_text is None:
        payload_text = json.dumps(
            {"jti": f"j-{time.time_ns()}", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": access_token_hash(TOKEN)}
        )
    signing_input = f"{b64url_encode(header_text.encode())}.{b64url_encode(payload_text.encode())}"
    signature = jwt.get_algorithm_by_name(key.alg).sign(signing_input.encode(), key.private_key)
    return f"{signing_input}.{b64url_encode(signature)}"


def payload_text(**extra: Any) -> str:
    value = {"jti": f"j-{time.time_ns()}", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": access_token_hash(TOKEN)}
    return json.dumps({**value, **extra})


# ---------------------------------------------------------------------------
# The JSON of a segment


def test_json_whitespace_around_the_payload_is_allowed(key):
    assert check(by_hand(key, payload_text=" \t\n\r" + payload_text())).htm == "GET"
    assert check(by_hand(key, payload_text=payload_text() + "\r\n \t")).htm == "GET"


@pytest.mark.parametrize("text", ["\x0c{}", "{}\x0c", "{}x", "\u00a0{}"], ids=["ff-before", "ff-after", "junk", "nbsp"])
def test_other_whitespace_or_junk_around_the_payload_is_refused(key, text):
    body = text.replace("{}", payload_text())
    assert refused(by_hand(key, payload_text=body)).reason == "proof payload is not base64url JSON"


def test_a_payload_that_is_not_an_object_names_the_payload(key):
    assert refused(by_hand(key, payload_text="[1]")).reason == "proof payload is not a JSON object"


# ---------------------------------------------------------------------------
# The header


def test_b64_true_is_the_default_and_b64_false_is_refused(key):
    assert check(by_hand(key, b64=True)).alg == key.alg
    assert refused(by_hand(key, b64=False)).reason == "proof uses a JWS extension (crit or b64)"


def test_one_proof_in_a_list_is_accepted(key):
    assert check([proof(key)]).htm == "GET"


def test_a_proof_of_exactly_max_bytes_is_accepted(key):
    value = proof(key)
    assert check(value, max_bytes=len(value)).htm == "GET"
    refused(value, max_bytes=len(value) - 1)


def test_a_jti_of_exactly_256_characters_is_accepted(key):
    assert check(proof(key, jti="j" * 256)).jti == "j" * 256
    refused(proof(key, jti="j" * 257))


def test_the_default_max_age_is_300_seconds(key):
    at = {"method": "GET", "url": URL, "access_token": TOKEN, "now": NOW}
    check_proof(proof(key, iat=NOW - 300), **at)
    with pytest.raises(InvalidDPoPProof):
        check_proof(proof(key, iat=NOW - 300.5), **at)


# ---------------------------------------------------------------------------
# ath, cnf


def test_ath_of_a_token_holding_escaped_bytes_hashes_those_bytes():
    expected = b64url_encode(hashlib.sha256(b"tok\xff").digest())
    assert access_token_hash("tok\udcff") == expected


def test_bound_jkt_reads_a_cnf_held_in_any_mapping():
    assert bound_jkt({"cnf": MappingProxyType({"jkt": "the-jkt"})}) == "the-jkt"
    assert bound_jkt({"cnf": "the-jkt"}) is None


def test_check_confirmation_lets_only_a_jkt_binding_through_and_only_with_dpop():
    jkt = DPoPKey().jkt
    check_confirmation({"sub": "a"}, dpop=False)
    check_confirmation({"sub": "a"}, dpop=True)
    check_confirmation({"cnf": {"jkt": jkt}}, dpop=True)
    for payload, dpop in (({"cnf": {"jkt": jkt}}, False), ({"cnf": {"x5t#S256": "abc"}}, True), ({"cnf": {}}, True)):
        with pytest.raises(SenderConstrained):
            check_confirmation(payload, dpop=dpop)


def test_the_default_leeway_is_zero_and_the_default_clock_is_now(key):
    at = {"method": "GET", "url": URL, "access_token": TOKEN, "now": NOW}
    with pytest.raises(InvalidDPoPProof):
        check_proof(proof(key, iat=NOW + 0.5), **at)  # half a second ahead: no leeway by default
    assert check_proof(proof(key, iat=int(time.time())), method="GET", url=URL, access_token=TOKEN).htm == "GET"


# ---------------------------------------------------------------------------
# The header's own JSON (_header_of, memoised as _checked_header)


@pytest.mark.parametrize("text", ["{x", "{}junk", "\u00a0{}"], ids=["broken", "junk", "nbsp"])
def test_a_header_that_is_not_base64url_json_is_refused_naming_the_header(key, text):
    assert refused(by_hand(key, header_text=text)).reason == "proof header is not base64url JSON"


def test_a_header_that_is_not_an_object_is_refused_naming_the_header(key):
    assert refused(by_hand(key, header_text='["dpop+jwt"]')).reason == "proof header is not a JSON object"
