"""Bad input gets a clean 401 with a stable code; good tokens of every supported algorithm pass."""

from __future__ import annotations

import base64
import json
import logging

import jwt
import pytest

from drf_oidc_jwks.testing import OMIT, JWKSServer, TestIssuer, generate_key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: object, payload: object, signature: bytes = b"sig") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)])


def assert_refused(response, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response.data["detail"].code == code
    assert response.json()["code"] == code
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api"')
    assert 'error="invalid_token"' in challenge


def test_valid_token_returns_claims_and_user(oidc_settings, issuer, call):
    response = call(issuer.token(sub="alice", email="a@example.com", role="admin", tenant_id="acme"))
    assert response.status_code == 200
    body = response.json()
    assert body["sub"] == "alice"
    assert body["email"] == "a@example.com"
    assert body["tenant_id"] == "acme"


def test_missing_header_is_401_with_plain_bearer_challenge(oidc_settings, call):
    response = call()
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_other_scheme_is_left_to_other_classes_and_answered_401(oidc_settings, call):
    response = call(header="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_bearer_with_nothing_is_missing_token(oidc_settings, call):
    assert_refused(call(header="Bearer "), "missing_token")
    assert_refused(call(header="Bearer"), "missing_token")


def test_scheme_is_case_insensitive(oidc_settings, issuer, call):
    assert call(header=f"bearer {issuer.token()}").status_code == 200
    assert call(header=f"BEARER {issuer.token()}").status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "onlyone",
        "two.segments",
        "a.b.c.d",
        "a.b.c.d.e",
        "!!!.@@@.###",
        "eyJ.eyJ.sig",
        b64(b"[1,2]") + "." + b64(b"{}") + ".sig",
        b64(b'"string"') + "." + b64(b"{}") + ".sig",
        b64(b"{}") + "." + b64(b"[]") + ".sig",
        b64(b"\xff\xfe") + "." + b64(b"{}") + ".sig",
        "..",
        "a b c",
    ],
    ids=[
        "one-segment",
        "two-segments",
        "four-segments",
        "five-segments-jwe",
        "non-base64",
        "truncated-json",
        "header-is-a-list",
        "header-is-a-string",
        "payload-is-a-list",
        "header-not-utf8",
        "empty-segments",
        "spaces",
    ],
)
def test_malformed_tokens_are_refused_as_malformed(oidc_settings, call, token):
    assert_refused(call(header=f"Bearer {token}"), "malformed_token")


def test_token_over_the_size_limit_is_refused_without_parsing(oidc_settings, issuer, call, server):
    response = call(issuer.token(padding="x" * 100_000))
    assert_refused(response, "malformed_token")
    assert server.total() == 0  # refused before any key was looked up


def test_unsigned_alg_none_is_refused(oidc_settings, issuer, call):
    token = forge({"alg": "none", "kid": issuer.key.kid}, issuer.claims(), b"")
    assert_refused(call(token), "unsupported_algorithm")
    token = forge({"alg": "None", "kid": issuer.key.kid}, issuer.claims(), b"")
    assert_refused(call(token), "unsupported_algorithm")


def test_hs256_signed_with_the_public_key_as_secret_is_refused(oidc_settings, issuer, call):
    from cryptography.hazmat.primitives import serialization

    public_pem = issuer.key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.key.kid}).encode())
    payload = b64(json.dumps(issuer.claims()).encode())
    import hashlib
    import hmac

    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert_refused(call(f"{header}.{payload}.{b64(signature)}"), "unsupported_algorithm")


def test_rsa_algorithm_not_in_the_allow_list_is_refused(oidc_settings, issuer, call):
    key = issuer.add_key("RS512")
    assert_refused(call(issuer.token(key=key)), "unsupported_algorithm")  # ALGORITHMS is ["RS256"] only


def test_tampered_payload_fails_the_signature(oidc_settings, issuer, call):
    header, payload, signature = issuer.token(role="user").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    assert_refused(call(f"{header}.{b64(json.dumps(claims).encode())}.{signature}"), "invalid_signature")


def test_token_signed_by_another_key_with_a_known_kid_fails_the_signature(oidc_settings, issuer, call):
    attacker = generate_key("RS256", kid=issuer.key.kid, fresh=True)
    assert_refused(call(issuer.token(key=attacker)), "invalid_signature")


def test_expired_token_is_refused(oidc_settings, issuer, call):
    assert_refused(call(issuer.token(expires_in=-120)), "token_expired")


def test_expiry_within_leeway_is_accepted(oidc_settings, issuer, call):
    oidc_settings(LEEWAY=60)
    assert call(issuer.token(expires_in=-30)).status_code == 200
    oidc_settings(LEEWAY=0)
    assert_refused(call(issuer.token(expires_in=-30)), "token_expired")


def test_token_without_exp_is_refused(oidc_settings, issuer, call):
    assert_refused(call(issuer.token(exp=OMIT)), "missing_claim")


def test_not_yet_valid_token_is_refused(oidc_settings, issuer, call):
    import time

    assert_refused(call(issuer.token(nbf=int(time.time()) + 600)), "token_not_yet_valid")


def test_token_issued_in_the_future_is_refused(oidc_settings, issuer, call):
    import time

    assert_refused(call(issuer.token(iat=int(time.time()) + 600)), "token_not_yet_valid")


def test_wrong_issuer_is_refused_without_any_request(oidc_settings, issuer, call, server):
    assert_refused(call(issuer.token(iss="https://evil.example.com")), "invalid_issuer")
    assert server.total() == 0 and server.total("/.well-known/openid-configuration") == 0


def test_issuer_differing_by_a_trailing_slash_is_refused(oidc_settings, issuer, call):
    assert_refused(call(issuer.token(iss=issuer.issuer + "/")), "invalid_issuer")


def test_token_without_iss_is_refused(oidc_settings, issuer, call):
    assert_refused(call(issuer.token(iss=OMIT)), "invalid_issuer")


def test_wrong_audience_is_refused(oidc_settings, issuer, call):
    assert_refused(call(issuer.token(aud="https://other-api.test")), "invalid_audience")


def test_missing_audience_is_refused_when_one_is_required(oidc_settings, issuer, call):
    assert_refused(call(issuer.token(aud=OMIT)), "invalid_audience")


def test_audience_list_needs_one_match(oidc_settings, issuer, call):
    assert call(issuer.token(aud=["https://other.test", "https://api.test"])).status_code == 200
    oidc_settings(AUDIENCE=["https://a.test", "https://b.test"])
    assert call(issuer.token(aud="https://b.test")).status_code == 200
    assert_refused(call(issuer.token(aud="https://api.test")), "invalid_audience")


def test_audience_none_opts_out_of_the_audience_check(oidc_settings, issuer, call):
    oidc_settings(AUDIENCE=None)
    assert call(issuer.token(aud="https://anything.test")).status_code == 200
    assert call(issuer.token(aud=OMIT)).status_code == 200


def test_unknown_kid_is_refused(oidc_settings, issuer, call):
    stranger = generate_key("RS256", fresh=True)
    assert_refused(call(issuer.token(key=stranger)), "unknown_key")


@pytest.mark.parametrize("header", ["jku", "x5u"])
def test_url_headers_pointing_at_an_attacker_are_never_fetched(oidc_settings, issuer, call, header):
    attacker_key = generate_key("RS256", kid="attacker", fresh=True)
    attacker = TestIssuer(issuer.issuer, audience="https://api.test")
    attacker.keys = [attacker_key]
    with JWKSServer(attacker) as evil:
        token = attacker.token(headers={header: evil.url("/jwks.json")})
        assert_refused(call(token), "unknown_key")
        assert sum(evil.hits.values()) == 0


def test_embedded_jwk_header_is_not_trusted(oidc_settings, issuer, call):
    attacker_key = generate_key("RS256", kid=issuer.key.kid, fresh=True)
    token = issuer.token(key=attacker_key, headers={"jwk": attacker_key.public_jwk()})
    assert_refused(call(token), "invalid_signature")


def test_x5c_header_is_not_trusted(oidc_settings, issuer, call):
    attacker_key = generate_key("RS256", kid="attacker", fresh=True)
    assert_refused(call(issuer.token(key=attacker_key, headers={"x5c": ["MIIBIjAN"]})), "unknown_key")


def test_critical_header_extensions_are_refused(oidc_settings, issuer, call):
    assert_refused(call(issuer.token(headers={"crit": ["exp"], "exp": 1})), "malformed_token")


@pytest.mark.parametrize("kid", [123, "", "k" * 1000, ["a"], {"a": 1}])
def test_kid_that_is_not_a_short_string_is_malformed(oidc_settings, issuer, call, kid):
    token = forge({"alg": "RS256", "kid": kid}, issuer.claims())
    assert_refused(call(token), "malformed_token")


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "ES256", "ES384", "ES512", "EdDSA"])
def test_every_supported_algorithm_verifies_when_allowed(settings, call, alg):
    issuer = TestIssuer(audience="https://api.test", algorithm=alg)
    with issuer.serve():
        settings.DRF_OIDC_JWKS = issuer.settings()
        assert settings.DRF_OIDC_JWKS["ALGORITHMS"] == [alg]
        response = call(issuer.token(sub="alg-user"))
        assert response.status_code == 200, response.content


def test_key_without_alg_is_matched_by_its_type_and_curve(settings, call):
    # Better Auth publishes OKP/Ed25519 keys without "alg".
    issuer = TestIssuer(audience="https://api.test", algorithm="EdDSA")
    issuer.key.publish_alg = False
    with issuer.serve():
        settings.DRF_OIDC_JWKS = issuer.settings(ALGORITHMS=["EdDSA", "RS256"])
        assert "alg" not in issuer.jwks()["keys"][0]
        assert call(issuer.token()).status_code == 200


def test_ec_key_offered_for_an_rsa_algorithm_is_refused(settings, call):
    issuer = TestIssuer(audience="https://api.test", algorithm="ES256")
    issuer.key.publish_alg = False
    with issuer.serve():
        settings.DRF_OIDC_JWKS = issuer.settings(ALGORITHMS=["RS256", "ES256"])
        # Claim RS256 in the header while naming the EC key: key-type confusion.
        header = {"alg": "RS256", "kid": issuer.key.kid}
        rsa_signed = jwt.encode(issuer.claims(), generate_key("RS256").private_key, algorithm="RS256", headers=header)
        assert_refused(call(rsa_signed), "unsupported_algorithm")


def test_key_alg_must_agree_with_the_token_alg(settings, call):
    issuer = TestIssuer(audience="https://api.test", algorithm="RS256")
    with issuer.serve():
        settings.DRF_OIDC_JWKS = issuer.settings(ALGORITHMS=["RS256", "PS256"])
        # Same RSA key, signed as PS256, but the JWK says alg RS256.
        token = jwt.encode(issuer.claims(), issuer.key.private_key, algorithm="PS256", headers={"kid": issuer.key.kid})
        assert_refused(call(token), "unsupported_algorithm")


def test_missing_kid_is_accepted_only_when_the_jwks_holds_one_key(oidc_settings, issuer, call):
    assert call(issuer.token(headers={"kid": OMIT})).status_code == 200
    issuer.add_key("RS256")
    oidc_settings(JWKS_CACHE_TTL=0)  # new settings: memo and cache start over
    from django.core.cache import cache

    cache.clear()
    assert_refused(call(issuer.token(headers={"kid": OMIT})), "unknown_key")


def test_refusals_are_logged_with_code_and_kid_but_never_the_token(oidc_settings, issuer, call, caplog):
    token = issuer.token(expires_in=-600)
    with caplog.at_level(logging.INFO, logger="drf_oidc_jwks"):
        assert_refused(call(token), "token_expired")
    records = [r for r in caplog.records if r.name == "drf_oidc_jwks" and "refused" in r.getMessage()]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "token_expired" in message and issuer.key.kid in message
    signature = token.split(".")[2]
    for text in [r.getMessage() for r in caplog.records]:
        assert token not in text and signature not in text and token.split(".")[1] not in text


def test_error_description_never_echoes_the_token(oidc_settings, issuer, call):
    token = issuer.token(aud="https://other.test")
    response = call(token)
    assert token.split(".")[1] not in response["WWW-Authenticate"]
    assert token.split(".")[1] not in response.content.decode()


# -- the user loaded inside the view, and get_user overrides ------------------------------------


def test_a_user_refused_when_the_view_first_uses_it_gets_the_full_challenge_and_a_log_line(
    oidc_settings, issuer, call, caplog
):
    from django.contrib.auth import get_user_model

    token = issuer.token(sub="alice", given_name="Alice")
    assert call(token).status_code == 200  # the user, cached with its state
    get_user_model().objects.update(is_active=False)  # no signal: the cached state still says active
    changed = issuer.token(sub="alice", given_name="Alicia")  # new claims: the view's use loads the user
    with caplog.at_level(logging.INFO, logger="drf_oidc_jwks"):
        response = call(changed)  # /api/me renders request.user
    assert_refused(response, "user_inactive")
    assert 'error_description="' in response["WWW-Authenticate"]
    refused = [r.getMessage() for r in caplog.records if "token refused: user_inactive" in r.getMessage()]
    assert len(refused) == 1 and issuer.key.kid in refused[0]
    assert all(changed not in r.getMessage() for r in caplog.records)


class _View:
    """A view authenticated by ``auth_class`` that renders ``request.user`` (loading it)."""

    @staticmethod
    def run(auth_class: type, token: str):
        from rest_framework.response import Response
        from rest_framework.test import APIRequestFactory
        from rest_framework.views import APIView

        class View(APIView):
            authentication_classes = [auth_class]

            def get(self, request):
                return Response({"username": request.user.get_username(), "email": request.user.email})

        return View.as_view()(APIRequestFactory().get("/x", HTTP_AUTHORIZATION=f"Bearer {token}"))


def test_a_subclass_overriding_get_user_with_the_claims_only_keeps_working(oidc_settings, issuer):
    from drf_oidc_jwks.authentication import JWKSAuthentication

    seen = []

    class ClaimsOnly(JWKSAuthentication):
        def get_user(self, claims):
            seen.append(claims.sub)
            return super().get_user(claims)

    response = _View.run(ClaimsOnly, issuer.token(sub="alice", preferred_username="alice"))
    assert (response.status_code, response.data["username"], seen) == (200, "alice", ["alice"])


def test_get_user_is_handed_the_presented_token_for_userinfo(oidc_settings, issuer, server):
    import json as json_module

    from drf_oidc_jwks.authentication import JWKSAuthentication
    from drf_oidc_jwks.testing import Response as Canned

    oidc_settings(USERINFO=True)
    server.respond("/userinfo", Canned(200, json_module.dumps({"sub": "alice", "email": "info@example.com"}).encode()))
    handed = []

    class Recording(JWKSAuthentication):
        def get_user(self, claims, token=None):
            handed.append(token)
            return super().get_user(claims, token)

    token = issuer.token(sub="alice", email=OMIT)
    response = _View.run(Recording, token)
    assert (response.status_code, response.data["email"], handed) == (200, "info@example.com", [token])
    assert server.last_headers["/userinfo"]["Authorization"] == f"Bearer {token}"


# -- REQUIRED_SCOPES is all-of; b64: false (issue 20) ------------------------------


def test_required_scopes_needs_every_listed_scope_not_just_one(oidc_settings, issuer, call):
    oidc_settings(REQUIRED_SCOPES=["api", "reports:read"])
    for scope in ("api", "reports:read", "api reports:write", "", "api\u00a0reports:read"):
        response = call(issuer.token(scope=scope))
        assert response.status_code == 403, scope
        assert response.json()["code"] == "insufficient_scope"
    assert call(issuer.token(scope="reports:read other api")).status_code == 200


def test_a_b64_false_header_is_refused_even_with_a_genuine_signature(oidc_settings, issuer, call):
    # Signed by hand: the payload base64url-encoded as usual, only the header says b64 false.
    header = {"alg": "RS256", "typ": "JWT", "kid": issuer.key.kid, "b64": False}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(issuer.claims()).encode())}"
    signature = jwt.get_algorithm_by_name("RS256").sign(signing_input.encode(), issuer.key.private_key)
    assert_refused(call(f"{signing_input}.{b64(signature)}"), "malformed_token")
    assert call(issuer.token(headers={"b64": True})).status_code == 200
