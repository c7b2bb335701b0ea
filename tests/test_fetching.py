"""HTTP to the identity provider: one deadline for the whole exchange, size and redirect limits, GET and POST.

The loopback :class:`~drf_oidc_jwks.testing.JWKSServer` drips its answers one byte every 0.2 s (status
line and headers, or the body, with or without ``Content-Length``): each read arrives well within any
per-read timeout, so only a deadline over the whole exchange can cut it off. Time bounds here are
behaviour bounds with a margin (``HTTP_TIMEOUT`` + 1 s), not performance claims.
"""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs

import pytest

from drf_oidc_jwks.exceptions import KeySourceError
from drf_oidc_jwks.fetching import http_fetch, request_json
from drf_oidc_jwks.testing import OMIT, JWKSServer, Response

TIMEOUT = 1.0
MARGIN = 1.0
DRIP = 0.2  # seconds per byte: five bytes a second, each read far inside any per-read timeout

BODY_40 = b'{"keys": [' + b" " * 28 + b"]}"  # 40 bytes: 8 s at the drip rate


def dripping(*, content_length: bool = True, head: bool = False, body: bytes = BODY_40) -> Response:
    headers = {"Content-Type": "application/json"}
    return Response(200, body, headers, drip=DRIP, drip_head=head, content_length=content_length)


def fetch(url: str, timeout: float = TIMEOUT) -> object:
    return http_fetch(url, timeout=timeout, max_bytes=512 * 1024, allow_insecure_http=False)


# -- the deadline, fetcher level ------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(dripping(), id="body-with-content-length"),
        pytest.param(dripping(content_length=False), id="body-without-content-length"),
        pytest.param(dripping(head=True), id="status-line-and-headers"),
    ],
)
def test_a_dripping_answer_is_cut_off_at_the_deadline(server, response):
    server.respond("/jwks.json", response)
    started = time.monotonic()
    with pytest.raises(KeySourceError) as exc:
        fetch(server.url("/jwks.json"))
    elapsed = time.monotonic() - started
    assert exc.value.reason == "timed out"
    assert TIMEOUT - 0.05 <= elapsed < TIMEOUT + MARGIN, f"gave up after {elapsed:.2f}s"


def test_a_dripping_answer_that_ends_within_the_deadline_is_read_whole(server):
    body = b'{"a": 1}'  # 8 bytes at 0.05 s: 0.4 s, inside the 1 s deadline
    server.respond("/doc", Response(200, body, drip=0.05, content_length=False))
    assert fetch(server.url("/doc")).document == {"a": 1}


def test_the_deadline_covers_every_redirect_hop_together(server):
    # Each hop drips its head for 0.6 s: two hops exceed a 1 s deadline though each alone would not.
    server.respond("/a", Response(302, b"", {"Location": "/b"}, drip=0.6 / 40, drip_head=True))
    server.respond("/b", Response(302, b"", {"Location": "/c"}, drip=0.6 / 40, drip_head=True))
    server.respond("/c", Response(200, b"{}"))
    started = time.monotonic()
    with pytest.raises(KeySourceError):
        fetch(server.url("/a"))
    assert time.monotonic() - started < TIMEOUT + MARGIN


def test_connection_refused_is_a_connection_error_at_once():
    with JWKSServer() as server:
        url = server.url("/jwks.json")
    started = time.monotonic()
    with pytest.raises(KeySourceError) as exc:
        fetch(url)
    assert exc.value.reason == "request failed: ConnectionError"
    assert time.monotonic() - started < 0.5


# -- the deadline through the API: discovery, JWKS and userinfo alike ------------------


def answered_within(call, token, bound: float) -> tuple[int, str | None, float]:
    started = time.monotonic()
    response = call(token)
    elapsed = time.monotonic() - started
    code = response.json().get("code") if response.status_code != 200 else None
    assert elapsed < bound, f"answered {response.status_code} after {elapsed:.2f}s"
    return response.status_code, code, elapsed


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(dripping(), id="body-with-content-length"),
        pytest.param(dripping(content_length=False), id="body-without-content-length"),
        pytest.param(dripping(head=True), id="status-line-and-headers"),
    ],
)
def test_a_dripping_jwks_on_a_cold_cache_answers_503_within_http_timeout(oidc_settings, issuer, server, call, response):
    oidc_settings(HTTP_TIMEOUT=TIMEOUT, SYNC_USERS=False)
    server.respond("/jwks.json", response)
    status, code, elapsed = answered_within(call, issuer.token(), TIMEOUT + MARGIN)
    print(f"cold cache, dripping JWKS: {status} {code} after {elapsed:.2f}s (HTTP_TIMEOUT {TIMEOUT}s)")
    assert (status, code) == (503, "idp_unavailable")


def test_a_dripping_discovery_document_answers_503_within_http_timeout(oidc_settings, issuer, server, call):
    oidc_settings(JWKS_URL=None, HTTP_TIMEOUT=TIMEOUT, SYNC_USERS=False)
    server.respond("/.well-known/openid-configuration", dripping(head=True))
    status, code, _ = answered_within(call, issuer.token(), TIMEOUT + MARGIN)
    assert (status, code) == (503, "idp_unavailable")
    assert server.total("/jwks.json") == 0


def test_discovery_and_jwks_share_one_deadline(oidc_settings, issuer, server, call):
    # Discovery takes 0.7 s, the JWKS 0.7 s: each within HTTP_TIMEOUT, together past it.
    oidc_settings(JWKS_URL=None, HTTP_TIMEOUT=TIMEOUT, SYNC_USERS=False)
    document = json.dumps(issuer.discovery_document()).encode()
    server.respond("/.well-known/openid-configuration", Response(200, document, delay=0.7))
    server.respond("/jwks.json", Response(200, json.dumps(issuer.jwks()).encode(), delay=0.7))
    status, code, _ = answered_within(call, issuer.token(), TIMEOUT + MARGIN)
    assert (status, code) == (503, "idp_unavailable")


def test_a_dripping_userinfo_endpoint_is_given_up_at_http_timeout_and_the_token_still_passes(
    oidc_settings, issuer, server, call
):
    oidc_settings(USERINFO=True, HTTP_TIMEOUT=TIMEOUT)
    info = json.dumps({"sub": "alice", "email": "alice@example.com"}).encode()
    server.respond("/userinfo", Response(200, info, drip=DRIP, drip_head=True))
    status, _, elapsed = answered_within(call, issuer.token(sub="alice", email=OMIT), TIMEOUT + MARGIN)
    assert status == 200
    assert elapsed >= TIMEOUT - 0.05  # it did wait for userinfo, up to the deadline and no longer


# -- request_json: the public fetcher for introspection and userinfo -------------------


def test_request_json_posts_a_form_with_basic_auth_and_returns_status_headers_and_json(server):
    answer = json.dumps({"active": True}).encode()
    server.respond("/introspect", Response(200, answer, {"Content-Type": "application/json", "X-Seen": "yes"}))
    result = request_json(
        "POST",
        server.url("/introspect"),
        timeout=TIMEOUT,
        max_bytes=4096,
        allow_insecure_http=False,
        form={"token": "opaque-value", "token_type_hint": "access_token"},
        basic_auth=("client id", "s3cret:x"),
    )
    assert (result.status, result.document, result.is_json) == (200, {"active": True}, True)
    assert result.headers["x-seen"] == "yes"
    sent = server.last_headers["/introspect"]
    assert sent["Content-Type"] == "application/x-www-form-urlencoded"
    # RFC 6749 2.3.1: client id and secret are form-encoded, then joined for HTTP Basic.
    assert base64.b64decode(sent["Authorization"].removeprefix("Basic ")) == b"client+id:s3cret%3Ax"
    assert parse_qs(server.last_bodies["/introspect"].decode()) == {
        "token": ["opaque-value"],
        "token_type_hint": ["access_token"],
    }


def test_request_json_returns_an_error_status_with_its_body_instead_of_raising(server):
    server.respond("/introspect", Response(401, b'{"error": "invalid_client"}'))
    result = request_json("POST", server.url("/introspect"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert (result.status, result.document) == (401, {"error": "invalid_client"})
    server.respond("/introspect", Response(502, b"<html>Bad Gateway</html>"))
    result = request_json("POST", server.url("/introspect"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert (result.status, result.document, result.is_json) == (502, None, False)


def test_request_json_post_is_bounded_by_the_deadline_too(server):
    server.respond("/introspect", dripping(head=True))
    started = time.monotonic()
    with pytest.raises(KeySourceError):
        request_json(
            "POST",
            server.url("/introspect"),
            timeout=TIMEOUT,
            max_bytes=4096,
            allow_insecure_http=False,
            form={"token": "x"},
        )
    assert time.monotonic() - started < TIMEOUT + MARGIN


def test_a_body_over_max_bytes_is_refused_with_or_without_content_length(server):
    for content_length in (True, False):
        server.respond("/big", Response(200, b"[" + b" " * 5000 + b"]", content_length=content_length))
        with pytest.raises(KeySourceError) as exc:
            http_fetch(server.url("/big"), timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
        assert exc.value.reason == "response larger than 4096 bytes"


def test_an_http_url_off_loopback_is_refused_without_a_request():
    with pytest.raises(KeySourceError) as exc:
        http_fetch("http://idp.example.com/jwks.json", timeout=TIMEOUT, max_bytes=4096, allow_insecure_http=False)
    assert exc.value.reason == "URL not allowed (https required)"


def test_a_non_json_200_is_refused_by_http_fetch(server):
    server.respond("/page", Response(200, b"<html>Sign in</html>", {"Content-Type": "text/html"}))
    with pytest.raises(KeySourceError) as exc:
        fetch(server.url("/page"))
    assert exc.value.reason == "response is not JSON"


def test_more_than_three_redirects_are_refused(server):
    for hop in range(5):
        server.respond(f"/r{hop}", Response(302, b"", {"Location": f"/r{hop + 1}"}))
    server.respond("/r5", Response(200, b"{}"))
    with pytest.raises(KeySourceError) as exc:
        fetch(server.url("/r0"))
    assert exc.value.reason == "too many redirects"
    server.respond("/r2", Response(302, b"", {"Location": "/r5"}))
    assert fetch(server.url("/r0")).document == {}  # three hops are followed
