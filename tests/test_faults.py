"""Fault injection: the identity provider down, slow, answering garbage or 10 MB, rotating keys under load.

Every fault is real: the JWKS comes from a loopback HTTP server that is stopped,
slowed or made to answer garbage, and requests go through the whole DRF stack
(several threads, each with its own test client, where load matters). Each test
states its figure in its name or prints it (``pytest -s``) and asserts on it.
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from drf_oidc_jwks import jwks, tokens
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import KeySourceError
from drf_oidc_jwks.jwks import JWKSClient, get_client
from drf_oidc_jwks.testing import JWKSServer, Response, TestIssuer, generate_key
from tests.services import RedisServer

pytestmark = pytest.mark.faults

MB = 1024 * 1024


class Clock:
    """A clock the test moves by hand (the JWKS client takes it as a parameter)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Outcome:
    status: int
    code: str | None
    started: float
    elapsed: float
    retry_after: str | None = None


def timed_get(client: APIClient, token: str) -> Outcome:
    """GET /api/me with the token; time it; turn an escaped exception into status 0 (a failure)."""
    started = time.monotonic()
    try:
        response = client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    except Exception as exc:  # a 500 in a worker thread must be counted, not lost
        return Outcome(0, type(exc).__name__, started, time.monotonic() - started)
    code = response.json().get("code") if response.status_code != 200 else None
    return Outcome(response.status_code, code, started, time.monotonic() - started, response.get("Retry-After"))


def run_threads(count: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker hung"


# -- the IdP unreachable -------------------------------------------------------


def close_after_each_response(server: JWKSServer, issuer: TestIssuer) -> None:
    """Serve the JWKS with ``Connection: close``, so stopping the server really makes it unreachable.

    Otherwise the client's pooled keep-alive connection would still be answered by its handler thread.
    """
    body = json.dumps(issuer.jwks()).encode()
    server.respond("/jwks.json", Response(200, body, {"Content-Type": "application/json", "Connection": "close"}))


def test_idp_unreachable_for_6_hours_keeps_valid_tokens_passing_until_max_stale_then_503(oidc_settings, issuer, server):
    settings = oidc_settings()  # the defaults: fresh 300 s, stale for 21 600 s more, 5 s failure backoff
    assert "JWKS_MAX_STALE" not in settings and get_settings().jwks_max_stale == 21600
    clock = Clock()
    s = get_settings()
    client = JWKSClient(s.issuers[0], s, clock=clock)
    close_after_each_response(server, issuer)
    start = clock.now
    client.get_key(issuer.key.kid, "RS256")
    server.stop()  # the port is closed: every fetch fails at once with "connection refused"
    served = 0
    step = 300.0
    while clock.now + step < start + 300 + 21600:
        clock.now += step
        assert client.get_key(issuer.key.kid, "RS256").kid == issuer.key.kid, f"refused {clock.now - start:.0f}s in"
        served += 1
    clock.now = start + 300 + 21600 + 1
    with pytest.raises(KeySourceError):
        client.get_key(issuer.key.kid, "RS256")
    print(
        f"IdP down: keys served at {served} checkpoints over {(clock.now - start) / 3600:.2f} h, then 503; "
        f"{client.fetch_count - 1} fetch attempts"
    )
    assert served == 72
    # One attempt per checkpoint past freshness (each step is longer than the 5 s backoff), and the last one.
    assert client.fetch_count == 1 + 72 + 1


def test_idp_unreachable_through_the_api_serves_for_ttl_1s_plus_max_stale_2s_then_503(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=1, JWKS_MAX_STALE=2, JWKS_FAILURE_BACKOFF=0.5, HTTP_TIMEOUT=0.5, SYNC_USERS=False)
    api = APIClient()
    repeated = issuer.token()  # the same token each time exercises the memo's "key still current?" check
    close_after_each_response(server, issuer)
    t0 = time.monotonic()
    assert timed_get(api, repeated).status == 200
    server.stop()
    outcomes: list[tuple[float, Outcome]] = []
    while time.monotonic() - t0 < 4.5:
        for token in (repeated, issuer.token(sub=f"u{len(outcomes)}")):
            outcome = timed_get(api, token)
            outcomes.append((outcome.started - t0, outcome))
        time.sleep(0.05)
    last_200 = max(at for at, o in outcomes if o.status == 200)
    first_503 = min(at for at, o in outcomes if o.status == 503)
    print(f"IdP down: 200 until {last_200:.2f}s, 503 from {first_503:.2f}s (TTL 1s + JWKS_MAX_STALE 2s)")
    for at, o in outcomes:
        if at < 3 - 0.3:
            assert o.status == 200, (at, o)
        elif at > 3 + 0.3:
            assert (o.status, o.code) == (503, "idp_unavailable"), (at, o)
            assert o.retry_after is not None and int(o.retry_after) >= 1
        else:
            assert o.status in (200, 503), (at, o)


# -- the IdP slow ----------------------------------------------------------------


def test_slow_idp_with_16_threads_keeps_one_fetch_in_flight_and_answers_within_timeout_plus_half_a_second(
    oidc_settings, issuer, server
):
    timeout, margin = 0.5, 0.5
    oidc_settings(JWKS_CACHE_TTL=1, HTTP_TIMEOUT=timeout, JWKS_FAILURE_BACKOFF=1, SYNC_USERS=False)
    tokens = [issuer.token(sub=f"user-{i}") for i in range(16)]
    server.delay = 1.0  # twice the timeout; each handler is done before the 1 s backoff lets anyone retry

    # Cold cache: nothing to serve, so every request is a 503, but none waits past the timeout.
    barrier = threading.Barrier(16)
    cold: list[Outcome] = []

    def cold_worker(i: int) -> None:
        client = APIClient()
        barrier.wait()
        cold.append(timed_get(client, tokens[i]))

    run_threads(16, cold_worker)
    assert {(o.status, o.code) for o in cold} == {(503, "idp_unavailable")}
    cold_in_flight = server.max_in_flight

    # Warm, then stale while the IdP stays slow: 16 threads for 3 s, every answer a 200 from the stale keys.
    server.delay = 0
    time.sleep(1.1)  # the failure backoff of the cold phase ends
    assert timed_get(APIClient(), tokens[0]).status == 200
    server.delay = 1.0
    time.sleep(1.1)  # freshness (TTL 1 s) ends
    before, server.max_in_flight = server.total(), 0
    warm: list[Outcome] = []
    lock = threading.Lock()

    def warm_worker(i: int) -> None:
        client = APIClient()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            outcome = timed_get(client, tokens[i])
            with lock:
                warm.append(outcome)
            time.sleep(0.002)  # a breath between requests, as real clients take; 16 threads stay busy

    run_threads(16, warm_worker)
    worst_cold = max(o.elapsed for o in cold)
    worst_warm = max(o.elapsed for o in warm)
    attempts = server.total() - before
    print(
        f"slow IdP, 16 threads: cold cache {len(cold)} x 503, worst {worst_cold:.3f}s; "
        f"stale cache {len(warm)} x 200, worst {worst_warm:.3f}s; {attempts} fetch attempts in 3 s; "
        f"max in flight {max(cold_in_flight, server.max_in_flight)} (timeout {timeout}s)"
    )
    assert cold_in_flight == 1 and server.max_in_flight == 1
    assert worst_cold < timeout + margin, f"worst {worst_cold:.3f}s"
    assert {o.status for o in warm} == {200}
    assert worst_warm < timeout + margin, f"worst {worst_warm:.3f}s"
    assert 1 <= attempts <= 3  # one per (timeout + backoff), never one per request


# -- the IdP dripping: one byte every 0.2 s, without end -------------------------------


def endless_drip() -> Response:
    """A JWKS answer whose body (with its Content-Length) takes hours at one byte every 0.2 s."""
    return Response(200, b'{"keys": [' + b" " * 100_000 + b"]}", {"Content-Type": "application/json"}, drip=0.2)


class RefreshThreads:
    """Samples how many background refresh threads run at once (each one is waiting on the IdP)."""

    def __init__(self) -> None:
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            running = sum(1 for t in threading.enumerate() if t.name == "drf-oidc-jwks-refresh")
            self.most = max(self.most, running)
            time.sleep(0.01)

    def __enter__(self) -> RefreshThreads:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def test_dripping_idp_on_a_cold_cache_answers_8_threads_503_within_http_timeout_with_one_waiting_on_it(
    oidc_settings, issuer, server
):
    timeout = 1.0
    oidc_settings(HTTP_TIMEOUT=timeout, JWKS_FAILURE_BACKOFF=1, SYNC_USERS=False)
    server.respond("/jwks.json", endless_drip())
    barrier = threading.Barrier(8)
    cold: list[Outcome] = []

    def worker(i: int) -> None:
        client = APIClient()
        barrier.wait()
        cold.append(timed_get(client, issuer.token(sub=f"cold-{i}")))

    run_threads(8, worker)
    worst = max(o.elapsed for o in cold)
    print(
        f"dripping IdP, cold cache, 8 threads: {len(cold)} x 503, worst {worst:.2f}s "
        f"(HTTP_TIMEOUT {timeout}s); {server.max_in_flight} request(s) at the IdP at once"
    )
    assert {(o.status, o.code) for o in cold} == {(503, "idp_unavailable")}
    assert worst < timeout + 1.0, f"worst {worst:.2f}s"
    assert server.max_in_flight == 1  # one worker waits on the IdP; the others wait on that worker
    assert server.total() == 1


def test_dripping_idp_with_a_warm_expired_cache_answers_8_threads_from_stale_keys_and_one_thread_waits_on_it(
    oidc_settings, issuer, server
):
    from drf_oidc_jwks.jwks import REFRESH_WAIT

    timeout = 1.0
    oidc_settings(HTTP_TIMEOUT=timeout, JWKS_CACHE_TTL=1, JWKS_MAX_STALE=600, JWKS_FAILURE_BACKOFF=1, SYNC_USERS=False)
    assert timed_get(APIClient(), issuer.token()).status == 200  # warm
    server.respond("/jwks.json", endless_drip())
    time.sleep(1.1)  # freshness ends: the next request starts a refresh against the dripping IdP
    warm: list[Outcome] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        client = APIClient()
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            outcome = timed_get(client, issuer.token(sub=f"warm-{i}"))
            with lock:
                warm.append(outcome)
            time.sleep(0.005)

    with RefreshThreads() as refreshers:
        run_threads(8, worker)
    worst = max(o.elapsed for o in warm)
    slow = sum(1 for o in warm if o.elapsed > 0.1)
    print(
        f"dripping IdP, warm-expired cache, 8 threads: {len(warm)} answers, "
        f"statuses {sorted({o.status for o in warm})}, "
        f"worst {worst:.2f}s, {slow} waited over 0.1 s (for REFRESH_WAIT {REFRESH_WAIT}s); "
        f"{server.total() - 1} refresh attempts; at most {refreshers.most} refresh thread(s) and "
        f"{server.max_in_flight} request(s) at the IdP at once"
    )
    assert {o.status for o in warm} == {200}
    assert worst < min(REFRESH_WAIT, timeout) + 0.5, f"worst {worst:.2f}s"  # nobody waits out the drip
    assert refreshers.most == 1 and server.max_in_flight == 1
    assert 1 <= server.total() - 1 <= 2  # one attempt per HTTP_TIMEOUT + JWKS_FAILURE_BACKOFF, not per request


# -- the IdP answering garbage ----------------------------------------------------


def _weak_jwks() -> bytes:
    weak = generate_key("RS256", kid="weak", rsa_bits=1024, fresh=True)
    return json.dumps({"keys": [weak.public_jwk()]}).encode()


FAULTS: dict[str, Callable[[], Response]] = {
    "http-500": lambda: Response(500, b"Internal Server Error"),
    "http-502": lambda: Response(502, b"<html>Bad Gateway</html>"),
    "http-503-retry-after": lambda: Response(503, b"", {"Retry-After": "3600"}),
    "http-404": lambda: Response(404, b'{"error": "not found"}'),
    "html-login-page": lambda: Response(200, b"<html><body>Sign in</body></html>", {"Content-Type": "text/html"}),
    "truncated-json": lambda: Response(200, b'{"keys": [{"kty": "RSA", "n": "'),
    "random-bytes": lambda: Response(200, bytes(range(256)) * 4),
    "empty-keys": lambda: Response(200, b'{"keys": []}'),
    "symmetric-key-only": lambda: Response(200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'),
    "weak-rsa-only": lambda: Response(200, _weak_jwks()),
    "wrong-member-types": lambda: Response(200, b'{"keys": [{"kty": "RSA", "alg": ["RS256"], "n": 1}, null]}'),
    "redirect-loop": lambda: Response(302, b"", {"Location": "/jwks.json"}),
    "10-mb-declared": lambda: Response(200, b'{"keys": [' + b" " * (10 * MB) + b"]}"),
}


def test_idp_faults_keep_the_last_good_keys_and_every_request_answered_200(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=0.2, JWKS_MAX_STALE=600, JWKS_FAILURE_BACKOFF=0, SYNC_USERS=False)
    api = APIClient()
    assert timed_get(api, issuer.token()).status == 200
    answered: list[tuple[str, Outcome]] = []
    for name, fault in FAULTS.items():
        server.respond("/jwks.json", fault())
        before = server.total()
        time.sleep(0.25)  # freshness ends: every request below retries the IdP and gets the fault
        for i in range(5):
            answered.append((name, timed_get(api, issuer.token(sub=f"{name}-{i}"))))
        assert server.total() > before, f"{name}: the fault was never fetched"
    failures = [(name, o) for name, o in answered if o.status != 200]
    print(f"{len(FAULTS)} IdP faults x 5 requests: {len(answered) - len(failures)} x 200, {server.total()} fetches")
    assert failures == []
    # The IdP recovers with a rotated key: the next refresh takes it.
    server.respond("/jwks.json", None)
    new_key = issuer.add_key("RS256")
    time.sleep(0.25)
    assert timed_get(api, issuer.token(key=new_key)).status == 200


class StreamingServer:
    """A loopback server streaming an endless body (no Content-Length) after serving good keys once."""

    def __init__(self, good_body: bytes, stream_bytes: int) -> None:
        self.good_body = good_body
        self.stream_bytes = stream_bytes
        self.streaming = False
        self.sent = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if not owner.streaming:
                    self.send_header("Content-Length", str(len(owner.good_body)))
                    self.end_headers()
                    self.wfile.write(owner.good_body)
                    return
                self.end_headers()
                chunk = b" " * 65536  # one buffer, sent again and again: the server allocates nothing per chunk
                try:
                    self.wfile.write(b'{"keys": [')
                    while owner.sent < owner.stream_bytes:
                        self.wfile.write(chunk)
                        owner.sent += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/jwks.json"

    def __enter__(self) -> StreamingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def streaming(issuer: TestIssuer) -> Iterator[StreamingServer]:
    with StreamingServer(json.dumps(issuer.jwks()).encode(), 10 * MB) as srv:
        yield srv


@pytest.mark.parametrize("delivery", ["declared-content-length", "streamed-until-close"])
def test_10_mb_jwks_body_is_cut_at_max_bytes_and_memory_stays_under_4_mb_beyond_it(
    settings, issuer, server, streaming, delivery
):
    max_bytes = 512 * 1024
    jwks_url = streaming.url if delivery == "streamed-until-close" else server.url("/jwks.json")
    settings.DRF_OIDC_JWKS = issuer.settings(
        JWKS_URL=jwks_url, JWKS_CACHE_TTL=0.2, JWKS_FAILURE_BACKOFF=0, JWKS_MAX_BYTES=max_bytes, SYNC_USERS=False
    )
    api = APIClient()
    assert timed_get(api, issuer.token()).status == 200
    huge = b'{"keys": [' + b" " * (10 * MB) + b"]}"  # built before tracing: the server's copy is not ours
    server.respond("/jwks.json", Response(200, huge))
    streaming.streaming = True
    token = issuer.token(sub="after")
    time.sleep(0.25)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        outcome = timed_get(api, token)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(
        f"10 MB JWKS ({delivery}): answered {outcome.status} in {outcome.elapsed:.3f}s, "
        f"peak traced memory {peak / MB:.2f} MB (JWKS_MAX_BYTES {max_bytes / MB:.2f} MB), "
        f"server pushed {streaming.sent / MB:.2f} MB before the client hung up"
    )
    assert outcome.status == 200  # the last good keys stay
    assert peak < max_bytes + 4 * MB, f"peak {peak / MB:.2f} MB"
    if delivery == "streamed-until-close":
        assert streaming.sent > 0  # the stream really started


# -- key rotation under load ----------------------------------------------------------


def test_a_kid_published_while_a_refresh_is_in_flight_is_fetched_again_for_every_request(oidc_settings, issuer, server):
    # A background refresh (refresh-ahead, health/) asks the IdP just before a key is published; its answer
    # lacks the new kid. The token's request must not take that answer as its refetch (it did: unknown_key).
    oidc_settings(JWKS_REFRESH_COOLDOWN=60, SYNC_USERS=False)
    assert timed_get(APIClient(), issuer.token()).status == 200
    # The IdP answers that refresh slowly, with the key set as it was when it asked.
    before = Response(200, json.dumps(issuer.jwks()).encode(), {"Content-Type": "application/json"}, delay=0.4)
    server.respond("/jwks.json", before)
    client = get_client(get_settings().issuers[0])
    assert client.refresh_in_background(client.current_keyset())  # as refresh-ahead starts it
    deadline = time.monotonic() + 5
    while server.total() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    new_key = issuer.add_key("RS256")
    server.respond("/jwks.json", None)  # published from now on
    outcomes: list[Outcome] = []
    run_threads(4, lambda i: outcomes.append(timed_get(APIClient(), issuer.token(sub=f"u{i}", key=new_key))))
    assert [(o.status, o.code) for o in outcomes] == [(200, None)] * 4
    assert server.total() == 3  # the first fetch, the one in flight, and one refetch for the four requests
    assert (
        max(o.elapsed for o in outcomes) < 0.4 + get_settings().http_timeout
    )  # behind the one in flight, then its own


def test_key_rotation_under_8_threads_fails_no_token_signed_with_a_published_key(oidc_settings, issuer, server):
    # Cooldown 1 s (cache timeouts are whole seconds); rotations 1.5 s apart so each new kid may refetch.
    oidc_settings(JWKS_REFRESH_COOLDOWN=1, SYNC_USERS=False)
    server.delay = 0.03  # a real IdP takes a few tens of milliseconds: refreshes overlap with requests
    assert timed_get(APIClient(), issuer.token()).status == 200
    added: dict[str, float] = {issuer.key.kid: 0.0}
    removed: dict[str, float] = {}
    retired: list[Any] = []
    stop = threading.Event()
    results: list[tuple[str, Outcome]] = []
    lock = threading.Lock()

    def rotate() -> None:
        for _ in range(3):
            time.sleep(1.5)
            old, new = issuer.key, generate_key("RS256", fresh=False)
            added[new.kid] = time.monotonic()
            issuer.keys = [*issuer.keys, new]  # published, and signing with it from now on
            time.sleep(0.4)
            removed[old.kid] = time.monotonic()
            issuer.keys = [k for k in issuer.keys if k is not old]
            retired.append(old)
        time.sleep(0.5)
        stop.set()

    def worker(i: int) -> None:
        client = APIClient()
        n = 0
        while not stop.is_set():
            # Half the workers also replay tokens of the last retired key (issued before the rotation).
            key = retired[-1] if i % 2 and n % 2 and retired else issuer.key
            outcome = timed_get(client, issuer.token(sub=f"w{i}-{n}", key=key))
            n += 1
            with lock:
                results.append((key.kid or "", outcome))

    rotator = threading.Thread(target=rotate)
    rotator.start()
    run_threads(8, worker)
    rotator.join()

    def published_throughout(kid: str, o: Outcome) -> bool:
        return added[kid] <= o.started and (kid not in removed or o.started + o.elapsed < removed[kid])

    must_pass = [(kid, o) for kid, o in results if published_throughout(kid, o)]
    failures = [(kid, o.status, o.code) for kid, o in must_pass if o.status != 200]
    after_removal = [o for kid, o in results if not published_throughout(kid, o)]
    print(
        f"key rotation: {len(results)} requests over 3 rotations, {len(must_pass)} with a published key, "
        f"{len(failures)} failures; {len(after_removal)} with a key already removed "
        f"({sum(o.status == 200 for o in after_removal)} still accepted from the cached key set); "
        f"{server.total()} JWKS fetches"
    )
    assert failures == []
    assert {(o.status, o.code) for o in after_removal} <= {(200, None), (401, "unknown_key")}
    assert len(must_pass) > 100


# -- the cache server (Redis) stopped mid-run ------------------------------------------


@pytest.fixture
def redis_jwks_cache(settings: Any, redis_server: RedisServer) -> Iterator[redis.Redis]:
    """Django's built-in RedisCache on the real loopback Redis as ``jwks_redis``; yields a raw client to inspect it."""
    settings.CACHES = {
        **settings.CACHES,
        "jwks_redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_server.url},
    }
    raw = redis.Redis.from_url(redis_server.url)
    raw.flushdb()
    try:
        yield raw
    finally:
        raw.close()


def jwks_entries(raw: redis.Redis) -> list[bytes]:
    return [k for k in raw.keys("*drf_oidc_jwks*") if k.endswith(b":jwks")]


def test_redis_stopped_mid_run_serves_from_the_in_process_copy_with_4_threads_and_recovers(
    oidc_settings, issuer, server, redis_server, redis_jwks_cache
):
    oidc_settings(JWKS_CACHE_ALIAS="jwks_redis", JWKS_CACHE_TTL=1, SYNC_USERS=False)
    assert timed_get(APIClient(), issuer.token()).status == 200
    assert len(jwks_entries(redis_jwks_cache)) == 1  # the shared copy really lives in Redis
    phase = ["up"]
    results: list[tuple[str, Outcome]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(i: int) -> None:
        client = APIClient()
        n = 0
        while not stop.is_set():
            outcome = timed_get(client, issuer.token(sub=f"r{i}-{n}"))
            n += 1
            with lock:
                results.append((phase[0], outcome))
            time.sleep(0.005)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        fetches_before = server.total()
        with redis_server.stopped():
            phase[0] = "down"
            time.sleep(2.5)  # freshness (1 s) ends twice: keys are refetched without the shared cache
            fetches_down = server.total() - fetches_before
            phase[0] = "restarting"
        phase[0] = "back"
        time.sleep(2.2)  # the next refreshes (one per TTL) write the restarted, empty Redis again
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    by_phase = {p: [o for q, o in results if q == p] for p in ("up", "down", "back")}
    worst_down = max(o.elapsed for o in by_phase["down"])
    print(
        "Redis stopped for 2.5 s under 4 threads: "
        + ", ".join(f"{p} {len(v)} requests {sorted({o.status for o in v})}" for p, v in by_phase.items())
        + f"; worst while down {worst_down:.3f}s; {fetches_down} JWKS fetches while down"
    )
    assert {o.status for _, o in results} == {200}, {(o.status, o.code) for _, o in results if o.status != 200}
    assert all(len(v) > 20 for v in by_phase.values()), {p: len(v) for p, v in by_phase.items()}
    assert 1 <= fetches_down <= 5, fetches_down  # one per freshness period in this process, not one per request
    assert len(jwks_entries(redis_jwks_cache)) == 1  # recovered: the shared copy is back in Redis


def test_redis_down_with_a_cold_process_fetches_directly_or_answers_a_clean_503_and_recovers(
    oidc_settings, issuer, server, redis_server, redis_jwks_cache
):
    oidc_settings(JWKS_CACHE_ALIAS="jwks_redis", HTTP_TIMEOUT=0.5, JWKS_FAILURE_BACKOFF=1, SYNC_USERS=False)
    api = APIClient()
    with redis_server.stopped():
        # A process starting while Redis is down has no in-process copy: it fetches the IdP itself.
        assert timed_get(api, issuer.token()).status == 200
        # Redis and the IdP both down, nothing in the process: a clean 503, never a 500.
        jwks.reset_clients()
        tokens.reset_memo()
        server.respond("/jwks.json", Response(503, b"down"))
        hits = server.total()
        outcomes = [timed_get(api, issuer.token(sub=f"u{i}")) for i in range(10)]
        assert {(o.status, o.code) for o in outcomes} == {(503, "idp_unavailable")}
        assert all(o.retry_after is not None and int(o.retry_after) >= 1 for o in outcomes)
        idp_hits = server.total() - hits
        worst = max(o.elapsed for o in outcomes)
        server.respond("/jwks.json", None)
    print(f"Redis and IdP down: 10 x 503 in at most {worst:.3f}s each, {idp_hits} IdP requests")
    assert worst < 0.5 + 0.5
    assert idp_hits == 1  # the failure backoff holds in-process while the shared marker cannot be stored
    # Both back: once the failure backoff (Retry-After) has passed, the next request fetches again,
    # and the shared copy is in Redis again.
    time.sleep(max(0.0, outcomes[0].started + 1.05 - time.monotonic()))
    assert timed_get(api, issuer.token(sub="after")).status == 200
    assert len(jwks_entries(redis_jwks_cache)) == 1
