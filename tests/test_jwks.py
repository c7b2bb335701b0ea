"""The JWKS cache: discovery, freshness, single-flight, cooldown, stale-if-error, and a bounded fetch."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from django.core.cache import caches

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import KeySourceError, TokenError
from drf_oidc_jwks.jwks import JWKSClient, get_client, parse_max_age
from drf_oidc_jwks.testing import JWKSServer, Response, generate_key


class Clock:
    """A clock the test moves by hand (the JWKS client takes it as a parameter)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def client_for(clock: Clock | None = None) -> JWKSClient:
    s = get_settings()
    return JWKSClient(s.issuers[0], s, clock=clock or time.time)


def test_one_fetch_serves_many_requests(oidc_settings, issuer, call, server):
    for _ in range(50):
        assert call(issuer.token()).status_code == 200
    assert server.total() == 1


def test_hot_path_reads_neither_cache_nor_json_once_keys_are_memoised(settings, oidc_settings, issuer, call):
    settings.CACHES = {
        **settings.CACHES,
        "counting": {"BACKEND": "tests.counting_cache.CountingLocMemCache", "LOCATION": "counting"},
    }
    oidc_settings(JWKS_CACHE_ALIAS="counting")
    assert call(issuer.token()).status_code == 200
    counting = caches["counting"]
    counting.reset_counts()
    for _ in range(20):
        assert call(issuer.token()).status_code == 200
    assert counting.calls == {}


def test_discovery_finds_the_jwks_uri_when_jwks_url_is_absent(settings, issuer, server, call):
    settings.DRF_OIDC_JWKS = {"ISSUER": issuer.issuer, "AUDIENCE": "https://api.test"}
    for _ in range(5):
        assert call(issuer.token()).status_code == 200
    assert server.total("/.well-known/openid-configuration") == 1
    assert server.total("/jwks.json") == 1


def test_discovery_document_naming_another_issuer_is_refused(settings, issuer, server, call):
    document = {**issuer.discovery_document(), "issuer": "https://impostor.test"}
    server.respond("/.well-known/openid-configuration", Response(200, json.dumps(document).encode()))
    settings.DRF_OIDC_JWKS = {"ISSUER": issuer.issuer, "AUDIENCE": "https://api.test"}
    response = call(issuer.token())
    assert response.status_code == 503
    assert response.json()["code"] == "idp_unavailable"
    assert server.total("/jwks.json") == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=120", 120.0),
        ("public, max-age=600, must-revalidate", 600.0),
        ('max-age="30"', 30.0),
        ("no-store", 0.0),
        ("no-cache, max-age=60", 0.0),
        ("private", None),
        ("", None),
        (None, None),
    ],
)
def test_cache_control_max_age_is_parsed(header, expected):
    assert parse_max_age(header) == expected


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"),
    [
        ("max-age=600", 600),  # honoured
        ("max-age=5", 60),  # raised to JWKS_MIN_TTL
        ("max-age=99999999", 86400),  # lowered to JWKS_MAX_TTL
        ("no-store", 60),
        (None, 300),  # no header: JWKS_CACHE_TTL
    ],
)
def test_cache_control_freshness_is_honoured_within_bounds(oidc_settings, server, cache_control, fresh_for):
    oidc_settings(JWKS_CACHE_TTL=300, JWKS_MIN_TTL=60, JWKS_MAX_TTL=86400)
    server.cache_control = cache_control
    keyset = client_for().current_keyset()
    assert keyset.fresh_until - keyset.fetched_at == fresh_for


def test_expired_jwks_is_refetched_once(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=60)
    clock = Clock()
    client = client_for(clock)
    client.get_key(issuer.key.kid, "RS256")
    clock.now += 30
    client.get_key(issuer.key.kid, "RS256")
    assert server.total() == 1
    clock.now += 31
    client.get_key(issuer.key.kid, "RS256")
    client.get_key(issuer.key.kid, "RS256")
    assert server.total() == 2


def test_unknown_kid_flood_makes_at_most_one_request_per_cooldown(oidc_settings, issuer, call, server):
    oidc_settings(JWKS_REFRESH_COOLDOWN=60)
    assert call(issuer.token()).status_code == 200
    before = server.total()
    codes = set()
    for _ in range(300):
        token = issuer.token(headers={"kid": uuid.uuid4().hex})
        response = call(token)
        codes.add((response.status_code, response.json()["code"]))
    assert codes == {(401, "unknown_key")}
    flood_requests = server.total() - before
    print(f"unknown-kid flood: 300 tokens -> {flood_requests} JWKS request(s)")
    assert flood_requests == 1


def test_cooldown_expiry_allows_one_more_refetch(oidc_settings, issuer, call, server):
    oidc_settings(JWKS_REFRESH_COOLDOWN=1)
    assert call(issuer.token()).status_code == 200
    call(issuer.token(headers={"kid": "random-1"}))
    call(issuer.token(headers={"kid": "random-2"}))
    assert server.total() == 2
    time.sleep(1.2)
    call(issuer.token(headers={"kid": "random-3"}))
    assert server.total() == 3


def test_rotated_in_key_is_picked_up_by_its_first_token(oidc_settings, issuer, call, server):
    assert call(issuer.token()).status_code == 200
    new_key = issuer.add_key("RS256")
    assert call(issuer.token(key=new_key)).status_code == 200
    assert server.total() == 2


def test_removed_key_stops_verifying_after_the_next_refresh(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=60)
    clock = Clock()
    client = client_for(clock)
    old = issuer.key
    issuer.add_key("RS256")
    client.get_key(old.kid, "RS256")
    issuer.remove_key(old)
    clock.now += 61
    with pytest.raises(TokenError) as exc:
        client.get_key(old.kid, "RS256")
    assert exc.value.code == "unknown_key"


GARBAGE = {
    "html": Response(200, b"<html><body>Login</body></html>", {"Content-Type": "text/html"}),
    "http-500": Response(500, b"oops"),
    "http-404": Response(404, b"{}"),
    "invalid-json": Response(200, b'{"keys": [', {"Content-Type": "application/json"}),
    "keys-not-a-list": Response(200, b'{"keys": {"kty": "RSA"}}'),
    "not-an-object": Response(200, b"[1, 2, 3]"),
    "empty-keys": Response(200, b'{"keys": []}'),
    "symmetric-key-only": Response(200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]}'),
    "wrong-types": Response(200, b'{"keys": [{"kty": "RSA", "n": 5, "e": null}, "x", 3]}'),
    "weak-rsa-only": None,  # filled in below with a 1024-bit key
    "too-large": Response(200, b'{"keys": [' + b" " * (2 * 1024 * 1024) + b"]}"),
    "deeply-nested": Response(200, b"[" * 100_000 + b"]" * 100_000),
}


def garbage(name: str) -> Response:
    if name == "weak-rsa-only":
        weak = generate_key("RS256", kid="weak", rsa_bits=1024, fresh=True)
        return Response(200, json.dumps({"keys": [weak.public_jwk()]}).encode())
    response = GARBAGE[name]
    assert response is not None
    return response


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_from_the_idp_keeps_the_last_good_keys(oidc_settings, issuer, server, name):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=600, JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    client = client_for(clock)
    good = client.get_key(issuer.key.kid, "RS256")
    server.respond("/jwks.json", garbage(name))
    clock.now += 120  # stale now: a refresh is tried and fails
    assert client.get_key(issuer.key.kid, "RS256").jwk == good.jwk
    assert server.total() == 2
    clock.now += 1  # within the failure backoff: no new attempt
    client.get_key(issuer.key.kid, "RS256")
    assert server.total() == 2


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_with_nothing_cached_is_a_503_with_retry_after(oidc_settings, issuer, server, call, name):
    server.respond("/jwks.json", garbage(name))
    response = call(issuer.token())
    assert response.status_code == 503
    assert response.json()["code"] == "idp_unavailable"
    assert int(response["Retry-After"]) >= 1


def test_stale_keys_serve_until_max_stale_then_503(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=3600, JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    client = client_for(clock)
    client.get_key(issuer.key.kid, "RS256")
    server.respond("/jwks.json", Response(503, b"down"))
    for minutes in (2, 10, 30, 60):
        clock.now = 1_000_000.0 + minutes * 60
        assert client.get_key(issuer.key.kid, "RS256").kid == issuer.key.kid
    clock.now = 1_000_000.0 + 60 + 3600 + 1
    with pytest.raises(KeySourceError):
        client.get_key(issuer.key.kid, "RS256")


def test_idp_recovering_after_an_outage_is_used_again(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_MAX_STALE=3600, JWKS_FAILURE_BACKOFF=5)
    clock = Clock()
    client = client_for(clock)
    client.get_key(issuer.key.kid, "RS256")
    server.respond("/jwks.json", Response(500, b""))
    clock.now += 100
    client.get_key(issuer.key.kid, "RS256")
    server.respond("/jwks.json", None)
    issuer.add_key("RS256")
    clock.now += 10  # past the failure backoff
    caches["default"].delete_many([client._prefix + "failed"])  # the marker's real-time expiry, shortened
    assert client.get_key(issuer.key.kid, "RS256")
    assert client.current_keyset().fresh_until == clock.now + 60


def test_slow_idp_answers_503_within_the_timeout(oidc_settings, issuer, server, call):
    oidc_settings(HTTP_TIMEOUT=0.5)
    server.delay = 3
    started = time.monotonic()
    response = call(issuer.token())
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 0.5 + 0.5, f"answered in {elapsed:.2f}s"


def test_slowly_dripping_body_is_cut_at_the_timeout(oidc_settings, issuer, server, call):
    oidc_settings(HTTP_TIMEOUT=0.5)
    chunks = iter([b'{"keys": ['] + [b" "] * 100)

    def drip() -> bytes:
        return b"".join(chunks)

    # The server sends its headers at once but the body only after the timeout.
    server.respond("/jwks.json", Response(200, drip, delay=2))
    started = time.monotonic()
    assert call(issuer.token()).status_code == 503
    assert time.monotonic() - started < 1.0


def test_cold_cache_fetch_is_single_flight_across_threads(oidc_settings, issuer, server):
    server.delay = 0.3
    token_kid = issuer.key.kid
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            get_client(get_settings().issuers[0]).get_key(token_kid, "RS256")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert server.total() == 1
    assert server.max_in_flight == 1


def test_concurrent_requests_during_an_outage_fetch_one_at_a_time_and_answer_in_time(oidc_settings, issuer, server):
    oidc_settings(HTTP_TIMEOUT=0.4)
    server.delay = 2
    outcomes: list[tuple[str, float]] = []

    def worker() -> None:
        started = time.monotonic()
        try:
            get_client(get_settings().issuers[0]).get_key(issuer.key.kid, "RS256")
            outcomes.append(("ok", time.monotonic() - started))
        except KeySourceError:
            outcomes.append(("503", time.monotonic() - started))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {o for o, _ in outcomes} == {"503"}
    worst = max(e for _, e in outcomes)
    assert worst < 0.4 + 0.5 + 0.3, f"worst {worst:.2f}s"
    assert server.max_in_flight == 1


def test_redirect_to_another_host_is_not_followed(oidc_settings, issuer, server, call):
    with JWKSServer(issuer) as other:
        target = other.url("/jwks.json").replace("127.0.0.1", "localhost")
        server.respond("/jwks.json", Response(302, b"", {"Location": target}))
        assert call(issuer.token()).status_code == 503
        assert other.total() == 0


def test_redirect_on_the_same_host_is_followed(oidc_settings, issuer, server, call):
    server.respond("/jwks.json", Response(302, b"", {"Location": "/keys/v2.json"}))
    server.respond("/keys/v2.json", Response(200, json.dumps(issuer.jwks()).encode()))
    assert call(issuer.token()).status_code == 200
    assert server.total("/keys/v2.json") == 1


def test_private_members_of_a_published_key_are_dropped(oidc_settings, issuer, server):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    private_jwk = json.loads(RSAAlgorithm.to_jwk(issuer.key.private_key))
    private_jwk.pop("key_ops", None)
    private_jwk.update({"kid": issuer.key.kid, "alg": "RS256"})
    server.respond("/jwks.json", Response(200, json.dumps({"keys": [private_jwk]}).encode()))
    key = client_for().get_key(issuer.key.kid, "RS256")
    assert "d" not in key.jwk
    assert isinstance(key.key, rsa.RSAPublicKey)
