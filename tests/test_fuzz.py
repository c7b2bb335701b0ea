"""Property-based tests and a bounded fuzz run: whatever arrives, the answer is 200/401/403/503, never an exception.

Three inputs are fuzzed through the real DRF stack (the test client re-raises any
exception a view or authentication class lets escape, so an unhandled error fails
the property): the ``Authorization`` header, well-signed tokens carrying hostile
header and claim values, and hostile JWKS documents served by the loopback
JWKSServer. A 200 must also be a *right* 200: the token's registered claims hold
and, for hostile JWKS documents, the genuine key was in the document.

The seed corpus in tests/fuzz_corpus/ runs as ordinary parametrized tests. The
normal run draws 150 examples per property; ``FUZZ_EXAMPLES=20000`` selects the
long-campaign profile (see docs/security.md).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from django.core.cache import caches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drf_oidc_jwks import jwks, tokens
from drf_oidc_jwks.testing import JWKSServer, Response, TestIssuer

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]  # accepted tokens sync their user

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
OUTCOMES = {200, 401, 403, 503}
LEEWAY = 30

_common: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("fuzz-ci", max_examples=150, database=None, **_common)
# The long campaign keeps failing examples in .hypothesis/ (git-ignored) so a rerun replays them first.
settings.register_profile("fuzz-campaign", max_examples=int(os.environ.get("FUZZ_EXAMPLES") or 20000), **_common)
fuzz = settings(settings.get_profile("fuzz-campaign" if os.environ.get("FUZZ_EXAMPLES") else "fuzz-ci"))


# -- helpers -----------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(header: dict[str, Any], payload_text: bytes, key: Any, alg: str = "RS256") -> str:
    """Sign a payload given as raw JSON text, so NaN, duplicate members or deep nesting reach the verifier."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload_text)}"
    return f"{signing_input}.{b64(jwt.get_algorithm_by_name(alg).sign(signing_input.encode(), key))}"


def payload_with(issuer: TestIssuer, members: str) -> bytes:
    """The issuer's valid claims as JSON text with ``members`` appended (a later duplicate wins)."""
    base = json.dumps(issuer.claims(role="user")).encode()
    return base[:-1] + (b", " + members.encode("utf-8", "surrogatepass") if members else b"") + b"}"


def check_right_200(payload_text: bytes, issuer: TestIssuer) -> None:
    """A 200 must mean the registered claims hold: nothing hostile may slip through as valid."""
    payload = json.loads(payload_text)
    exp = payload["exp"]
    assert isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp > time.time() - LEEWAY - 5
    assert payload["iss"] == issuer.issuer
    aud = payload["aud"]
    assert aud == issuer.audience or (isinstance(aud, list) and issuer.audience in aud)
    assert isinstance(payload["sub"], str) and "cnf" not in payload


def reset_keys() -> None:
    caches["default"].clear()
    jwks.reset_clients()
    tokens.reset_memo()


@pytest.fixture
def fuzz_settings(oidc_settings: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return oidc_settings(LEEWAY=LEEWAY, JWKS_REFRESH_COOLDOWN=3600)


def corpus_lines(name: str) -> list[Any]:
    """The entries of one corpus file, each a pytest param named after its line number."""
    lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()
    return [
        pytest.param(line, id=f"line{number}")
        for number, line in enumerate(lines, 1)
        if line.strip() and not line.startswith("#")
    ]


# -- strategies --------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=5).map(lambda s: s + "\x00" + s)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _nested(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + "1" + closer * depth


# Raw JSON texts json.dumps cannot produce: escapes, deep nesting, huge numbers, non-JSON constants.
RAW_VALUES = (
    JSON_VALUES.map(lambda v: json.dumps(v))
    | st.builds(_nested, st.integers(1, 5000), st.sampled_from(["[", '{"a":']))
    | st.integers(1, 20_000).map(lambda n: json.dumps("x" * n))
    | st.integers(300, 5000).map(lambda n: "9" * n)
    | st.sampled_from(
        [
            "NaN",
            "-Infinity",
            "1e400",
            "-0",
            "1.0e-400",
            '"\\ud800"',
            '"a\\udfffb"',
            '"\\u0000"',
            '"\\ud83d\\ude00"',
            '"\u202e\u0000\ufeff"',
            "true",
            "[]",
            "{}",
        ]
    )
)
CLAIM_NAMES = st.sampled_from(
    [
        "exp",
        "nbf",
        "iat",
        "iss",
        "aud",
        "sub",
        "jti",
        "role",
        "roles",
        "scope",
        "scp",
        "permissions",
        "tenant_id",
        "organization_ids",
        "org_role",
        "email",
        "email_verified",
        "name",
        "given_name",
        "family_name",
        "preferred_username",
        "realm_access",
        "groups",
        "cnf",
    ]
) | st.text(max_size=12)

MEMBERS = st.lists(st.tuples(CLAIM_NAMES, RAW_VALUES), min_size=1, max_size=4).map(
    lambda pairs: ", ".join(f"{json.dumps(name)}: {value}" for name, value in pairs)
)

HEADER_NAMES = st.sampled_from(["kid", "typ", "cty", "crit", "jku", "x5u", "jwk", "x5c", "x5t", "b64", "zip", "enc"])
HEADER_PATCHES = st.dictionaries(HEADER_NAMES | st.text(max_size=8), JSON_VALUES, min_size=1, max_size=4) | st.builds(
    lambda kid: {"kid": kid}, st.text() | st.text(alphabet="\x00./'\" -;=%").map(lambda s: s * 3)
)

B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SEGMENT = st.text(alphabet=B64_CHARS + "=+/.!~ ", max_size=80)
AUTHORIZATION = (
    st.text()
    | st.builds(lambda s: "Bearer " + s, st.text())
    | st.builds(
        lambda scheme, sp, parts: scheme + sp + ".".join(parts),
        st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "DPoP", "Token", ""]),
        st.sampled_from([" ", "  ", "\t", "", " \x00"]),
        st.lists(SEGMENT, max_size=6),
    )
    | st.binary(max_size=200).map(lambda b: "Bearer " + b.decode("latin-1"))
)


@st.composite
def jwk_like(draw: st.DrawFn, good: dict[str, Any]) -> Any:
    """A JWK-ish object: the genuine key with members swapped for hostile values, or made up from scratch."""
    if draw(st.booleans()):
        jwk = dict(good)
        for member in draw(st.lists(st.sampled_from([*good, "key_ops", "crv", "x", "y", "d"]), max_size=3)):
            jwk[member] = draw(JSON_VALUES | st.sampled_from(["RSA", "EC", "OKP", "oct", "sig", "enc", "RS256", ""]))
        return jwk
    members = st.sampled_from(["kty", "kid", "use", "alg", "key_ops", "n", "e", "crv", "x", "y", "k", "x5c"])
    plausible = st.sampled_from(["RSA", "EC", "OKP", "oct", "P-256", "P-521", "Ed25519", "X25519", "RS256", "ES256"])
    b64ish = st.binary(max_size=300).map(b64)
    return draw(st.dictionaries(members, plausible | b64ish | JSON_VALUES, max_size=8))


@st.composite
def jwks_documents(draw: st.DrawFn, good: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A hostile JWKS response body and headers."""
    kind = draw(st.sampled_from(["keys", "keys", "keys", "json", "bytes"]))
    if kind == "bytes":
        body = draw(st.binary(max_size=2000))
    elif kind == "json":
        body = json.dumps(draw(JSON_VALUES)).encode()
    else:
        keys = draw(st.lists(jwk_like(good) | JSON_VALUES, max_size=6))
        if draw(st.booleans()):
            keys.insert(draw(st.integers(0, len(keys))), dict(good))
        document: Any = {"keys": keys}
        if draw(st.booleans()):
            document.update(draw(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3)))
        body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json"}
    cache_control = draw(st.none() | st.text(alphabet='max-ge=0123456789,nocstr "', max_size=30))
    if cache_control is not None:
        headers["Cache-Control"] = cache_control
    return body, headers


def genuine_key_served(body: bytes, good: dict[str, Any]) -> bool:
    try:
        document = json.loads(body)
    except ValueError:
        return False
    keys = document.get("keys") if isinstance(document, dict) else None
    return isinstance(keys, list) and any(
        isinstance(k, dict) and k.get("n") == good["n"] and k.get("e") == good["e"] for k in keys
    )


# -- the checks, shared by the properties and the seed corpus ------------------


def check_authorization(call: Callable[..., Any], header: str) -> None:
    response = call(header=header)
    assert response.status_code in {401, 403}  # nothing here is a valid token
    if response.status_code == 401:
        assert response["WWW-Authenticate"].startswith('Bearer realm="api"')


def check_claims(call: Callable[..., Any], issuer: TestIssuer, members: str) -> None:
    payload = payload_with(issuer, members)
    response = call(sign_raw({"alg": "RS256", "typ": "JWT", "kid": issuer.key.kid}, payload, issuer.key.private_key))
    assert response.status_code in OUTCOMES, response.content
    if response.status_code == 200:
        check_right_200(payload, issuer)
    elif response.status_code == 401:
        assert isinstance(response.json()["code"], str)


def check_header(call: Callable[..., Any], issuer: TestIssuer, patch: dict[str, Any]) -> None:
    header = {"alg": "RS256", "typ": "JWT", "kid": issuer.key.kid, **patch}
    response = call(sign_raw(header, payload_with(issuer, ""), issuer.key.private_key))
    assert response.status_code in OUTCOMES
    if response.status_code == 200:
        assert (
            header.get("kid") in (None, issuer.key.kid)
            and "crit" not in header
            and header.get("b64", True) is not False
        )


def check_jwks(
    call: Callable[..., Any], issuer: TestIssuer, server: JWKSServer, body: bytes, headers: dict[str, str]
) -> None:
    reset_keys()
    server.respond("/jwks.json", Response(200, body, headers))
    response = call(issuer.token())
    assert response.status_code in {200, 401, 503}
    if response.status_code == 200:
        assert genuine_key_served(body, issuer.key.public_jwk()), "a token verified against keys it was not signed with"
    if response.status_code == 503:
        assert int(response["Retry-After"]) >= 1


# -- properties ---------------------------------------------------------------


@fuzz
@given(header=AUTHORIZATION)
def test_arbitrary_authorization_headers_are_answered_401_or_403(fuzz_settings, call, header):
    check_authorization(call, header)


@fuzz
@given(members=MEMBERS)
def test_well_signed_tokens_with_hostile_claims_never_crash_and_never_pass_wrongly(
    fuzz_settings, issuer, call, members
):
    check_claims(call, issuer, members)


@fuzz
@given(patch=HEADER_PATCHES)
def test_well_signed_tokens_with_hostile_header_values_never_crash(fuzz_settings, issuer, call, patch):
    check_header(call, issuer, patch)


@fuzz
@given(data=st.data())
def test_hostile_jwks_documents_never_crash_and_never_verify_a_foreign_token(fuzz_settings, issuer, server, call, data):
    body, headers = data.draw(jwks_documents(issuer.key.public_jwk()))
    check_jwks(call, issuer, server, body, headers)


# -- the seed corpus (tests/fuzz_corpus/) ---------------------------------------


@pytest.mark.parametrize("line", corpus_lines("authorization.txt"))
def test_seed_corpus_authorization_header(fuzz_settings, call, line):
    check_authorization(call, json.loads(line))


@pytest.mark.parametrize("line", corpus_lines("claims.txt"))
def test_seed_corpus_claims(fuzz_settings, issuer, call, line):
    check_claims(call, issuer, line.replace("$DEEP", _nested(3000, "[")))


@pytest.mark.parametrize("line", corpus_lines("headers.txt"))
def test_seed_corpus_header(fuzz_settings, issuer, call, line):
    check_header(call, issuer, json.loads(line))


@pytest.mark.parametrize("line", corpus_lines("jwks.txt"))
def test_seed_corpus_jwks(fuzz_settings, issuer, server, call, line):
    good = json.dumps(issuer.key.public_jwk())
    check_jwks(call, issuer, server, line.replace("$GOOD_JWK", good).encode("utf-8", "surrogatepass"), {})


def test_seed_corpus_is_not_empty():
    counts = {name: len(corpus_lines(name)) for name in ("authorization.txt", "claims.txt", "headers.txt", "jwks.txt")}
    assert all(n >= 10 for n in counts.values()), counts
