"""Tests that kill mutants of keys.py which the rest of the suite let through (scripts/mutation.sh).

Each names the rule it pins: which algorithms a published key may verify, what a published key must be,
how many keys of a JWKS are read, and the version naming a key set.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed448

from drf_oidc_jwks.keys import key_allows, keyset_version, parse_jwks, parse_key
from drf_oidc_jwks.testing import Response, SigningKey, generate_key

ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


def b64(data: bytes) -> str:
    return jwt.utils.base64url_encode(data).decode()


def verifies(jwk: dict[str, Any]) -> list[str]:
    parsed = parse_key(jwk, 2048)
    return [alg for alg in ALGS if parsed.allows(alg)]


def test_an_rsa_key_without_alg_verifies_every_rs_and_ps_algorithm_and_nothing_else():
    key = generate_key("RS256", kid="rsa")
    key.publish_alg = False
    assert verifies(key.public_jwk()) == ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]


def test_an_ps256_token_verifies_with_an_rsa_key_published_without_alg(oidc_settings, issuer, call):
    key = issuer.add_key("PS256", kid="ps")
    key.publish_alg = False
    oidc_settings(ALGORITHMS=["RS256", "PS256"])
    assert call(issuer.token(key=key)).status_code == 200


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES256"])
def test_a_key_that_declares_its_alg_verifies_that_algorithm_only(alg):
    assert verifies(generate_key(alg, kid="k").public_jwk()) == [alg]


def test_a_token_of_another_rsa_algorithm_than_the_key_declares_is_refused(oidc_settings, issuer, call):
    oidc_settings(ALGORITHMS=["RS256", "RS512"])
    same_key = SigningKey(issuer.key.private_key, "RS512", issuer.key.kid)  # the key is published with RS256
    response = call(issuer.token(key=same_key))
    assert (response.status_code, response.json()["code"]) == (401, "unsupported_algorithm")
    assert call(issuer.token()).status_code == 200


def test_an_ed448_key_without_alg_verifies_eddsa_tokens(oidc_settings, issuer, call):
    key = SigningKey(ed448.Ed448PrivateKey.generate(), "EdDSA", "ed448", publish_alg=False)
    assert verifies(key.public_jwk()) == ["EdDSA"] and parse_key(key.public_jwk(), 2048).crv == "Ed448"
    issuer.keys.append(key)
    oidc_settings(ALGORITHMS=["RS256", "EdDSA"])
    assert call(issuer.token(key=key)).status_code == 200


def test_eddsa_needs_an_okp_key_on_an_edwards_curve():
    assert key_allows("OKP", "Ed25519", None, "EdDSA") and key_allows("OKP", "Ed448", None, "EdDSA")
    assert not key_allows("OKP", "X25519", None, "EdDSA")
    assert not key_allows("EC", "Ed25519", None, "EdDSA")
    assert not key_allows("RSA", None, None, "EdDSA")


@pytest.mark.parametrize("alg", ["HS256", "none", "ECDH-ES", "", "EdDSA2"])
def test_an_algorithm_of_no_known_family_is_verified_by_no_key(alg):
    for kty, crv in (("RSA", None), ("EC", "P-256"), ("OKP", "Ed25519")):
        assert key_allows(kty, crv, None, alg) is False


@pytest.mark.parametrize(
    ("alg", "member"), [("ES256", "e"), ("RS256", "crv"), ("RS256", "x"), ("RS256", "y"), ("EdDSA", "y")]
)
def test_a_public_member_that_is_not_a_string_makes_the_key_unusable_even_where_its_type_ignores_it(alg, member):
    key = generate_key(alg, kid="k")
    jwk = key.public_jwk()
    parse_key(jwk, 2048)  # the key itself is good
    with pytest.raises(ValueError, match=f"{member} is not a string"):
        parse_key({**jwk, member: 5}, 2048)


def test_a_key_reports_its_size_in_bits_for_rsa_and_ec_and_none_for_okp():
    sizes = {alg: parse_key(generate_key(alg, kid="k").public_jwk(), 2048).size for alg in ("RS256", "ES256", "ES384")}
    assert sizes == {"RS256": 2048, "ES256": 256, "ES384": 384}
    assert parse_key(generate_key("ES512", kid="k").public_jwk(), 2048).size == 521
    assert parse_key(generate_key("EdDSA", kid="k").public_jwk(), 2048).size is None


def test_a_kid_less_token_whose_algorithm_the_only_key_cannot_verify_says_so(oidc_settings, issuer, server, call):
    only = generate_key("RS256", kid=None)
    issuer.keys[:] = [only]
    oidc_settings(ALGORITHMS=["RS256", "ES256"])
    assert call(issuer.token(key=only)).status_code == 200
    response = call(issuer.token(key=generate_key("ES256", kid=None)))
    assert (response.status_code, response.json()["code"]) == (401, "unsupported_algorithm")
    assert 'error_description="The token\'s algorithm does not match its key."' in response["WWW-Authenticate"]


def test_only_the_first_256_keys_of_a_jwks_are_read():
    junk = [{"kty": "oct", "k": "c2VjcmV0"}] * 255
    good = generate_key("RS256", kid="good").public_jwk()
    assert [k.kid for k in parse_jwks({"keys": [*junk, good]}, 2048)[1]] == ["good"]
    from drf_oidc_jwks.exceptions import KeySourceError

    with pytest.raises(KeySourceError, match="no usable signing key"):
        parse_jwks({"keys": [*junk, junk[0], good]}, 2048)


def test_a_served_jwks_with_its_only_good_key_past_the_256th_is_unusable(oidc_settings, issuer, server, call):
    junk = [{"kty": "oct", "k": "c2VjcmV0"}] * 256
    server.respond("/jwks.json", Response(200, json.dumps({"keys": [*junk, issuer.key.public_jwk()]}).encode()))
    response = call(issuer.token())
    assert (response.status_code, response.json()["code"]) == (503, "idp_unavailable")


def test_the_key_set_version_names_the_keys_not_their_member_order_in_16_hex_digits():
    a, b = generate_key("RS256", kid="a").public_jwk(), generate_key("ES256", kid="b").public_jwk()
    version = keyset_version([a, b])
    assert re.fullmatch(r"[0-9a-f]{16}", version)
    assert keyset_version([dict(reversed(list(a.items()))), b]) == version
    assert keyset_version([a]) != version and keyset_version([b]) != keyset_version([a])


def test_a_published_private_jwk_gives_a_public_key_and_keeps_no_private_member():
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    private = generate_key("RS256", kid="p")
    jwk = {**json.loads(RSAAlgorithm.to_jwk(private.private_key)), "kid": "p", "alg": "RS256"}
    jwk.pop("key_ops", None)  # PyJWT marks a private JWK for signing
    assert "d" in jwk
    parsed = parse_key(jwk, 2048)
    assert isinstance(parsed.key, rsa.RSAPublicKey) and not hasattr(parsed.key, "private_numbers")
    assert set(parsed.jwk) <= {"kty", "kid", "use", "alg", "key_ops", "n", "e"}
