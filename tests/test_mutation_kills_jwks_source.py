"""Tests that kill mutants of jwks_source.py which the rest of the suite let through (scripts/mutation.sh).

Each names the behaviour it pins: how many requests a client counts, discovery kept and forgotten, plain
HTTP with ``ALLOW_INSECURE_HTTP``, one deadline for discovery, the validators sent back, and what a fetch
announces (log line, ``jwks_fetched`` / ``jwks_fetch_failed`` with their sender). Real loopback IdP throughout.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from drf_oidc_jwks import signals
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import KeySourceError
from drf_oidc_jwks.jwks import JWKSClient
from drf_oidc_jwks.jwks_source import KeySource
from drf_oidc_jwks.testing import Response

DISCOVERY = "/.well-known/openid-configuration"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def client_for(clock: Clock) -> JWKSClient:
    s = get_settings()
    return JWKSClient(s.issuers[0], s, clock=clock)


def refusal(client: JWKSClient, kid: str | None) -> str:
    with pytest.raises(KeySourceError) as exc:
        client.get_key(kid, "RS256")
    return exc.value.reason


# -- fetch_count and the discovered jwks_uri kept between refreshes ----------------


def test_fetch_count_counts_each_request_and_a_refetch_reuses_the_discovered_jwks_uri(oidc_settings, issuer, server):
    oidc_settings(JWKS_URL=None, JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    clock = Clock()
    client = client_for(clock)
    assert client.fetch_count == 0
    client.get_key(issuer.key.kid, "RS256")
    assert client.fetch_count == 2  # discovery, then the JWKS
    clock.now += 61
    client.get_key(issuer.key.kid, "RS256")
    assert client.fetch_count == 3  # the JWKS again; the jwks_uri came from the cache
    assert (server.total(DISCOVERY), server.total()) == (1, 2)
    assert client.snapshot().discovered_jwks_uri == server.url("/jwks.json")


# -- ALLOW_INSECURE_HTTP reaches both the discovery and the JWKS fetch --------------


def test_allow_insecure_http_lets_discovery_and_the_jwks_use_plain_http_to_a_non_loopback_name(
    settings, issuer, server, call
):
    # "127.1" reaches the loopback server but is not a loopback *name* to url_allowed: only the setting lets it.
    issuer.issuer = server.base_url.replace("127.0.0.1", "127.1")
    settings.DRF_OIDC_JWKS = {"ISSUER": issuer.issuer, "AUDIENCE": "https://api.test", "ALLOW_INSECURE_HTTP": True}
    assert call(issuer.token()).status_code == 200
    assert (server.total(DISCOVERY), server.total()) == (1, 1)


def test_allow_insecure_http_lets_a_configured_plain_http_jwks_url_be_fetched(oidc_settings, issuer, server, call):
    oidc_settings(JWKS_URL=server.url("/jwks.json").replace("127.0.0.1", "127.1"), ALLOW_INSECURE_HTTP=True)
    assert call(issuer.token()).status_code == 200
    assert server.total() == 1


def test_a_discovered_plain_http_jwks_uri_off_loopback_is_refused_as_unacceptable(oidc_settings, issuer, server):
    document = {**issuer.discovery_document(), "jwks_uri": "http://idp.example.com/jwks.json"}
    server.respond(DISCOVERY, Response(200, json.dumps(document).encode()))
    oidc_settings(JWKS_URL=None)
    assert refusal(client_for(Clock()), issuer.key.kid) == "discovery document has no acceptable jwks_uri"
    assert server.total() == 0


# -- one deadline: discovery gets only what is left, even under a second ------------


def test_discovery_is_cut_at_an_http_timeout_shorter_than_a_second(oidc_settings, issuer, server, call):
    oidc_settings(JWKS_URL=None, HTTP_TIMEOUT=0.2, SYNC_USERS=False)
    document = json.dumps(issuer.discovery_document()).encode()
    server.respond(DISCOVERY, Response(200, document, delay=1.5))
    started = time.monotonic()
    response = call(issuer.token())
    elapsed = time.monotonic() - started
    assert (response.status_code, response.json()["code"]) == (503, "idp_unavailable")
    assert elapsed < 0.2 + 0.5, f"answered after {elapsed:.2f}s"


# -- the validators sent back -----------------------------------------------------


def sent_validators(server: Any) -> dict[str, str]:
    headers = {k.lower(): v for k, v in server.last_headers["/jwks.json"].items()}
    return {k: v for k, v in headers.items() if k.startswith("if-")}


@pytest.mark.parametrize(
    ("answered", "sent_back"),
    [
        ({"ETag": '"v1"'}, {"if-none-match": '"v1"'}),
        ({"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}, {"if-modified-since": "Mon, 01 Jan 2024 00:00:00 GMT"}),
        (
            {"ETag": '"v1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"},
            {"if-none-match": '"v1"', "if-modified-since": "Mon, 01 Jan 2024 00:00:00 GMT"},
        ),
        ({}, {}),
    ],
    ids=["etag-only", "last-modified-only", "both", "neither"],
)
def test_the_next_refresh_sends_back_exactly_the_validators_the_jwks_came_with(
    oidc_settings, issuer, server, answered, sent_back
):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    server.respond("/jwks.json", Response(200, json.dumps(issuer.jwks()).encode(), answered))
    clock = Clock()
    client = client_for(clock)
    client.get_key(issuer.key.kid, "RS256")
    assert sent_validators(server) == {}
    clock.now += 61
    client.get_key(issuer.key.kid, "RS256")
    assert sent_validators(server) == sent_back


def test_a_304_without_validators_keeps_the_ones_sent_for_the_next_revalidation(oidc_settings, issuer, server, heard):
    fetched = heard(signals.jwks_fetched, with_sender=True)
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    server.respond("/jwks.json", Response(200, json.dumps(issuer.jwks()).encode(), {"ETag": '"v1"'}))
    clock = Clock()
    client = client_for(clock)
    first = client.get_key(issuer.key.kid, "RS256")
    server.respond("/jwks.json", Response(304, b""))  # an IdP that sends no ETag with its 304
    for _ in range(2):
        clock.now += 61
        assert client.get_key(issuer.key.kid, "RS256") is first
        assert sent_validators(server) == {"if-none-match": '"v1"'}
    assert [f["status"] for f in fetched] == [200, 304, 304]


# -- what a fetch announces ------------------------------------------------------------


def test_a_304_is_logged_and_announced_with_the_count_of_the_keys_it_renews(
    oidc_settings, issuer, server, heard, caplog
):
    fetched = heard(signals.jwks_fetched, with_sender=True)
    server.conditional = True
    issuer.add_key("RS256")
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    clock = Clock()
    client = client_for(clock)
    with caplog.at_level(logging.INFO, logger="drf_oidc_jwks"):
        client.get_key(issuer.key.kid, "RS256")
        clock.now += 61
        client.get_key(issuer.key.kid, "RS256")
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("JWKS for")]
    assert messages == [
        f"JWKS for {issuer.issuer} fetched: 2 key(s), fresh for 60s",
        f"JWKS for {issuer.issuer} revalidated (304): 2 key(s), fresh for 60s",
    ]
    assert [(f["sender"], f["issuer"], f["url"], f["status"], f["keys"]) for f in fetched] == [
        (KeySource, issuer.issuer, server.url("/jwks.json"), 200, 2),
        (KeySource, issuer.issuer, server.url("/jwks.json"), 304, 2),
    ]
    assert all(0 < f["seconds"] < get_settings().http_timeout for f in fetched)


def test_a_failed_fetch_is_announced_by_key_source(oidc_settings, issuer, server, heard):
    failed = heard(signals.jwks_fetch_failed, with_sender=True)
    server.respond("/jwks.json", Response(500, b"{}"))
    assert refusal(client_for(Clock()), issuer.key.kid) == "HTTP 500"
    assert failed == [
        {"sender": KeySource, "issuer": issuer.issuer, "url": server.url("/jwks.json"), "reason": "HTTP 500"}
    ]


# -- a failing discovered jwks_uri is rediscovered ---------------------------------------


def test_a_failing_discovered_jwks_uri_is_forgotten_and_the_next_refresh_rediscovers(oidc_settings, issuer, server):
    oidc_settings(JWKS_URL=None, JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    client = client_for(clock)
    server.respond("/jwks.json", Response(500, b"{}"))
    assert refusal(client, issuer.key.kid) == "HTTP 500"
    assert client.snapshot().discovered_jwks_uri is None
    server.respond("/jwks.json", None)
    clock.now += 10
    client.state.clear_failure()  # the shared marker's real-time expiry, shortened
    assert client.get_key(issuer.key.kid, "RS256").kid == issuer.key.kid
    assert server.total(DISCOVERY) == 2
    assert client.fetch_count == 4  # discovery, the failed JWKS, discovery again, the JWKS
