"""contrib.prometheus: bounded labels in-process, and counters that add up across real gunicorn workers."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from drf_oidc_jwks import signals
from drf_oidc_jwks.contrib.prometheus import metrics
from drf_oidc_jwks.testing import TestIssuer
from tests.services import gunicorn as gunicorn_server

AUD = "https://api.test"


@pytest.fixture
def connected() -> Iterator[None]:
    metrics.connect()
    yield
    for signal, receiver in metrics.RECEIVERS:
        signal.disconnect(receiver, dispatch_uid=f"drf_oidc_jwks.prometheus.{receiver.__name__}")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_labels_take_issuers_from_configuration_and_codes_from_the_registry(oidc_settings, issuer, call, connected):
    before = {
        "expired": value("drf_oidc_jwks_tokens_refused_total", issuer=issuer.issuer, code="token_expired"),
        "foreign": value("drf_oidc_jwks_tokens_refused_total", issuer="other", code="invalid_issuer"),
        "verified": value("drf_oidc_jwks_tokens_verified_total", issuer=issuer.issuer),
        "fetched": value("drf_oidc_jwks_jwks_fetches_total", issuer=issuer.issuer, result="ok"),
    }
    assert call(issuer.token()).status_code == 200
    assert call(issuer.expired_token()).status_code == 401
    assert call(issuer.token(iss="https://attacker.example/one")).status_code == 401
    assert call(issuer.token(iss="https://attacker.example/two")).status_code == 401
    signals.emit(signals.token_refused, None, code="made_up_code", issuer="https://attacker.example/three")
    assert (
        value("drf_oidc_jwks_tokens_refused_total", issuer=issuer.issuer, code="token_expired") == before["expired"] + 1
    )
    assert value("drf_oidc_jwks_tokens_refused_total", issuer="other", code="invalid_issuer") == before["foreign"] + 2
    assert value("drf_oidc_jwks_tokens_refused_total", issuer="other", code="other") >= 1
    assert value("drf_oidc_jwks_tokens_verified_total", issuer=issuer.issuer) == before["verified"] + 1
    assert value("drf_oidc_jwks_jwks_fetches_total", issuer=issuer.issuer, result="ok") == before["fetched"] + 1
    assert value("drf_oidc_jwks_jwks_fetch_duration_seconds_count", issuer=issuer.issuer) >= 1
    issuers = {
        s.labels.get("issuer") for f in REGISTRY.collect() if f.name.startswith("drf_oidc_jwks_") for s in f.samples
    }
    assert not any(i and "attacker" in i for i in issuers)
    assert value("drf_oidc_jwks_jwks_keys", issuer=issuer.issuer) == 1
    assert 0 <= value("drf_oidc_jwks_jwks_age_seconds", issuer=issuer.issuer) < 10


# -- real gunicorn, multiprocess mode -----------------------------------------


@pytest.fixture
def metered(redis_server, tmp_path) -> Iterator[tuple[str, TestIssuer]]:
    issuer = TestIssuer(audience=AUD)
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    with issuer.serve() as jwks_server:
        env = {
            **os.environ,
            "CACHE_URL": redis_server.cache_url.replace("/0", "/4"),
            "VAR_DIR": str(tmp_path),
            "OIDC_ISSUER": issuer.issuer,
            "OIDC_JWKS_URL": jwks_server.url("/jwks.json"),
            "OIDC_AUDIENCE": AUD,
            "OIDC_SYNC_USERS": "false",
            "OIDC_LOG_LEVEL": "WARNING",
            "DEBUG": "false",
            "SERVED_BY_HEADER": "true",
            "PROMETHEUS_METRICS": "true",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
        }
        env.pop("DATABASE_URL", None)
        import redis

        redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/4").flushdb()
        with gunicorn_server(env) as url:
            yield url, issuer


def send(url: str, headers: list[str | None]) -> tuple[Counter[int], set[str]]:
    def one(header: str | None) -> tuple[int, str]:
        with requests.Session() as s:
            sent = {"Authorization": header} if header else {}
            r = s.get(f"{url}/api/me", headers=sent, timeout=15)
            return r.status_code, r.headers.get("X-Served-By", "")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, headers))
    return Counter(s for s, _ in results), {w for _, w in results}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{url}/metrics", timeout=15).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.slow
def test_scraped_counters_add_up_across_two_gunicorn_workers(metered):
    url, issuer = metered
    good = [issuer.token(sub=f"user{i}") for i in range(20)]
    headers: list[str | None] = [f"Bearer {t}" for t in good * 3]  # 60 verified, the repeats may hit a memo
    headers += [f"Bearer {issuer.expired_token(sub=f'old{i}')}" for i in range(7)]
    headers += [f"Bearer {issuer.token(aud='https://elsewhere')}" for _ in range(5)]
    headers += ["Bearer not-a-jwt"] * 3
    headers += [f"Bearer {issuer.token(iss=f'https://attacker.example/{i}')}" for i in range(4)]
    statuses, workers = send(url, headers)
    assert statuses == Counter({200: 60, 401: 19})
    assert len(workers) == 2, "both workers must have answered"
    scrapes = [scrape(url) for _ in range(4)]  # whichever worker answers, the sums are the same
    counted = [{k: v for k, v in t.items() if k[0].endswith("_total")} for t in scrapes]
    assert all(c == counted[0] for c in counted[1:])
    scraped = scrapes[-1]
    iss = issuer.issuer

    def get(name: str, **labels: str) -> float:
        return scraped.get((name, tuple(sorted(labels.items()))), 0.0)

    summary = {
        "verified": get("drf_oidc_jwks_tokens_verified_total", issuer=iss),
        "memo hit": get("drf_oidc_jwks_token_memo_lookups_total", result="hit"),
        "memo miss": get("drf_oidc_jwks_token_memo_lookups_total", result="miss"),
        "token_expired": get("drf_oidc_jwks_tokens_refused_total", issuer=iss, code="token_expired"),
        "invalid_audience": get("drf_oidc_jwks_tokens_refused_total", issuer=iss, code="invalid_audience"),
        "malformed_token": get("drf_oidc_jwks_tokens_refused_total", issuer="other", code="malformed_token"),
        "invalid_issuer": get("drf_oidc_jwks_tokens_refused_total", issuer="other", code="invalid_issuer"),
        "jwks ok": get("drf_oidc_jwks_jwks_fetches_total", issuer=iss, result="ok"),
        "fetch count": get("drf_oidc_jwks_jwks_fetch_duration_seconds_count", issuer=iss),
    }
    print("scraped across 2 workers:", summary)
    assert summary["verified"] == 60
    assert summary["memo hit"] + summary["memo miss"] == 60 and summary["memo hit"] >= 1
    assert (summary["token_expired"], summary["invalid_audience"]) == (7, 5)
    assert (summary["malformed_token"], summary["invalid_issuer"]) == (3, 4)
    assert summary["jwks ok"] >= 1 and summary["fetch count"] == summary["jwks ok"]
    assert get("drf_oidc_jwks_jwks_keys", issuer=iss) == 1
    assert not any("attacker" in dict(labels).get("issuer", "") for _, labels in scraped)
    assert len({n for n, _ in scraped if n.startswith("drf_oidc_jwks_")}) >= 8
