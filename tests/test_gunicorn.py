"""Two real gunicorn worker processes sharing Redis: one JWKS fetch per TTL in total, cooldown shared."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from drf_oidc_jwks.testing import TestIssuer
from tests.services import gunicorn as gunicorn_server

ROOT = Path(__file__).resolve().parent.parent
AUD = "https://api.test"
TTL = 2


@pytest.fixture
def gunicorn(request, redis_server, tmp_path):
    ttl = getattr(request, "param", TTL)
    issuer = TestIssuer(audience=AUD)
    with issuer.serve() as jwks_server:
        env = {
            **os.environ,
            "CACHE_URL": redis_server.cache_url.replace("/0", "/3"),
            "VAR_DIR": str(tmp_path),
            "OIDC_ISSUER": issuer.issuer,
            "OIDC_JWKS_URL": jwks_server.url("/jwks.json"),
            "OIDC_AUDIENCE": AUD,
            "OIDC_SYNC_USERS": "false",
            "OIDC_JWKS_CACHE_TTL": str(ttl),
            "OIDC_JWKS_REFRESH_COOLDOWN": "60",
            "OIDC_TOKEN_CACHE_TTL": "0",  # every request goes to the key lookup
            "OIDC_LOG_LEVEL": "WARNING",
            "DEBUG": "false",
            "SERVED_BY_HEADER": "true",
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
        }
        env.pop("DATABASE_URL", None)
        with gunicorn_server(env) as url:
            import redis

            redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/3").flushdb()
            yield url, issuer, jwks_server


def hammer(url: str, tokens: list[str], threads: int = 8) -> tuple[list[int], set[str]]:
    def one(token: str) -> tuple[int, str]:
        with requests.Session() as s:
            r = s.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=15)
            return r.status_code, r.headers.get("X-Served-By", "")

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, tokens))
    return [s for s, _ in results], {w for _, w in results}


@pytest.mark.slow
def test_two_gunicorn_workers_share_one_jwks_fetch_per_ttl(gunicorn):
    url, issuer, jwks_server = gunicorn
    started = time.monotonic()
    statuses: list[int] = []
    workers: set[str] = set()
    while time.monotonic() - started < 3 * TTL + 0.5:
        s, w = hammer(url, [issuer.token(sub=f"u{i}") for i in range(40)])
        statuses += s
        workers |= w
    elapsed = time.monotonic() - started
    fetches = jwks_server.total()
    print(f"{len(statuses)} requests over {elapsed:.1f}s by {len(workers)} workers, TTL {TTL}s: {fetches} JWKS fetches")
    assert set(statuses) == {200}
    assert len(workers) == 2
    # One fetch per TTL for both workers together; two independent caches would make about twice as many.
    assert fetches <= elapsed / TTL + 1, f"{fetches} fetches in {elapsed:.1f}s with TTL {TTL}s"
    assert fetches >= 2


@pytest.mark.slow
@pytest.mark.parametrize("gunicorn", [300], indirect=True)  # no TTL refresh during the flood
def test_unknown_kid_flood_from_both_workers_adds_one_fetch_per_cooldown(gunicorn):
    url, issuer, jwks_server = gunicorn
    statuses, workers = hammer(url, [issuer.token() for _ in range(20)])
    assert set(statuses) == {200}
    before = jwks_server.total()
    flood = [issuer.token(headers={"kid": uuid.uuid4().hex}) for _ in range(400)]
    statuses, workers = hammer(url, flood)
    added = jwks_server.total() - before
    print(f"unknown-kid flood: 400 tokens over {len(workers)} workers -> {added} extra JWKS fetch(es)")
    assert set(statuses) == {401}
    assert len(workers) == 2
    assert added == 1
