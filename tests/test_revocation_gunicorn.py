"""Two real gunicorn workers sharing Redis: a back-channel logout received by one is enforced by both.

The revocation is made through one worker (the one that receives the logout token); the other learns it
at its next poll of the shared generation counter, so both refuse the old token within REVOCATION_POLL.
"""

from __future__ import annotations

import os
import time
import uuid
from urllib.parse import urlencode

import pytest
import requests

from drf_oidc_jwks.backchannel import LOGOUT_EVENT
from drf_oidc_jwks.revocation import DEFAULT_POLL
from drf_oidc_jwks.testing import TestIssuer
from tests.services import gunicorn as gunicorn_server

AUD = "https://api.test"
RP = "rp-client"
SLACK = 1.5


@pytest.fixture
def served(redis_server, tmp_path):
    issuer = TestIssuer(audience=AUD)
    with issuer.serve() as jwks_server:
        env = {
            **os.environ,
            "CACHE_URL": redis_server.cache_url.replace("/0", "/4"),
            "VAR_DIR": str(tmp_path),
            "OIDC_ISSUER": issuer.issuer,
            "OIDC_JWKS_URL": jwks_server.url("/jwks.json"),
            "OIDC_AUDIENCE": AUD,
            "OIDC_SYNC_USERS": "false",
            "OIDC_BACKCHANNEL_LOGOUT_AUDIENCE": RP,
            "OIDC_LOG_LEVEL": "WARNING",
            "DEBUG": "false",
            "SERVED_BY_HEADER": "true",
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
        }
        env.pop("DATABASE_URL", None)
        import redis

        redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/4").flushdb()
        with gunicorn_server(env) as url:
            yield url, issuer


def get(url: str, token: str) -> tuple[int, str, str]:
    # A new connection per request, so both workers take turns accepting.
    with requests.Session() as s:
        r = s.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        code = r.json().get("code", "") if r.status_code != 200 else ""
        return r.status_code, r.headers["X-Served-By"], code


def warm(url: str, token: str) -> set[str]:
    workers: set[str] = set()
    deadline = time.monotonic() + 20
    while len(workers) < 2 and time.monotonic() < deadline:
        status, worker, _ = get(url, token)
        assert status == 200
        workers.add(worker)
    assert len(workers) == 2, "both workers must answer"
    return workers


def logout(url: str, issuer: TestIssuer, sub: str) -> str:
    token = issuer.token(
        sub, aud=RP, events={LOGOUT_EVENT: {}}, jti=uuid.uuid4().hex, sid=f"sid-{sub}", headers={"typ": "logout+jwt"}
    )
    r = requests.post(
        f"{url}/backchannel-logout/",
        data=urlencode({"logout_token": token}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return r.headers["X-Served-By"]


@pytest.mark.slow
def test_a_logout_through_one_worker_is_enforced_by_both_within_revocation_poll(served):
    url, issuer = served
    delays = []
    for sub in ("alice", "carol"):
        old = issuer.token(sub, sid=f"sid-{sub}", iat=int(time.time()) - 5)
        bystander = issuer.token(f"{sub}-colleague", iat=int(time.time()) - 5)
        warm(url, old)
        receiver = logout(url, issuer, sub)
        done = time.monotonic()
        first_refusal: dict[str, float] = {}
        while len(first_refusal) < 2 and time.monotonic() - done < DEFAULT_POLL + SLACK + 1:
            status, worker, code = get(url, old)
            if status == 401:
                assert code == "token_revoked"
                first_refusal.setdefault(worker, time.monotonic() - done)
            else:
                assert worker not in first_refusal, "a worker that refused the token accepted it again"
                assert worker != receiver, "the worker that received the logout must enforce it at once"
            time.sleep(0.02)
        assert len(first_refusal) == 2, first_refusal
        delays.append(max(first_refusal.values()))
        assert get(url, bystander)[0] == 200
        fresh = issuer.token(sub, sid=f"sid-{sub}-new", iat=int(time.time()) + 2)
        assert get(url, fresh)[0] == 200
    print(f"revocation propagation across two gunicorn workers (REVOCATION_POLL {DEFAULT_POLL:g}s): {delays}")
    assert max(delays) <= DEFAULT_POLL + SLACK
