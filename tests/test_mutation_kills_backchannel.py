"""Back-channel logout behaviour pinned by mutation testing (docs/security.md, "Mutation testing").

Each test kills mutants of drf_oidc_jwks/backchannel.py that tests/test_backchannel.py let survive: real POSTs to
the receiver (the project's URL, or the view with another ``max_age`` / ``session_only`` through RequestFactory),
the loopback JWKS server, a real Redis where the replay marker's lifetime is the point. A refusal is always the
same 400, so its logged reason is what tells an operator why: those are asserted too.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from django.test import RequestFactory

from drf_oidc_jwks.backchannel import (
    LOGOUT_EVENT,
    BackchannelLogoutView,
    LogoutTokenError,
    check_logout_claims,
    verify_logout_token,
)
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.testing import OMIT
from tests.services import RedisServer
from tests.test_backchannel import FORM, RP, URL, logout_token, me, nothing_recorded, post

NOW = 1_800_000_000.0
AUDIENCE = (RP,)


def refusal(caplog: pytest.LogCaptureFixture) -> str:
    """The reason of the last logged refusal."""
    prefix = "back-channel logout refused: "
    reasons = [r.getMessage()[len(prefix) :] for r in caplog.records if r.getMessage().startswith(prefix)]
    assert reasons, "no refusal logged"
    return reasons[-1]


@pytest.fixture(autouse=True)
def _log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="drf_oidc_jwks")


def claims(**overrides: Any) -> dict[str, Any]:
    value = {"aud": RP, "iat": NOW, "events": {LOGOUT_EVENT: {}}, "sub": "alice", "jti": "j-1", **overrides}
    return {k: v for k, v in value.items() if v is not OMIT}


def refused(payload: dict[str, Any], *, leeway: float = 5, max_age: float = 300) -> str:
    with pytest.raises(LogoutTokenError) as info:
        check_logout_claims(payload, AUDIENCE, leeway=leeway, max_age=max_age, now=NOW)
    assert str(info.value) == info.value.reason
    return info.value.reason


# ---------------------------------------------------------------------------
# Section 2.6 claim rules, at their boundaries


def test_iat_is_accepted_up_to_leeway_ahead_and_max_age_plus_leeway_behind():
    check_logout_claims(claims(iat=NOW + 5), AUDIENCE, leeway=5, max_age=300, now=NOW)
    check_logout_claims(claims(iat=NOW - 305), AUDIENCE, leeway=5, max_age=300, now=NOW)
    assert refused(claims(iat=NOW + 6)).startswith("iat is ")
    assert refused(claims(iat=NOW - 306)).startswith("iat is ")


def test_exp_is_refused_from_now_minus_leeway():
    check_logout_claims(claims(exp=NOW), AUDIENCE, leeway=5, max_age=300, now=NOW)
    check_logout_claims(claims(exp=NOW - 4), AUDIENCE, leeway=5, max_age=300, now=NOW)
    assert refused(claims(exp=NOW - 5)) == "expired"


def test_aud_may_be_a_list_naming_the_receiver():
    check_logout_claims(claims(aud=["someone-else", RP]), AUDIENCE, leeway=5, max_age=300, now=NOW)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"sub": ""}, "sub is not a non-empty string"),
        ({"sub": 42}, "sub is not a non-empty string"),
        ({"sub": OMIT, "sid": ""}, "sid is not a non-empty string"),
        ({"sid": 42}, "sid is not a non-empty string"),
        ({"jti": ""}, "no jti"),
        ({"jti": 5}, "no jti"),
    ],
)
def test_sub_sid_and_jti_must_be_non_empty_strings(overrides, reason):
    assert refused(claims(**overrides)) == reason


# ---------------------------------------------------------------------------
# Verifying the token


def test_verify_logout_token_follows_the_clock_it_is_given(issuer, oidc_settings):
    oidc_settings(SYNC_USERS=False, BACKCHANNEL_LOGOUT_AUDIENCE=[RP])
    token = logout_token(issuer)
    s = get_settings()
    verify_logout_token(token, s, lambda i: i.backchannel_logout_audience)
    with pytest.raises(LogoutTokenError) as info:
        verify_logout_token(token, s, lambda i: i.backchannel_logout_audience, now=time.time() + 3600)
    assert info.value.reason.startswith("iat is 36")  # about an hour old on the clock given


def test_the_reason_of_an_unreadable_or_forged_token_is_kept(issuer, oidc_settings):
    oidc_settings(SYNC_USERS=False, BACKCHANNEL_LOGOUT_AUDIENCE=[RP])
    s = get_settings()
    forged = issuer.foreign_token("alice", aud=RP, events={LOGOUT_EVENT: {}}, jti="j", sid="s")
    genuine = logout_token(issuer)
    tampered = genuine[:-6] + ("AAAAAA" if not genuine.endswith("AAAAAA") else "BBBBBB")  # the kid's key, bad signature
    for raw in ("not-a-jwt", forged, tampered):
        with pytest.raises(LogoutTokenError) as info:
            verify_logout_token(raw, s, lambda i: i.backchannel_logout_audience)
        assert isinstance(info.value.reason, str) and info.value.reason


@pytest.fixture
def receiver(oidc_settings: Any) -> None:
    oidc_settings(SYNC_USERS=False, BACKCHANNEL_LOGOUT_AUDIENCE=[RP, "another-client"])


@pytest.mark.usefixtures("receiver")
def test_typ_with_the_application_prefix_is_accepted(issuer):
    assert post(logout_token(issuer, typ="application/logout+jwt")).status_code == 200


@pytest.mark.usefixtures("receiver")
def test_the_token_is_verified_with_the_key_its_kid_names(issuer):
    issuer.add_key("RS256")  # two keys published; tokens are signed with the newest
    assert post(logout_token(issuer)).status_code == 200


@pytest.mark.usefixtures("receiver")
@pytest.mark.parametrize(
    ("headers", "reason"),
    [({"crit": ["exp"]}, "crit header present"), ({"kid": 5}, "kid is not a string")],
)
def test_a_header_breaking_a_rule_is_refused_for_that_reason(issuer, caplog, headers, reason):
    import json

    from jwt.algorithms import RSAAlgorithm

    from drf_oidc_jwks.dpop import b64url_encode

    # By hand: PyJWT refuses to write a kid that is not a string.
    payload = issuer.claims("alice", aud=RP, events={LOGOUT_EVENT: {}}, jti=uuid.uuid4().hex, sid="s-1")
    header = {"alg": "RS256", "typ": "logout+jwt", "kid": issuer.key.kid, **headers}
    signing_input = ".".join(b64url_encode(json.dumps(part).encode()) for part in (header, payload))
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input.encode(), issuer.key.private_key)
    token = f"{signing_input}.{b64url_encode(signature)}"
    assert post(token).status_code == 400
    assert refusal(caplog) == reason
    assert nothing_recorded()


# ---------------------------------------------------------------------------
# The view


@pytest.mark.usefixtures("receiver")
def test_each_refusal_logs_its_reason(issuer, caplog):
    from django.test import Client

    token = logout_token(issuer)
    Client().post(URL, {"logout_token": token}, content_type="application/json")
    assert refusal(caplog) == "content type is not application/x-www-form-urlencoded"
    post(None, form={"logout_token": [token, token]})
    assert refusal(caplog) == "2 logout_token parameters, 1 expected"
    post(logout_token(issuer, jti=OMIT))
    assert refusal(caplog) == "no jti"
    assert post(token).status_code == 200
    post(token)
    assert refusal(caplog) == "jti already used (replayed logout token)"


@pytest.mark.usefixtures("receiver")
def test_two_logout_tokens_with_their_own_jti_are_both_recorded(issuer):
    assert post(logout_token(issuer, sid="s-1")).status_code == 200
    assert post(logout_token(issuer, sid="s-2")).status_code == 200


def as_view(view: type[BackchannelLogoutView], token: str) -> Any:
    request = RequestFactory().post(URL, urlencode({"logout_token": token}), content_type=FORM)
    return view.as_view()(request)


class Flaky(BackchannelLogoutView):
    """A receiver whose first revocation write fails (the cache briefly down)."""

    failures = 1

    def record(self, issuer: Any, payload: Any) -> None:
        if Flaky.failures:
            Flaky.failures -= 1
            raise RuntimeError("revocation store down")
        super().record(issuer, payload)


@pytest.mark.usefixtures("receiver")
def test_a_logout_whose_revocation_failed_is_accepted_when_the_idp_retries(issuer, caplog):
    Flaky.failures = 1
    token = logout_token(issuer)
    assert as_view(Flaky, token).status_code == 400
    assert refusal(caplog) == "revocation not stored: RuntimeError"
    assert as_view(Flaky, token).status_code == 200


class SessionOnly(BackchannelLogoutView):
    session_only = True


@pytest.mark.usefixtures("receiver")
def test_session_only_revokes_the_session_and_not_the_subject(issuer, api):
    now = int(time.time())
    mine, other = issuer.token("alice", sid="s1", iat=now - 5), issuer.token("alice", sid="s2", iat=now - 5)
    assert as_view(SessionOnly, logout_token(issuer, sid="s1")).status_code == 200
    assert me(api, mine).json()["code"] == "token_revoked"
    assert me(api, other).status_code == 200


@pytest.fixture
def redis_default(settings: Any, redis_server: RedisServer, receiver: None) -> Iterator[redis.Redis]:
    with redis_server.database(9) as (url, raw):
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
        yield raw


def test_the_replay_marker_lives_as_long_as_its_token_could_be_accepted(issuer, redis_default):
    jti = uuid.uuid4().hex
    assert post(logout_token(issuer, jti=jti)).status_code == 200
    marker = ":1:drf_oidc_jwks:logout-jti:v1:" + hashlib.sha256(f"{issuer.issuer}\x00{jti}".encode()).hexdigest()
    assert redis_default.ttl(marker) == 361  # MAX_AGE 300 + 2 x LEEWAY 30 + 1


class Quick(BackchannelLogoutView):
    max_age = 0.5


def test_the_views_max_age_bounds_the_tokens_age_and_the_markers_life(issuer, oidc_settings, redis_default):
    oidc_settings(SYNC_USERS=False, BACKCHANNEL_LOGOUT_AUDIENCE=[RP], LEEWAY=0)
    assert as_view(Quick, logout_token(issuer, iat=int(time.time()) - 100)).status_code == 400
    jti = uuid.uuid4().hex
    assert as_view(Quick, logout_token(issuer, jti=jti, iat=time.time())).status_code == 200
    marker = ":1:drf_oidc_jwks:logout-jti:v1:" + hashlib.sha256(f"{issuer.issuer}\x00{jti}".encode()).hexdigest()
    assert redis_default.ttl(marker) == 1  # int(0.5 + 0 + 1)


def test_a_cache_outage_refuses_the_logout_and_says_so(issuer, redis_default, redis_server, caplog):
    token = logout_token(issuer)
    with redis_server.stopped():
        assert post(token).status_code == 400
    assert refusal(caplog) == "cache unavailable: ConnectionError"
