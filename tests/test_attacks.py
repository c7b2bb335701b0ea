"""The attack catalogue: one test per RFC 8725 (JWT BCP) / OWASP JWT cheat sheet item that applies to a resource server.

Each test is named after its catalogue item and cited in docs/security.md with the
defence it checks (a test at the end keeps the two in step). Some items are also
covered by the bad-input matrix of test_authentication.py; here each is stated once,
as an attacker would try it, against the real loopback JWKS server.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.testing import OMIT, JWKSServer, SigningKey, TestIssuer, generate_key

pytestmark = pytest.mark.django_db  # accepted tokens sync their user

AUD = "https://api.test"
ROOT = Path(__file__).resolve().parent.parent


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(header: dict[str, Any], payload: dict[str, Any] | bytes, key: Any, alg: str) -> str:
    """Build a compact JWS by hand (PyJWT's encode refuses or warns about some of what attackers send)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
    signature = jwt.get_algorithm_by_name(alg).sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


def assert_refused(response: Any, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response.data["detail"].code == code
    assert response.json()["code"] == code
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api"')
    assert 'error="invalid_token"' in challenge


def attacker_server(issuer: TestIssuer, kid: str = "attacker") -> tuple[TestIssuer, SigningKey]:
    """An issuer with the victim's ``iss`` but the attacker's own key, to be served on loopback."""
    key = generate_key("RS256", kid=kid, fresh=True)
    attacker = TestIssuer(issuer.issuer, audience=AUD)
    attacker.keys = [key]
    return attacker, key


# -- algorithm attacks -------------------------------------------------------


def test_alg_none_is_refused(oidc_settings, issuer, call, server):
    for alg in ("none", "None", "NONE", "nOnE"):
        assert_refused(call(unsigned({"alg": alg, "kid": issuer.key.kid}, issuer.claims())), "unsupported_algorithm")
    assert server.total() == 0  # refused on the header alone, before any key lookup


def test_signature_stripping_is_refused(oidc_settings, issuer, call):
    header, payload, _ = issuer.token(role="admin").split(".")
    assert_refused(call(f"{header}.{payload}."), "invalid_signature")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("secret_form", ["pem", "der", "jwk"])
def test_alg_confusion_hmac_with_the_rsa_public_key_as_secret_is_refused(oidc_settings, issuer, call, alg, secret_form):
    public = issuer.key.private_key.public_key()
    secret = {
        "pem": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "der": public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "jwk": json.dumps(issuer.key.public_jwk()).encode(),
    }[secret_form]
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": issuer.key.kid}).encode())
    payload = b64(json.dumps(issuer.claims(role="admin")).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), digest).digest()
    assert_refused(call(f"{header}.{payload}.{b64(signature)}"), "unsupported_algorithm")


def test_hmac_and_none_in_algorithms_are_refused_at_startup(settings, issuer):
    for alg in ("HS256", "none"):
        settings.DRF_OIDC_JWKS = issuer.settings(ALGORITHMS=["RS256", alg])
        with pytest.raises(ImproperlyConfigured, match="E007"):
            get_settings()


def test_algorithm_outside_the_allow_list_is_refused(oidc_settings, issuer, call):
    # The key itself is fine: RS512 is simply not what this API accepts.
    key = issuer.add_key("RS512")
    assert_refused(call(issuer.token(key=key)), "unsupported_algorithm")


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_key_type_confusion_ec_or_okp_key_offered_for_an_rs_alg_is_refused(settings, call, alg):
    victim = TestIssuer(audience=AUD, algorithm=alg)
    victim.key.publish_alg = False  # like Better Auth: no "alg" in the JWK, so kty/crv must decide
    with victim.serve():
        settings.DRF_OIDC_JWKS = victim.settings(ALGORITHMS=["RS256", alg])
        forged = sign(
            {"alg": "RS256", "kid": victim.key.kid}, victim.claims(), generate_key("RS256").private_key, "RS256"
        )
        assert_refused(call(forged), "unsupported_algorithm")
        assert call(victim.token()).status_code == 200  # the genuine alg still works


def test_ecdsa_zero_signature_is_refused(settings, call):
    # CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify.
    victim = TestIssuer(audience=AUD, algorithm="ES256")
    with victim.serve():
        settings.DRF_OIDC_JWKS = victim.settings()
        for signature in (b"\x00" * 64, b""):
            assert_refused(
                call(unsigned({"alg": "ES256", "kid": victim.key.kid}, victim.claims(), signature)), "invalid_signature"
            )


# -- header injection ---------------------------------------------------------


def test_jku_header_injection_makes_no_request(oidc_settings, issuer, call, server):
    attacker, key = attacker_server(issuer)
    with JWKSServer(attacker) as evil:
        assert_refused(call(attacker.token(key=key, headers={"jku": evil.url("/jwks.json")})), "unknown_key")
        assert sum(evil.hits.values()) == 0


def test_x5u_header_injection_makes_no_request(oidc_settings, issuer, call, server):
    attacker, key = attacker_server(issuer)
    with JWKSServer(attacker) as evil:
        assert_refused(call(attacker.token(key=key, headers={"x5u": evil.url("/cert.pem")})), "unknown_key")
        assert sum(evil.hits.values()) == 0


def test_jwk_header_injection_is_not_trusted(oidc_settings, issuer, call):
    # The attacker embeds its own public key under the victim's kid, with a URL for good measure.
    attacker, key = attacker_server(issuer, kid=issuer.key.kid)
    with JWKSServer(attacker) as evil:
        embedded = {**key.public_jwk(), "x5u": evil.url("/cert.pem")}
        assert_refused(call(attacker.token(key=key, headers={"jwk": embedded})), "invalid_signature")
        assert sum(evil.hits.values()) == 0


def _self_signed_certificate(key: SigningKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key.private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def test_x5c_header_injection_is_not_trusted(oidc_settings, issuer, call):
    # A real certificate chain for the attacker's key, once under its own kid and once under the victim's.
    for kid, code in (("attacker", "unknown_key"), (issuer.key.kid, "invalid_signature")):
        _, key = attacker_server(issuer, kid=kid)
        chain = [base64.b64encode(_self_signed_certificate(key)).decode()]
        assert_refused(call(issuer.token(key=key, headers={"x5c": chain})), code)


@pytest.mark.parametrize(
    ("kid", "code"),
    [
        ("../../dev/null", "unknown_key"),
        ("../../../../../../etc/passwd", "unknown_key"),
        ("' OR 1=1 --", "unknown_key"),
        ("x'; DROP TABLE auth_user; --", "unknown_key"),
        ("k" * 257, "malformed_token"),
        ("k" * 100_000, "malformed_token"),
        (12345, "malformed_token"),
        (["a"], "malformed_token"),
        ({"$ne": ""}, "malformed_token"),
        (True, "malformed_token"),
        ("", "malformed_token"),
        ("kid\x00with-nul", "unknown_key"),
        ("\x00", "unknown_key"),
        ("kid\r\nX-Injected: 1", "unknown_key"),
        ("http://127.0.0.1:9/keys", "unknown_key"),
    ],
    ids=[
        "path-traversal",
        "path-traversal-passwd",
        "sql-or",
        "sql-drop",
        "just-too-long",
        "very-long",
        "number",
        "list",
        "nosql-object",
        "bool",
        "empty",
        "nul-byte",
        "only-nul",
        "crlf",
        "url",
    ],
)
def test_kid_injection_is_refused(oidc_settings, issuer, call, server, kid, code):
    oidc_settings(MAX_TOKEN_BYTES=200_000)  # let the very long kid reach the kid check
    attacker = generate_key("RS256", kid=None, fresh=True)
    header = {"alg": "RS256", "kid": kid}
    assert_refused(call(sign(header, issuer.claims(role="admin"), attacker.private_key, "RS256")), code)
    # The classic: kid names a file of known content (/dev/null is empty) used as an HMAC secret.
    hs = {"alg": "HS256", "kid": kid}
    assert_refused(call(sign(hs, issuer.claims(role="admin"), b"", "HS256")), "unsupported_algorithm")
    assert server.total() <= 2  # the first fetch, and at most one unknown-kid refetch per cooldown
    assert call(issuer.token()).status_code == 200  # nothing was poisoned


def test_crit_header_is_refused(oidc_settings, issuer, call):
    # Signed with the genuine key: only the unknown critical extension is wrong.
    for extra in (
        {"crit": ["exp"], "exp": 1},
        {"crit": ["b64"], "b64": True},
        {"crit": ["urn:x:unknown"]},
        {"crit": []},
    ):
        assert_refused(call(issuer.token(headers=extra)), "malformed_token")


def test_jwe_token_with_five_segments_is_refused(oidc_settings, issuer, call, server):
    # A JWE compact serialisation: protected header, encrypted key, IV, ciphertext, tag.
    jwe_header = b64(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": issuer.key.kid}).encode())
    token = ".".join([jwe_header, b64(b"k" * 256), b64(b"iv" * 6), b64(b"ciphertext"), b64(b"tag" * 5)])
    assert_refused(call(token), "malformed_token")
    # alg "dir": nothing but a JWE, even without the encrypted key.
    dir_header = b64(json.dumps({"alg": "dir", "enc": "A128GCM"}).encode())
    assert_refused(call(f"{dir_header}..{b64(b'iv')}.{b64(b'ct')}.{b64(b'tag')}"), "malformed_token")
    assert server.total() == 0


def test_nested_jws_with_cty_jwt_is_refused(oidc_settings, issuer, call):
    inner = issuer.token(role="admin").encode()
    # Outer layer by the genuine key (a confused deputy) and by an attacker: neither is unwrapped.
    for key in (issuer.key, generate_key("RS256", kid=issuer.key.kid, fresh=True)):
        nested = sign({"alg": "RS256", "kid": key.kid, "cty": "JWT"}, inner, key.private_key, "RS256")
        assert_refused(call(nested), "malformed_token")


# -- substitution and replay --------------------------------------------------


def test_token_substitution_across_audiences_is_refused(oidc_settings, issuer, call):
    # A token the same IdP minted for another API of the same organisation.
    assert_refused(call(issuer.token(aud="https://billing-api.test")), "invalid_audience")
    assert_refused(call(issuer.token(aud=["https://billing-api.test", "https://api.test.evil"])), "invalid_audience")
    assert_refused(call(issuer.token(aud=OMIT)), "invalid_audience")
    assert call(issuer.token(aud=["https://billing-api.test", AUD])).status_code == 200


def test_token_substitution_across_issuers_is_refused(settings, call):
    a = TestIssuer(audience="https://api-a.test")
    b = TestIssuer(audience="https://api-b.test")
    b.keys = [generate_key("RS256", fresh=True)]  # B's key differs from A's
    with a.serve() as server_a, b.serve() as server_b:
        settings.DRF_OIDC_JWKS = {"ISSUERS": [a.settings(), b.settings()]}
        assert call(a.token()).status_code == 200 and call(b.token()).status_code == 200
        # Claiming issuer A, signed with B's key under B's kid: A's key set has no such kid.
        assert_refused(call(b.token(iss=a.issuer, aud="https://api-a.test")), "unknown_key")
        # Claiming issuer A, signed with B's key under A's kid: the signature fails against A's key.
        forged = sign({"alg": "RS256", "kid": a.key.kid}, a.claims(), b.key.private_key, "RS256")
        assert_refused(call(forged), "invalid_signature")
        # A genuine B token carrying the audience configured for A only.
        assert_refused(call(b.token(aud="https://api-a.test")), "invalid_audience")
        assert server_a.total() <= 2 and server_b.total() == 1  # B's keys were never asked about A's tokens


def test_expired_token_replay_is_refused_beyond_the_leeway(oidc_settings, issuer, call):
    oidc_settings(LEEWAY=30)
    assert call(issuer.token(expires_in=-20)).status_code == 200  # within the leeway
    assert_refused(call(issuer.token(expires_in=-31)), "token_expired")
    assert_refused(call(issuer.token(expires_in=-86_400)), "token_expired")
    # A token accepted once (and memoised) is refused when replayed after it expired.
    oidc_settings(LEEWAY=0)
    exp = int(time.time()) + 2
    token = issuer.token(exp=exp)
    assert call(token).status_code == 200
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    assert_refused(call(token), "token_expired")


def test_token_without_expiry_is_refused(oidc_settings, issuer, call):
    assert_refused(call(issuer.token(exp=OMIT)), "missing_claim")


def test_typ_confusion_id_token_is_refused_where_access_tokens_are_required(oidc_settings, issuer, call):
    oidc_settings(ALLOWED_TYPES=["at+jwt"])
    # An ID token of the same issuer and audience (OIDC sets aud to the client id, which may equal it).
    id_token = issuer.token(headers={"typ": "JWT"}, nonce="n-0S6", auth_time=int(time.time()))
    assert_refused(call(id_token), "invalid_token_type")
    assert_refused(call(issuer.token(headers={"typ": OMIT})), "invalid_token_type")
    assert_refused(call(issuer.token(headers={"typ": "logout+jwt"})), "invalid_token_type")
    assert call(issuer.token(headers={"typ": "at+jwt"})).status_code == 200
    assert call(issuer.token(headers={"typ": "application/at+JWT"})).status_code == 200


def test_weak_rsa_key_in_the_jwks_is_refused(oidc_settings, issuer, call, server):
    weak = generate_key("RS256", kid="weak-1024", rsa_bits=1024, fresh=True)
    issuer.keys = [weak, *issuer.keys]
    forged = sign({"alg": "RS256", "kid": weak.kid}, issuer.claims(role="admin"), weak.private_key, "RS256")
    assert_refused(call(forged), "unknown_key")  # the 1024-bit key was skipped when the JWKS was read
    assert call(issuer.token()).status_code == 200  # the 2048-bit key of the same JWKS is used


@pytest.mark.parametrize(
    "cnf",
    [
        {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},  # DPoP, RFC 9449
        {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},  # mTLS, RFC 8705
        {"jwk": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}},  # RFC 7800
        {},
    ],
    ids=["dpop-jkt", "mtls-x5t-s256", "embedded-jwk", "empty"],
)
def test_sender_constrained_token_presented_as_bearer_is_refused(oidc_settings, issuer, call, cnf):
    assert_refused(call(issuer.token(cnf=cnf, role="admin")), "sender_constrained")
    assert call(issuer.token(role="admin")).status_code == 200


def test_oversized_token_is_refused_before_parsing(oidc_settings, issuer, call, server):
    assert_refused(call(issuer.token(padding="x" * 20_000)), "malformed_token")
    assert_refused(call("e" * 1_000_000), "malformed_token")
    assert server.total() == 0


def test_parser_differentials_non_json_non_utf8_and_out_of_range_values_are_refused(oidc_settings, issuer, call):
    # NaN/Infinity are not JSON (RFC 8259); text that is not UTF-8, or holds lone surrogates, is not a JWT
    # (RFC 8725 3.7, RFC 7493 2.1); numeric dates beyond a double are no dates. Other parsers read these
    # differently, so a token carrying them is refused whoever signed it.
    for raw in (
        b'{"exp": NaN}',
        b'{"exp": Infinity}',
        b'{"sub": "\xff\xfe"}',
        b'{"sub": "\\ud800"}',
        b'{"sub": "alice\\u0000admin"}',
        b'{"role": ["admin\\udfff"]}',
        b'{"exp": 1e400}',
        b'{"exp": ' + b"9" * 400 + b"}",
        b'{"nbf": -' + b"9" * 400 + b"}",
    ):
        claims = json.dumps(issuer.claims()).encode()[:-1] + b", " + raw[1:]
        token = sign({"alg": "RS256", "kid": issuer.key.kid}, claims, issuer.key.private_key, "RS256")
        assert_refused(call(token), "malformed_token")


def test_a_deactivated_user_cannot_come_back_as_a_machine_by_changing_the_token_shape(oidc_settings, issuer, call):
    from django.contrib.auth import get_user_model

    assert call(issuer.token(sub="alice")).status_code == 200
    user = get_user_model().objects.get()
    user.is_active = False
    user.save()
    assert_refused(call(issuer.token(sub="alice", client_id="alice")), "user_inactive")  # the generic rule
    oidc_settings(PROVIDER="keycloak")
    keycloak = issuer.token(sub="alice", azp="billing", preferred_username="service-account-billing")
    assert_refused(call(keycloak), "user_inactive")


# -- one token, one spelling; exact claims (issue 13, issue 20) ---------------------


def test_unencoded_payload_b64_false_is_refused(oidc_settings, issuer, call):
    # RFC 7797: with b64 false the payload is signed as it is, not base64url: a second way to read one
    # signature. Refused whether or not b64 is also listed in crit, and whichever payload form is sent.
    key = issuer.key
    body = json.dumps(issuer.claims(role="admin"), separators=(",", ":"))
    for header in (
        {"alg": "RS256", "kid": key.kid, "b64": False},
        {"alg": "RS256", "kid": key.kid, "b64": False, "crit": ["b64"]},
    ):
        encoded = sign(header, body.encode(), key.private_key, "RS256")
        assert_refused(call(encoded), "malformed_token")
        head = b64(json.dumps(header).encode())
        raw_input = f"{head}.{body}".encode()
        raw_signature = b64(jwt.get_algorithm_by_name("RS256").sign(raw_input, key.private_key))
        assert_refused(call(f"{head}.{body}.{raw_signature}"), "malformed_token")
        assert_refused(call(f"{head}..{raw_signature}"), "malformed_token")  # RFC 7797 detached form
    assert call(issuer.token(role="admin")).status_code == 200


def test_a_second_spelling_of_a_genuine_token_is_refused(oidc_settings, issuer, call):
    # RFC 4648 3.5 / RFC 7515 2: unpadded base64url with unused bits zero is the only spelling, so a
    # revocation list, replay store or log keyed on the token text sees every token under one name.
    token = issuer.token()
    head, body, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    low_bits = alphabet[alphabet.index(signature[-1]) | 0b1111]  # RS256-2048: 4 unused bits
    assert base64.urlsafe_b64decode(signature[:-1] + low_bits + "==") == base64.urlsafe_b64decode(signature + "==")
    for spelling in (
        f"{head}.{body}.{signature[:-1]}{low_bits}",
        token + "==",
        f"{head}.{body}.{signature[:20]}!{signature[20:]}",
        f"{head}=.{body}.{signature}",
        f"{head}.{body}.+{signature[1:]}",  # the standard alphabet's + is not base64url
    ):
        assert_refused(call(spelling), "malformed_token")
    assert call(token).status_code == 200


@pytest.mark.parametrize("role", ["admin ", " admin", "admin\t", "\u00a0admin", "admin\u2003"])
def test_a_role_padded_with_whitespace_does_not_grant_the_role(oidc_settings, issuer, call, role):
    assert call(issuer.token(roles=[role]), path="/api/admin/users").status_code == 403
    assert call(issuer.token(roles={"admin": []}), path="/api/admin/users").status_code == 403
    assert call(issuer.token(roles=["admin"]), path="/api/admin/users").status_code == 200


@pytest.mark.parametrize("scope", ["reports:read\u00a0other", "reports:read\u2003", "reports:read\tother"])
def test_a_scope_joined_by_other_whitespace_than_a_space_does_not_grant_the_scope(oidc_settings, issuer, call, scope):
    assert call(issuer.token(scope=scope), path="/api/reports").status_code == 403
    assert call(issuer.token(scope="other reports:read"), path="/api/reports").status_code == 200


# -- the catalogue and docs/security.md agree -------------------------------------


def test_every_catalogue_test_is_cited_in_docs_security_and_vice_versa():
    doc = (ROOT / "docs" / "security.md").read_text()
    source = Path(__file__).read_text()
    defined = set(re.findall(r"^def (test_\w+)", source, re.MULTILINE))
    defined.discard("test_every_catalogue_test_is_cited_in_docs_security_and_vice_versa")
    table = doc.split("## Attack catalogue", 1)[1].split("\n## ", 1)[0]
    cited = set(re.findall(r"`(test_\w+)`", table))
    assert cited - defined == set(), "cited in docs/security.md but not defined in tests/test_attacks.py"
    assert defined - cited == set(), "defined in tests/test_attacks.py but not cited in docs/security.md"
    # Test names cited elsewhere in the document must exist in some test module.
    everywhere = set(re.findall(r"`(test_\w+)`", doc))
    all_tests = {
        name
        for path in (ROOT / "tests").glob("test_*.py")
        for name in re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE)
    }
    assert everywhere - all_tests == set()
