"""Operations signals and log fields: sent from the one place each event happens, harmless when receivers raise."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.cache import caches

from drf_oidc_jwks import signals
from drf_oidc_jwks.conf import get_settings, reset_state
from drf_oidc_jwks.jwks import JWKSClient
from drf_oidc_jwks.logfields import FIELDS
from drf_oidc_jwks.testserver import Response


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_nothing_listens_to_the_operations_signals_by_default():
    for signal in (signals.token_refused, signals.token_verified, signals.jwks_fetched, signals.stale_keys_served):
        assert not signals.listened(signal)


def test_a_refused_token_sends_token_refused_with_its_code_and_the_configured_issuer(
    oidc_settings, issuer, call, heard
):
    refused = heard(signals.token_refused)
    assert call(issuer.expired_token()).status_code == 401
    assert call(issuer.token(aud="https://elsewhere")).status_code == 401
    assert refused == [
        {"code": "token_expired", "issuer": issuer.issuer},
        {"code": "invalid_audience", "issuer": issuer.issuer},
    ]


def test_an_unconfigured_iss_never_becomes_the_issuer_of_a_refusal(oidc_settings, issuer, call, heard):
    refused = heard(signals.token_refused)
    assert call(issuer.token(iss="https://attacker.example/" + "x" * 50)).status_code == 401
    assert refused == [{"code": "invalid_issuer", "issuer": None}]


def test_an_unreachable_idp_sends_token_refused_with_idp_unavailable(oidc_settings, issuer, server, call, heard):
    refused, failed = heard(signals.token_refused), heard(signals.jwks_fetch_failed)
    server.respond("/jwks.json", Response(500, b"{}"))
    assert call(issuer.token()).status_code == 503
    assert refused == [{"code": "idp_unavailable", "issuer": issuer.issuer}]
    assert failed == [{"issuer": issuer.issuer, "url": server.url("/jwks.json"), "reason": "HTTP 500"}]


def test_token_verified_says_whether_the_memo_answered(oidc_settings, issuer, call, heard):
    verified = heard(signals.token_verified)
    token = issuer.token()
    assert call(token).status_code == 200
    assert call(token).status_code == 200
    assert verified == [{"issuer": issuer.issuer, "memoised": False}, {"issuer": issuer.issuer, "memoised": True}]


def test_jwks_fetched_carries_url_status_duration_and_key_count(oidc_settings, issuer, server, call, heard):
    fetched = heard(signals.jwks_fetched)
    issuer.add_key("ES256")
    oidc_settings(ALGORITHMS=["RS256", "ES256"])
    assert call(issuer.token()).status_code == 200
    [event] = fetched
    assert (event["issuer"], event["url"], event["status"], event["keys"]) == (
        issuer.issuer,
        server.url("/jwks.json"),
        200,
        2,
    )
    assert 0 < event["seconds"] < get_settings().http_timeout


def test_stale_keys_served_gives_the_age_past_freshness(oidc_settings, issuer, server, heard):
    stale = heard(signals.stale_keys_served)
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    s = get_settings()
    clock = Clock()
    client = JWKSClient(s.issuers[0], s, clock=clock)
    client.get_key(issuer.key.kid, "RS256")
    server.respond("/jwks.json", Response(500, b"{}"))
    clock.now += 90
    assert client.get_key(issuer.key.kid, "RS256").kid == issuer.key.kid
    assert stale and stale[0]["issuer"] == issuer.issuer and stale[0]["age"] == pytest.approx(30)


def test_a_receiver_that_raises_never_turns_a_request_into_a_500(oidc_settings, issuer, call, caplog):
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.token_verified.connect(broken, weak=False)
    signals.token_refused.connect(broken, weak=False)
    try:
        with caplog.at_level(logging.ERROR, logger="drf_oidc_jwks"):
            assert call(issuer.token()).status_code == 200
            assert call(issuer.expired_token()).status_code == 401
    finally:
        signals.token_verified.disconnect(broken)
        signals.token_refused.disconnect(broken)
    raised = [r for r in caplog.records if "raised RuntimeError" in r.getMessage()]
    assert len(raised) == 2


def test_every_record_the_library_logs_carries_code_issuer_and_kid(oidc_settings, issuer, server, call, caplog):
    server.respond("/jwks.json", Response(500, b"{}"))
    with caplog.at_level(logging.DEBUG, logger="drf_oidc_jwks"):
        assert call(issuer.token()).status_code == 503
        server.respond("/jwks.json", None)
        reset_state()  # a fresh client and cache: past the failure backoff
        caches["default"].clear()
        assert call(issuer.expired_token()).status_code == 401
    records = [r for r in caplog.records if r.name == "drf_oidc_jwks"]
    assert len(records) >= 4
    for record in records:
        assert all(hasattr(record, name) for name in FIELDS), record.getMessage()
    refused = [r for r in records if r.getMessage().startswith("token refused")]
    assert [(r.code, r.issuer, r.kid) for r in refused] == [("token_expired", issuer.issuer, issuer.key.kid)]  # type: ignore[attr-defined]
    unavailable = [r for r in records if "identity provider unavailable" in r.getMessage()]
    assert [(r.code, r.issuer) for r in unavailable] == [("idp_unavailable", issuer.issuer)]  # type: ignore[attr-defined]
    fetch_failed = [r for r in records if "refresh for" in r.getMessage()]
    assert fetch_failed and all(r.issuer == issuer.issuer for r in fetch_failed)  # type: ignore[attr-defined]


def test_a_revoked_token_sends_token_revoked_with_the_configured_issuer(oidc_settings, issuer, call, heard):
    from drf_oidc_jwks import revocation

    revoked = heard(signals.token_revoked)
    token = issuer.token(sub="gone", iat=1_000)
    assert call(token).status_code == 200
    assert revoked == []
    revocation.revoke(issuer.issuer, sub="gone")
    response = call(token)
    assert (response.status_code, response.data["detail"].code) == (401, "token_revoked")
    assert revoked == [{"issuer": issuer.issuer, "code": "token_revoked"}]


def test_a_replayed_dpop_proof_sends_dpop_replay_once_with_the_issuer(oidc_settings, issuer, api, heard):
    oidc_settings(DPOP="allowed")
    replays = heard(signals.dpop_replay)
    key = issuer.dpop_key()
    token = issuer.token(cnf=key.cnf())
    extra = key.headers(token, "GET", "http://testserver/api/me")
    assert api.get("/api/me", **extra).status_code == 200
    assert replays == []
    replayed = api.get("/api/me", **extra)
    assert (replayed.status_code, replayed.data["detail"].code) == (401, "invalid_dpop_proof")
    assert replays == [{"issuer": issuer.issuer}]
