"""Key parsing and key sets: which published JWKs are usable, and which algorithms each may verify."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from drf_oidc_jwks.exceptions import KeySourceError, TokenError
from drf_oidc_jwks.keys import KeySet, key_allows, parse_jwks, parse_key
from drf_oidc_jwks.testing import Response, generate_key


def b64(data: bytes) -> str:
    return jwt.utils.base64url_encode(data).decode()


def es256_token_signed_with(private_key: ec.EllipticCurvePrivateKey, kid: str, payload: dict[str, object]) -> str:
    """An ``alg: ES256`` token signed (SHA-256, as ES256 does) with a key of any curve.

    PyJWT refuses to sign ES256 with a P-384 key, but verifies such a signature with a P-384 public key:
    only the library's own curve check stands between the two.
    """
    header = b64(json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(payload).encode())
    signing_input = f"{header}.{body}".encode()
    r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    size = (private_key.curve.key_size + 7) // 8
    return f"{header}.{body}.{b64(r.to_bytes(size, 'big') + s.to_bytes(size, 'big'))}"


# -- the curve of an EC key without alg (issue 20: a P-384 key verifying ES256 tokens) --


@pytest.mark.parametrize(
    ("crv", "allowed"),
    [("P-256", ["ES256"]), ("P-384", ["ES384"]), ("P-521", ["ES512"])],
)
def test_an_ec_key_without_alg_verifies_only_the_algorithm_of_its_curve(crv, allowed):
    alg = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[crv]
    key = generate_key(alg, kid="ec")
    key.publish_alg = False
    parsed = parse_key(key.public_jwk(), 2048)
    assert parsed.alg is None and parsed.crv == crv
    assert [a for a in ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA") if parsed.allows(a)] == allowed


def test_key_allows_compares_the_curve_even_when_the_key_declares_the_alg():
    assert key_allows("EC", "P-384", None, "ES256") is False
    assert key_allows("EC", "P-384", "ES256", "ES256") is False  # a key claiming ES256 on the wrong curve
    assert key_allows("EC", "P-256", None, "ES256") is True


def test_a_p384_key_published_without_alg_does_not_verify_a_token_labelled_es256(oidc_settings, issuer, server, call):
    p384 = issuer.add_key("ES384", kid="p384")
    p384.publish_alg = False  # Better Auth publishes no alg
    oidc_settings(ALGORITHMS=["RS256", "ES256", "ES384"])
    token = es256_token_signed_with(p384.private_key, "p384", issuer.claims())
    # The signature itself is good: PyJWT's ES256 verifies it with the P-384 public key.
    assert jwt.get_algorithm_by_name("ES256").verify(
        token.rsplit(".", 1)[0].encode(),
        p384.private_key.public_key(),
        jwt.utils.base64url_decode(token.rsplit(".", 1)[1]),
    )
    response = call(token)
    assert (response.status_code, response.json()["code"]) == (401, "unsupported_algorithm")
    assert call(issuer.token(key=p384)).status_code == 200  # the same key with its own algorithm works


# -- use: enc (issue 20: tokens signed with an encryption key) --


def test_a_jwk_for_encryption_is_not_a_signing_key():
    key = generate_key("RS256", kid="enc")
    key.extra = {"use": "enc"}
    with pytest.raises(ValueError, match="key is not for signatures"):
        parse_key(key.public_jwk(), 2048)
    key.extra = {"use": "sig"}
    assert parse_key(key.public_jwk(), 2048).kid == "enc"


def test_a_jwks_with_only_an_encryption_key_holds_no_usable_key():
    key = generate_key("RS256", kid="enc")
    key.extra = {"use": "enc"}
    with pytest.raises(KeySourceError, match="no usable signing key"):
        parse_jwks({"keys": [key.public_jwk()]}, 2048)


def test_a_token_signed_with_a_key_published_for_encryption_is_refused(oidc_settings, issuer, server, call):
    enc = issuer.add_key("RS256", kid="enc-key", fresh=True)
    enc.extra = {"use": "enc"}
    issuer.keys.append(issuer.keys.pop(0))  # the signing key stays current for the control token
    assert call(issuer.token()).status_code == 200
    response = call(issuer.token(key=enc))
    assert (response.status_code, response.json()["code"]) == (401, "unknown_key")


def test_key_ops_without_verify_is_not_a_signing_key():
    key = generate_key("RS256", kid="ops")
    key.extra = {"key_ops": ["encrypt"]}
    with pytest.raises(ValueError, match="key_ops do not allow verify"):
        parse_key(key.public_jwk(), 2048)


# -- the rest of what a published key must be --


@pytest.mark.parametrize(
    ("jwk", "reason"),
    [
        ({"kty": "oct", "k": "c2VjcmV0"}, "unsupported kty"),
        ({"kty": "RSA", "kid": 5, "n": "AQAB", "e": "AQAB"}, "kid is not a string"),
        ({"kty": "RSA", "alg": ["RS256"], "n": "AQAB", "e": "AQAB"}, "unsupported alg"),
        ({"kty": "EC", "crv": "P-192", "x": "AA", "y": "AA"}, "unsupported curve"),
        ({"kty": "OKP", "crv": "X25519", "x": "AA"}, "unsupported curve"),
        ({"kty": "RSA", "n": 5, "e": "AQAB"}, "n is not a string"),
        ("not an object", "key is not an object"),
    ],
)
def test_unusable_keys_are_refused_with_a_reason(jwk, reason):
    with pytest.raises(ValueError, match=reason):
        parse_key(jwk, 2048)


def test_an_rsa_key_below_the_minimum_size_is_refused():
    weak = generate_key("RS256", kid="weak", rsa_bits=1024, fresh=True)
    with pytest.raises(ValueError, match="RSA key of 1024 bits is below the minimum of 2048"):
        parse_key(weak.public_jwk(), 2048)
    assert parse_key(weak.public_jwk(), 1024).size == 1024


def test_a_key_set_picks_the_key_by_kid_and_alg_or_the_only_key_without_kid():
    rsa, ec256 = generate_key("RS256", kid="a"), generate_key("ES256", kid="b")
    keys = tuple(parse_key(k.public_jwk(), 2048) for k in (rsa, ec256))
    keyset = KeySet(version="v", keys=keys, fetched_at=0, fresh_until=1, stale_until=2)
    assert keyset.key_for("b", "ES256").kid == "b"
    for kid, alg, code in (("b", "RS256", "unsupported_algorithm"), ("zz", "RS256", "unknown_key")):
        with pytest.raises(TokenError) as exc:
            keyset.key_for(kid, alg)
        assert exc.value.code == code
    with pytest.raises(TokenError) as exc:
        keyset.key_for(None, "RS256")  # no kid, several keys
    assert exc.value.code == "unknown_key"
    single = KeySet(version="v", keys=keys[:1], fetched_at=0, fresh_until=1, stale_until=2)
    assert single.key_for(None, "RS256").kid == "a"


def test_a_key_set_holds_only_its_own_key_objects_and_finds_every_key_of_a_shared_kid():
    rsa, ec256 = generate_key("RS256", kid="same"), generate_key("ES256", kid="same")
    keys = tuple(parse_key(k.public_jwk(), 2048) for k in (rsa, ec256))
    keyset = KeySet(version="v", keys=keys, fetched_at=0, fresh_until=1, stale_until=2)
    assert [k.kty for k in keyset.by_kid("same")] == ["RSA", "EC"]
    assert keyset.holds_kid("same") and not keyset.holds_kid("other") and keyset.by_kid("other") == []
    assert keyset.holds(keys[0]) and keyset.holds(keys[1])
    # An equal key parsed again (a new fetch) is not the object a memoised token was verified with.
    assert not keyset.holds(parse_key(rsa.public_jwk(), 2048))
    assert keyset.key_for("same", "ES256") is keys[1]


def test_a_served_jwks_keeps_its_good_keys_and_skips_the_bad_ones(oidc_settings, issuer, server, call):
    enc = generate_key("RS256", kid="enc")
    enc.extra = {"use": "enc"}
    body = {"keys": [{"kty": "oct", "k": "c2VjcmV0"}, enc.public_jwk(), issuer.key.public_jwk()]}
    server.respond("/jwks.json", Response(200, json.dumps(body).encode()))
    assert call(issuer.token()).status_code == 200
