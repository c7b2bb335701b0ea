"""health/, manage.py oidc_warm, conditional revalidation, refresh-ahead and tracing, against the loopback IdP."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from drf_oidc_jwks import background, signals
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.jwks import JWKSClient, get_client
from drf_oidc_jwks.testing import TestIssuer
from drf_oidc_jwks.testserver import Response

AUD = "https://api.test"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# -- health/ -------------------------------------------------------------------


def test_health_is_503_before_keys_are_had_and_starts_one_background_refresh(oidc_settings, server, api):
    answer = api.get("/health/")
    assert answer.status_code == 503
    assert answer.json() == {
        "ready": False,
        "issuers": [{"issuer": get_settings().issuers[0].issuer, "state": "missing", "age": None, "kids": 0}],
    }
    assert answer["Cache-Control"] == "no-store"
    assert wait_for(lambda: api.get("/health/").status_code == 200)
    assert server.total() == 1  # the probes meanwhile started no second fetch


def test_a_probe_that_saw_no_keys_starts_no_fetch_once_a_refresh_made_them_fresh(oidc_settings, issuer, server):
    # health/ read "missing", then the refresh it had started finished before its next probe looked: the
    # probe's refresh must not fetch again (it did, memo in hand: two fetches for one cold start).
    client = get_client(get_settings().issuers[0])
    client.store(issuer.jwks())  # what that refresh left: fresh keys, in the cache and in this process
    assert client.refresh_in_background()
    background.join_all()
    assert server.total() == 0


def test_health_is_200_with_fresh_keys_and_never_fetches_per_probe(oidc_settings, issuer, server, api, call):
    assert call(issuer.token()).status_code == 200
    for _ in range(5):
        answer = api.get("/health/")
        assert answer.status_code == 200
    [detail] = answer.json()["issuers"]
    assert detail["state"] == "fresh" and detail["kids"] == 1 and 0 <= detail["age"] < 5
    assert server.total() == 1
    assert set(detail) == {"issuer", "state", "age", "kids"}  # no URL, no cache location, no key material


def test_health_is_200_on_stale_keys_within_max_stale_and_503_past_it(oidc_settings, issuer, server, api):
    server.respond("/jwks.json", Response(500, b"{}"))
    oidc_settings(JWKS_MAX_STALE=60)
    get_client(get_settings().issuers[0]).store(issuer.jwks(), ttl=0)
    answer = api.get("/health/")
    assert answer.status_code == 200 and answer.json()["issuers"][0]["state"] == "stale"
    oidc_settings(JWKS_MAX_STALE=0)
    get_client(get_settings().issuers[0]).store(issuer.jwks(), ttl=0)
    answer = api.get("/health/")
    assert answer.status_code == 503 and answer.json()["issuers"][0]["state"] == "expired"


# -- oidc_warm -----------------------------------------------------------------


def test_oidc_warm_fills_the_shared_cache_through_discovery(settings, issuer, server, capsys):
    settings.DRF_OIDC_JWKS = {"ISSUER": issuer.issuer, "AUDIENCE": AUD}  # no JWKS_URL: discovery first
    call_command("oidc_warm")
    out = capsys.readouterr().out
    assert f"ok {issuer.issuer}: 1 key(s) ({issuer.key.kid})" in out
    assert server.total("/.well-known/openid-configuration") == 1 and server.total() == 1
    snapshot = get_client(get_settings().issuers[0]).snapshot()
    assert snapshot.jwks is not None and snapshot.jwks.kids == (issuer.key.kid,)
    assert snapshot.discovered_jwks_uri == server.url("/jwks.json")


def test_oidc_warm_names_each_failing_issuer_and_exits_non_zero(settings, issuer, server, capsys):
    other = TestIssuer(audience=AUD)
    with other.serve() as broken:
        broken.respond("/jwks.json", Response(503, b"down"))
        settings.DRF_OIDC_JWKS = {
            "AUDIENCE": AUD,
            "ISSUERS": [
                {"ISSUER": issuer.issuer, "JWKS_URL": server.url("/jwks.json")},
                {"ISSUER": other.issuer, "JWKS_URL": broken.url("/jwks.json")},
            ],
        }
        with pytest.raises(CommandError, match="1 issuer"):
            call_command("oidc_warm")
    captured = capsys.readouterr()
    assert f"ok {issuer.issuer}" in captured.out
    assert f"FAILED {other.issuer}: HTTP 503" in captured.err


# -- conditional revalidation --------------------------------------------------


def test_a_304_renews_freshness_with_the_same_parsed_keys(oidc_settings, issuer, server):
    server.conditional = True
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    s = get_settings()
    clock = Clock()
    client = JWKSClient(s.issuers[0], s, clock=clock)
    fetched: list[dict[str, Any]] = []

    def record(sender: Any, **kwargs: Any) -> None:
        fetched.append(kwargs)

    signals.jwks_fetched.connect(record, weak=False)
    try:
        first = client.get_key(issuer.key.kid, "RS256")
        assert "if-none-match" not in {k.lower() for k in server.last_headers["/jwks.json"]}
        clock.now += 61
        again = client.get_key(issuer.key.kid, "RS256")
    finally:
        signals.jwks_fetched.disconnect(record)
    sent = {k.lower(): v for k, v in server.last_headers["/jwks.json"].items()}
    assert sent["if-none-match"].startswith('"') and sent["if-modified-since"].endswith("GMT")
    assert server.not_modified == 1 and [f["status"] for f in fetched] == [200, 304]
    assert again is first  # not re-parsed
    assert client.current_keyset().fresh_until == pytest.approx(clock.now + 60)


def test_a_changed_jwks_answers_200_to_the_conditional_request_and_its_new_keys_serve(oidc_settings, issuer, server):
    server.conditional = True
    oidc_settings(JWKS_CACHE_TTL=60, JWKS_REFRESH_AHEAD=0)
    s = get_settings()
    clock = Clock()
    client = JWKSClient(s.issuers[0], s, clock=clock)
    client.get_key(issuer.key.kid, "RS256")
    new = issuer.add_key("RS256")
    clock.now += 61
    assert client.get_key(new.kid, "RS256").kid == new.kid
    assert server.not_modified == 0 and server.total() == 2


# -- refresh-ahead -------------------------------------------------------------


def test_refresh_ahead_refreshes_once_in_the_background_while_requests_use_the_current_keys(
    oidc_settings, issuer, server
):
    oidc_settings(JWKS_CACHE_TTL=100, JWKS_REFRESH_AHEAD=10)
    s = get_settings()
    clock = Clock()
    client = JWKSClient(s.issuers[0], s, clock=clock)
    old = client.current_keyset()
    new = issuer.add_key("RS256")
    server.delay = 1.5  # a slow IdP: the refresh takes seconds
    clock.now += 95  # inside the 10 s window before freshness ends
    started = time.monotonic()
    answers = []
    while time.monotonic() - started < 1.0:
        answers.append(client.current_keyset())
        clock.now += 0.01
    assert all(a is old for a in answers), "a request saw anything but the current keys during the refresh"
    assert len(answers) > 50, "requests waited for the refresh"
    assert background.running(client.state.prefix)
    background.join_all(5)
    assert server.total() == 2  # the first fetch, and exactly one refresh
    clock.now += 1.5  # past AHEAD_RECHECK: the process looks again and finds the refreshed keys
    assert client.get_key(new.kid, "RS256").kid == new.kid
    assert server.total() == 2


def test_refresh_ahead_is_off_at_zero(oidc_settings, issuer, server):
    oidc_settings(JWKS_CACHE_TTL=100, JWKS_REFRESH_AHEAD=0)
    s = get_settings()
    clock = Clock()
    client = JWKSClient(s.issuers[0], s, clock=clock)
    client.current_keyset()
    clock.now += 99.9
    client.current_keyset()
    assert not background.running(client.state.prefix) and server.total() == 1


# -- OpenTelemetry -------------------------------------------------------------


@pytest.fixture(scope="module")
def spans() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # set once per process: mutmut runs two sessions in one
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_outbound_calls_are_client_spans_with_host_and_status(spans, settings, issuer, server, call):
    spans.clear()
    settings.DRF_OIDC_JWKS = {"ISSUER": issuer.issuer, "AUDIENCE": AUD}
    assert call(issuer.token()).status_code == 200
    finished = [
        (s.attributes["url.path"], s.attributes["server.address"], s.attributes["http.response.status_code"])
        for s in spans.get_finished_spans()
    ]
    assert finished == [("/.well-known/openid-configuration", "127.0.0.1", 200), ("/jwks.json", "127.0.0.1", 200)]


def test_a_refusal_adds_an_event_to_the_current_span(spans, oidc_settings, issuer, call):
    from opentelemetry import trace

    spans.clear()
    with trace.get_tracer("tests").start_as_current_span("request"):
        assert call(issuer.expired_token()).status_code == 401
    [request] = [s for s in spans.get_finished_spans() if s.name == "request"]
    assert [(e.name, dict(e.attributes)) for e in request.events] == [
        ("drf_oidc_jwks.token_refused", {"code": "token_expired", "issuer": issuer.issuer})
    ]


# -- background refreshes at interpreter exit -----------------------------------

EXIT_SCRIPT = """
import sys, time
from pathlib import Path
from drf_oidc_jwks import background

def refresh():
    time.sleep(float(sys.argv[2]))
    Path(sys.argv[1]).write_text("stored")

assert background.start("issuer", refresh)
assert not background.start("issuer", refresh)  # one per issuer per process
"""


@pytest.mark.parametrize(("seconds", "finished"), [(0.3, True), (30.0, False)])
def test_a_refresh_running_at_exit_is_joined_but_never_holds_the_interpreter_past_exit_wait(
    tmp_path, seconds, finished
):
    import subprocess
    import sys
    from pathlib import Path

    marker = tmp_path / "stored"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(marker), str(seconds)],
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=20,
    )
    elapsed = time.monotonic() - started
    assert marker.exists() is finished  # a refresh about to finish still stores its keys
    assert elapsed < background.EXIT_WAIT + 3  # a stuck one is left behind after EXIT_WAIT
