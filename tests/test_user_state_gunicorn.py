"""Two real gunicorn workers sharing Redis and PostgreSQL: a user deactivated by another process is refused by
both within USER_LOCAL_CACHE_TTL, while their steady state runs no query.

The deactivation is a ``user.save()`` in a third process (``manage.py shell``, as an admin or a management
command would do it): its receivers forget the shared state and bump the shared generation; each worker
reads the counter at most every USER_LOCAL_CACHE_TTL seconds and then drops its copies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from drf_oidc_jwks.settings_keys import GLOBAL_KEYS
from drf_oidc_jwks.testing import TestIssuer
from tests.services import PostgresServer
from tests.services import gunicorn as gunicorn_server

ROOT = Path(__file__).resolve().parent.parent
AUD = "https://api.test"
BOUND = float(GLOBAL_KEYS["USER_LOCAL_CACHE_TTL"])  # the documented bound, at its default
SLACK = 1.5

SET_ACTIVE = """
import time
from django.contrib.auth import get_user_model
from drf_oidc_jwks.models import OIDCIdentity
user = OIDCIdentity.objects.select_related("user").get(subject="{sub}").user
user.is_active = {active}
user.save()
print(time.time())
"""


@pytest.fixture
def served(redis_server, tmp_path) -> Iterator[tuple[str, TestIssuer, dict[str, str]]]:
    issuer = TestIssuer(audience=AUD)
    with PostgresServer() as pg, issuer.serve() as jwks_server:
        env = {
            **os.environ,
            "DATABASE_URL": pg.url,
            "CACHE_URL": redis_server.cache_url.replace("/0", "/5"),
            "VAR_DIR": str(tmp_path),
            "OIDC_ISSUER": issuer.issuer,
            "OIDC_JWKS_URL": jwks_server.url("/jwks.json"),
            "OIDC_AUDIENCE": AUD,
            "OIDC_SYNC_USERS": "true",
            "OIDC_LOG_LEVEL": "WARNING",
            "DEBUG": "false",
            "SERVED_BY_HEADER": "true",
            "DB_QUERIES_HEADER": "true",
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
        }
        import redis

        redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/5").flushdb()
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        with gunicorn_server(env) as url:
            yield url, issuer, env


def get(url: str, token: str) -> tuple[int, str, str, int]:
    # A new connection per request, so both workers take turns accepting.
    with requests.Session() as s:
        r = s.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        code = r.json().get("code", "") if r.status_code != 200 else ""
        return r.status_code, r.headers["X-Served-By"], code, int(r.headers["X-DB-Queries"])


def steady(url: str, token: str) -> dict[str, list[int]]:
    """Requests until both workers answered 200 a few times; the queries each ran, per worker."""
    seen: dict[str, list[int]] = {}
    deadline = time.monotonic() + 30
    while (len(seen) < 2 or min(len(q) for q in seen.values()) < 4) and time.monotonic() < deadline:
        status, worker, _, queries = get(url, token)
        assert status == 200
        seen.setdefault(worker, []).append(queries)
    assert len(seen) == 2, "both workers must answer"
    return seen


def set_active(env: dict[str, str], sub: str, active: bool) -> float:
    code = SET_ACTIVE.format(sub=sub, active=active)
    argv = [sys.executable, "manage.py", "shell", "-c", code]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def first_answers(url: str, token: str, status: int, since: float) -> dict[str, float]:
    """Seconds from ``since`` (wall clock) until each worker first answers ``status``; none goes back after."""
    first: dict[str, float] = {}
    while len(first) < 2 and time.time() - since < BOUND + SLACK + 2:
        got, worker, code, _ = get(url, token)
        if got == status:
            if status == 401:
                assert code == "user_inactive"
            first.setdefault(worker, time.time() - since)
        else:
            assert worker not in first, "a worker went back to the old answer"
        time.sleep(0.02)
    assert len(first) == 2, first
    return first


@pytest.mark.slow
@pytest.mark.services
def test_a_user_deactivated_by_another_process_is_refused_by_both_workers_within_user_local_cache_ttl(served):
    url, issuer, env = served
    delays: list[float] = []
    for sub in ("alice", "carol"):
        token = issuer.token(sub=sub, email=f"{sub}@example.com")
        bystander = issuer.token(sub=f"{sub}-colleague")
        steady(url, bystander)
        queries = steady(url, token)
        # The first request of each worker may read the database; the steady state reads nothing.
        assert all(q[-3:] == [0, 0, 0] for q in queries.values()), queries
        refused = first_answers(url, token, 401, set_active(env, sub, False))
        assert get(url, bystander)[0] == 200
        accepted = first_answers(url, token, 200, set_active(env, sub, True))
        delays += [max(refused.values()), max(accepted.values())]
    print(f"user state propagation across two gunicorn workers (USER_LOCAL_CACHE_TTL {BOUND:g}s): {delays}")
    assert max(delays) <= BOUND + SLACK
