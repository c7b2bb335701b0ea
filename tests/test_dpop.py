"""DPoP proofs (RFC 9449): each check of ``check_proof`` refuses on its own; thumbprints, binding, htu normal form."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from drf_oidc_jwks.dpop import (
    DEFAULT_ALGORITHMS,
    MAX_PROOF_BYTES,
    ProofResult,
    access_token_hash,
    b64url_encode,
    bound_jkt,
    check_algorithms,
    check_binding,
    check_proof,
    jwk_thumbprint,
)
from drf_oidc_jwks.dpop_urls import normalize_htu
from drf_oidc_jwks.exceptions import REGISTRY, InvalidDPoPProof, TokenError
from drf_oidc_jwks.testing import OMIT
from drf_oidc_jwks.testing_dpop import DPoPKey

URL = "https://api.example.com/api/me"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
NOW = 1_700_000_000.0

pytestmark = pytest.mark.django_db(databases=[])


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey()


def check(proof: Any, **overrides: Any) -> ProofResult:
    kwargs: dict[str, Any] = {
        "method": "GET",
        "url": URL,
        "access_token": TOKEN,
        "algorithms": DEFAULT_ALGORITHMS,
        "max_age": 300,
        "leeway": 5,
        "now": NOW,
    }
    kwargs.update(overrides)
    return check_proof(proof, **kwargs)


def proof(key: DPoPKey, **kwargs: Any) -> str:
    kwargs.setdefault("access_token", TOKEN)
    kwargs.setdefault("iat", int(NOW))
    return key.proof(kwargs.pop("method", "GET"), kwargs.pop("url", URL), **kwargs)


def refused(proof_value: Any, **overrides: Any) -> InvalidDPoPProof:
    with pytest.raises(InvalidDPoPProof) as info:
        check(proof_value, **overrides)
    error = info.value
    assert (error.code, error.status) == ("invalid_dpop_proof", 401)
    # Neither the proof nor the token ever reaches a message or a log line.
    for text in (error.reason, error.description, str(error)):
        assert TOKEN not in text
        if isinstance(proof_value, str) and len(proof_value.strip()) >= 20:
            assert proof_value.strip()[:20] not in text
    return error


def raw_jws(key: DPoPKey, header: dict[str, Any], payload: dict[str, Any], alg: str | None = None) -> str:
    """A compact JWS signed by ``key`` over exactly these members (no defaults added)."""
    segments = [b64url_encode(json.dumps(part).encode()) for part in (header, payload)]
    signing_input = ".".join(segments).encode()
    signature = jwt.get_algorithm_by_name(alg or key.alg).sign(signing_input, key.private_key)
    return ".".join([*segments, b64url_encode(signature)])


def claims(**overrides: Any) -> dict[str, Any]:
    payload = {"jti": "j-1", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": access_token_hash(TOKEN)}
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not OMIT}


def header_of(key: DPoPKey, **overrides: Any) -> dict[str, Any]:
    header = {"typ": "dpop+jwt", "alg": key.alg, "jwk": key.public_jwk()}
    header.update(overrides)
    return {k: v for k, v in header.items() if v is not OMIT}


# ---------------------------------------------------------------------------
# A good proof


def test_a_fresh_proof_for_this_request_is_accepted_with_its_thumbprint_jti_and_iat(key):
    result = check(proof(key, jti="abc"))
    assert result.jkt == key.jkt == jwk_thumbprint(key.public_jwk())
    assert (result.jti, result.iat, result.htm, result.htu, result.alg, result.nonce) == (
        "abc",
        NOW,
        "GET",
        URL,
        "ES256",
        None,
    )
    assert set(result.jwk) == {"kty", "crv", "x", "y"}


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256", "PS256", "ES384", "ES512", "PS512"])
def test_every_supported_algorithm_verifies_when_allowed(alg):
    key = DPoPKey(alg)
    assert check(proof(key), algorithms=[alg]).alg == alg


def test_the_default_algorithms_are_those_design_names():
    assert DEFAULT_ALGORITHMS == ("ES256", "EdDSA", "RS256", "PS256")


# ---------------------------------------------------------------------------
# Exactly one proof, bounded, well formed


def test_two_dpop_headers_are_refused(key):
    error = refused([proof(key), proof(key)])
    assert "more than one" in error.reason


def test_two_proofs_joined_into_one_header_by_the_server_are_refused(key):
    assert "more than one" in refused(f"{proof(key)}, {proof(key)}").reason


@pytest.mark.parametrize("value", ["", "   ", []])
def test_a_missing_or_empty_proof_is_refused(value):
    assert refused(value).description == "A DPoP proof header is required."


def test_an_oversized_proof_is_refused_before_parsing(key):
    big = proof(key, padding="x" * MAX_PROOF_BYTES)
    assert "limit" in refused(big).reason


@pytest.mark.parametrize("shape", ["a.b", "a.b.c.d.e", "..", "onlyone"])
def test_a_proof_that_is_not_a_three_part_compact_jws_is_refused(shape):
    assert "segments" in refused(shape).reason


def test_a_padded_base64url_segment_is_refused(key):
    head, body, sig = proof(key).split(".")
    padded = head + "=" * (-len(head) % 4 or 4)
    assert "base64url" in refused(f"{padded}.{body}.{sig}").reason


def test_a_non_canonical_base64url_signature_is_refused_although_it_decodes_to_the_same_bytes(key):
    head, body, sig = proof(key).split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    assert last & 0b11 == 0  # 64-byte ES256 signature: 86 characters, the last one holds 4 unused bits
    twin = sig[:-1] + alphabet[last | 1]
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(sig + "==")
    assert "base64url" in refused(f"{head}.{body}.{twin}").reason


def test_a_payload_with_nan_is_refused(key):
    head, _, sig = proof(key).split(".")
    body = b64url_encode(b'{"jti":"j","htm":"GET","htu":"%s","iat":NaN}' % URL.encode())
    assert "JSON" in refused(f"{head}.{body}.{sig}").reason


def test_a_header_with_a_duplicate_member_is_refused(key):
    _, body, sig = proof(key).split(".")
    head = b64url_encode(b'{"typ":"dpop+jwt","alg":"ES256","alg":"EdDSA"}')
    assert "JSON" in refused(f"{head}.{body}.{sig}").reason


def test_a_lone_surrogate_escape_is_refused(key):
    assert "JSON" in refused(raw_jws(key, header_of(key), claims(jti=b"\\ud800".decode("unicode_escape")))).reason


def test_a_payload_that_is_not_an_object_is_refused(key):
    head, _, sig = proof(key).split(".")
    assert "object" in refused(f"{head}.{b64url_encode(b'[1]')}.{sig}").reason


# ---------------------------------------------------------------------------
# Header: typ, alg, jwk


@pytest.mark.parametrize("typ", [OMIT, "JWT", "at+jwt", 7])
def test_a_proof_not_typed_dpop_jwt_is_refused(key, typ):
    assert "typ" in refused(raw_jws(key, header_of(key, typ=typ), claims())).reason


def test_the_media_type_spelling_of_typ_is_accepted(key):
    assert check(raw_jws(key, header_of(key, typ="application/dpop+jwt"), claims())).jti == "j-1"


def test_an_algorithm_outside_the_allowed_list_is_refused(key):
    assert "DPOP_ALGORITHMS" in refused(proof(DPoPKey("RS256")), algorithms=["ES256"]).reason


def test_an_hmac_proof_is_refused_even_when_listed(key):
    segments = [b64url_encode(json.dumps(p).encode()) for p in (header_of(key, alg="HS256"), claims())]
    mac = jwt.get_algorithm_by_name("HS256").sign(".".join(segments).encode(), b"k" * 32)
    assert "DPOP_ALGORITHMS" in refused(".".join([*segments, b64url_encode(mac)]), algorithms=["HS256"]).reason


def test_an_unsigned_alg_none_proof_is_refused(key):
    segments = [b64url_encode(json.dumps(p).encode()) for p in (header_of(key, alg="none"), claims())]
    assert "alg" in refused(".".join(segments) + ".AA", algorithms=["none", "ES256"]).reason


@pytest.mark.parametrize("bad", [["ES256", "HS256"], ["none"], ["XX1"], [], "ES256"])
def test_settings_listing_hmac_none_or_unknown_algorithms_are_refused_with_the_key_named(bad):
    with pytest.raises(ValueError, match="DPOP_ALGORITHMS"):
        check_algorithms(bad)
    assert check_algorithms(["EdDSA", "ES256"]) == ("EdDSA", "ES256")


def test_a_proof_without_a_jwk_is_refused(key):
    assert "jwk" in refused(raw_jws(key, header_of(key, jwk=OMIT), claims())).reason


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_a_jwk_with_a_private_member_is_refused(key, member):
    jwk = {**key.public_jwk(), member: "AAAA"}
    error = refused(raw_jws(key, header_of(key, jwk=jwk), claims()))
    assert error.description == "The DPoP proof's key is not public."


def test_a_jwk_carrying_the_real_private_key_is_refused(key):
    private = json.loads(jwt.get_algorithm_by_name("ES256").to_jwk(key.private_key))
    assert "d" in private
    assert "private" in refused(raw_jws(key, header_of(key, jwk=private), claims())).reason


def test_a_key_type_that_does_not_match_the_algorithm_is_refused(key):
    rsa_key = DPoPKey("RS256")
    assert "needs a EC key" in refused(raw_jws(key, header_of(key, jwk=rsa_key.public_jwk()), claims())).reason


def test_an_ec_key_on_another_curve_than_the_algorithm_is_refused():
    p384 = DPoPKey("ES256", ec.generate_private_key(ec.SECP384R1()))
    jwk = json.loads(jwt.get_algorithm_by_name("ES384").to_jwk(p384.private_key.public_key()))
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    assert "curve" in refused(raw_jws(p384, header, claims(), alg="ES384")).reason


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits")
def test_an_rsa_key_under_2048_bits_is_refused():
    small = DPoPKey("RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024))
    assert "1024 bits" in refused(proof(small)).reason


def test_a_jwk_whose_own_alg_differs_from_the_proof_alg_is_refused(key):
    jwk = {**key.public_jwk(), "alg": "ES384"}
    assert "jwk alg" in refused(raw_jws(key, header_of(key, jwk=jwk), claims())).reason


@pytest.mark.parametrize("x", ["not base64!", 12, "AAAA"])
def test_a_jwk_that_is_not_a_valid_public_key_is_refused(key, x):
    jwk = {**key.public_jwk(), "x": x}
    refused(raw_jws(key, header_of(key, jwk=jwk), claims()))


def test_a_proof_signed_by_another_key_than_its_jwk_is_refused(key):
    other = DPoPKey()
    assert "signature" in refused(raw_jws(other, header_of(key), claims())).reason


def test_a_proof_whose_payload_was_altered_after_signing_is_refused(key):
    head, _, sig = proof(key).split(".")
    body = b64url_encode(json.dumps(claims(jti="other")).encode())
    assert "signature" in refused(f"{head}.{body}.{sig}").reason


def test_a_proof_with_a_critical_header_is_refused(key):
    assert "crit" in refused(raw_jws(key, header_of(key, crit=["exp"]), claims())).reason


# ---------------------------------------------------------------------------
# Claims: jti, htm, htu, iat, ath, nonce


@pytest.mark.parametrize("jti", [OMIT, "", 5, "x" * 257])
def test_a_proof_without_a_usable_jti_is_refused(key, jti):
    assert "jti" in refused(raw_jws(key, header_of(key), claims(jti=jti))).reason


@pytest.mark.parametrize("htm", ["POST", "get", OMIT])
def test_a_proof_for_another_method_is_refused(key, htm):
    assert refused(raw_jws(key, header_of(key), claims(htm=htm))).description.endswith("another HTTP method.")


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/api/other",
        "https://api.example.com/api/me/",
        "https://evil.example.com/api/me",
        "http://api.example.com/api/me",
        "https://api.example.com:8443/api/me",
        "https://api.example.com/API/me",
        "api.example.com/api/me",
        OMIT,
    ],
)
def test_a_proof_for_another_url_is_refused(key, htu):
    refused(raw_jws(key, header_of(key), claims(htu=htu)))


@pytest.mark.parametrize(
    ("htu", "request_url"),
    [
        ("https://api.example.com/api/me", "https://api.example.com/api/me?page=2"),
        ("https://api.example.com/api/me?x=1#frag", "https://api.example.com/api/me"),
        ("HTTPS://API.Example.COM/api/me", "https://api.example.com/api/me"),
        ("https://api.example.com:443/api/me", "https://api.example.com/api/me"),
        ("http://api.example.com:80/api/me", "http://api.example.com/api/me"),
        ("https://api.example.com/api/%6De", "https://api.example.com/api/me"),
        ("https://api.example.com/api/caf%c3%a9", "https://api.example.com/api/caf%C3%A9"),
        ("https://api.example.com/api/café", "https://api.example.com/api/caf%C3%A9"),
        ("https://api.example.com/api/a;b=c", "https://api.example.com/api/a%3Bb%3Dc"),
        ("https://api.example.com/api/./x/../me", "https://api.example.com/api/me"),
        ("https://api.example.com", "https://api.example.com/"),
        ("http://[::1]:8000/api/me", "http://[::1]:8000/api/me"),
    ],
)
def test_a_proof_whose_htu_normalises_to_the_request_url_is_accepted(key, htu, request_url):
    assert check(raw_jws(key, header_of(key), claims(htu=htu)), url=request_url).jti == "j-1"


@pytest.mark.parametrize(
    "url",
    ["ftp://h/x", "https://user:pw@h/x", "https://h:99999/x", "https:///x", "https://h/a b", "", "x" * 5000],
)
def test_urls_that_are_not_plain_http_urls_do_not_normalise(url):
    with pytest.raises(ValueError):
        normalize_htu(url)


def test_a_proof_older_than_the_max_age_is_refused(key):
    assert refused(proof(key, iat=int(NOW) - 301)).description == "The DPoP proof is too old."
    assert check(proof(key, iat=int(NOW) - 300)).iat == NOW - 300


def test_a_proof_from_the_future_beyond_the_leeway_is_refused(key):
    assert "future" in refused(proof(key, iat=int(NOW) + 6)).reason
    assert check(proof(key, iat=int(NOW) + 5)).iat == NOW + 5


@pytest.mark.parametrize("iat", [OMIT, "1700000000", True, None, 10**400])
def test_a_proof_without_a_numeric_iat_is_refused(key, iat):
    refused(raw_jws(key, header_of(key), claims(iat=iat)))


def test_a_proof_with_an_infinite_iat_is_refused(key):
    # 1e400 is valid JSON that Python reads as inf: signed as raw bytes, since json.dumps would write Infinity.
    body = json.dumps(claims()).replace(str(int(NOW)), "1e400").encode()
    segments = [b64url_encode(json.dumps(header_of(key)).encode()), b64url_encode(body)]
    signature = jwt.get_algorithm_by_name("ES256").sign(".".join(segments).encode(), key.private_key)
    assert "finite" in refused(".".join([*segments, b64url_encode(signature)])).reason


def test_a_proof_without_ath_is_refused_when_a_token_is_presented(key):
    assert refused(raw_jws(key, header_of(key), claims(ath=OMIT))).description.endswith("another token.")


def test_a_proof_for_another_access_token_is_refused(key):
    assert refused(proof(key, access_token=TOKEN + "x")).description.endswith("another token.")


def test_ath_is_not_required_without_an_access_token(key):
    assert check(raw_jws(key, header_of(key), claims(ath=OMIT)), access_token=None).jti == "j-1"


def test_the_nonce_checker_sees_the_proof_nonce_after_every_other_check(key):
    seen: list[str | None] = []
    assert check(proof(key, nonce="n-1"), nonce_checker=seen.append).nonce == "n-1"
    check(proof(key), nonce_checker=seen.append)
    refused(proof(key, htu="https://elsewhere.test/"), nonce_checker=seen.append)
    assert seen == ["n-1", None]


def test_a_non_string_nonce_is_refused(key):
    assert "nonce" in refused(raw_jws(key, header_of(key), claims(nonce=5))).reason


# ---------------------------------------------------------------------------
# Thumbprints and binding


def test_the_rfc_7638_rsa_example_has_its_published_thumbprint():
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4"
        "n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0"
        "zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-c"
        "sFCur-kEgU8awapJzKnqDKgw"
    )
    jwk = {"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_rfc_8037_ed25519_example_has_its_published_thumbprint():
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_an_ec_thumbprint_hashes_only_crv_kty_x_y_in_order(key):
    jwk = key.public_jwk()
    canonical = json.dumps({m: jwk[m] for m in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    import hashlib

    assert jwk_thumbprint({**jwk, "kid": "k", "use": "sig"}) == b64url_encode(
        hashlib.sha256(canonical.encode()).digest()
    )


@pytest.mark.parametrize("jwk", [{"kty": "oct", "k": "AAAA"}, {"kty": "EC", "crv": "P-256", "x": "AA"}, {}])
def test_a_thumbprint_of_a_symmetric_or_incomplete_key_is_refused(jwk):
    with pytest.raises(ValueError):
        jwk_thumbprint(jwk)


def test_a_token_bound_to_the_proof_key_passes_the_binding_check(key):
    check_binding({"cnf": {"jkt": key.jkt}}, check(proof(key)))
    assert bound_jkt({"cnf": {"jkt": key.jkt}}) == key.jkt


def test_a_token_bound_to_another_key_is_refused_as_invalid_dpop_proof(key):
    error = pytest.raises(InvalidDPoPProof, check_binding, {"cnf": {"jkt": DPoPKey().jkt}}, check(proof(key))).value
    assert error.description == "The DPoP proof's key is not the key the token is bound to."


@pytest.mark.parametrize("payload", [{}, {"cnf": {"x5t#S256": "abc"}}, {"cnf": "jkt"}, {"cnf": {"jkt": 5}}])
def test_a_token_without_a_jkt_confirmation_is_not_dpop_bound(key, payload):
    assert bound_jkt(payload) is None
    with pytest.raises(InvalidDPoPProof):
        check_binding(payload, check(proof(key)))


# ---------------------------------------------------------------------------
# Codes and the test kit


@pytest.mark.parametrize("code", ["invalid_dpop_proof", "use_dpop_nonce", "dpop_required"])
def test_the_dpop_codes_are_registered_401_token_errors(code):
    spec = REGISTRY[code]
    assert spec.status == 401 and issubclass(spec.cls, TokenError)


def test_the_test_kit_headers_carry_a_dpop_token_and_a_proof_the_checks_accept(key):
    extra = key.headers(TOKEN, "POST", URL)
    assert extra["HTTP_AUTHORIZATION"] == f"DPoP {TOKEN}"
    result = check(extra["HTTP_DPOP"], method="POST", now=time.time())
    assert result.jkt == key.jkt and key.cnf() == {"jkt": key.jkt}


def test_the_test_kit_builds_distinct_keys_and_jtis():
    a, b = DPoPKey("RS256"), DPoPKey("RS256")
    assert a.jkt != b.jkt
    first, second = (check(proof(a), algorithms=["RS256"]).jti for _ in range(2))
    assert first != second


@pytest.mark.fuzz
@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=200)),
        st.lists(
            st.dictionaries(st.sampled_from(["typ", "alg", "jwk", "crit"]), st.integers() | st.text()), max_size=1
        ).map(lambda parts: ".".join(b64url_encode(json.dumps(p).encode()) for p in parts * 2) + ".AAAA"),
    )
)
def test_arbitrary_header_values_are_refused_with_invalid_dpop_proof_and_nothing_else(value):
    with pytest.raises(InvalidDPoPProof):
        check(value)


def test_header_values_that_are_not_text_are_refused():
    assert "text" in refused([b"eyJ.eyJ.sig"]).reason
