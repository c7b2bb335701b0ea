"""Two real gunicorn workers sharing Redis, through /api/me and JWKSAuthentication: a DPoP proof is accepted once in
total, a nonce of one worker is good on the other, and (the control) two workers with per-process LocMemCache each
accept the same proof."""

from __future__ import annotations

import http.client
import os
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import redis
import requests

from drf_oidc_jwks.testing import DPoPKey, TestIssuer
from tests.services import RedisServer
from tests.services import gunicorn as gunicorn_server

AUD = "https://api.test"
KEY = DPoPKey()
pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=[])]


@pytest.fixture(scope="module")
def idp() -> Iterator[tuple[TestIssuer, str]]:
    """The issuer whose DPoP-bound tokens the workers verify, its JWKS on a loopback server."""
    issuer = TestIssuer(audience=AUD)
    with issuer.serve() as jwks_server:
        yield issuer, jwks_server.url("/jwks.json")


@pytest.fixture(scope="module")
def token(idp: tuple[TestIssuer, str]) -> str:
    return idp[0].token(sub="dpop-worker", cnf=KEY.cnf(), expires_in=600)


def _env(tmp_path: os.PathLike[str], cache_url: str, idp: tuple[TestIssuer, str], **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CACHE_URL": cache_url,
        "VAR_DIR": str(tmp_path),
        "OIDC_ISSUER": idp[0].issuer,
        "OIDC_JWKS_URL": idp[1],
        "OIDC_AUDIENCE": AUD,
        "OIDC_SYNC_USERS": "false",
        "OIDC_LOG_LEVEL": "WARNING",
        "SERVED_BY_HEADER": "true",
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        **extra,
    }
    env.pop("DATABASE_URL", None)
    return env


def _redis(redis_server: RedisServer, db: int) -> str:
    redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + f"/{db}").flushdb()
    return redis_server.cache_url.replace("/0", f"/{db}")


@pytest.fixture
def shared(redis_server: RedisServer, tmp_path, idp) -> Iterator[str]:
    """The testproject under two gunicorn workers whose cache is one real Redis."""
    with gunicorn_server(_env(tmp_path, _redis(redis_server, 4), idp)) as url:
        yield url


@pytest.fixture
def nonces(redis_server: RedisServer, tmp_path, idp) -> Iterator[str]:
    """The same, with DPOP_NONCE on."""
    with gunicorn_server(_env(tmp_path, _redis(redis_server, 5), idp, OIDC_DPOP_NONCE="true")) as url:
        yield url


@pytest.fixture
def separate(tmp_path, idp) -> Iterator[str]:
    """The same two workers, each with its own in-process LocMemCache."""
    with gunicorn_server(_env(tmp_path, "locmemcache://dpop-gunicorn", idp)) as url:
        yield url


def send(url: str, token: str, proof: str) -> tuple[int, dict[str, object], dict[str, str]]:
    # A new connection per request, so the kernel hands requests to both workers.
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof, "Connection": "close"}
    response = requests.get(url + "/api/me", headers=headers, timeout=15)
    body = response.json()
    body["pid"] = response.headers.get("X-Served-By")
    return response.status_code, body, dict(response.headers)


def proofs(url: str, token: str, n: int, **claims: object) -> list[str]:
    return [KEY.proof("GET", url + "/api/me", access_token=token, **claims) for _ in range(n)]


def flood(url: str, token: str, sent: list[str], copies: int) -> dict[str, list[tuple[int, object]]]:
    """Send each proof ``copies`` times, all at once; return (status, pid) per proof."""
    jobs = [p for p in sent for _ in range(copies)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: send(url, token, p), jobs))
    by_proof: dict[str, list[tuple[int, object]]] = defaultdict(list)
    for proof, (status, body, _) in zip(jobs, answers):
        by_proof[proof].append((status, body.get("pid")))
    return by_proof


def test_one_proof_sent_to_two_workers_sharing_redis_is_accepted_exactly_once(shared, token):
    sent = proofs(shared, token, 40)

    by_proof = flood(shared, token, sent, copies=4)

    accepted = {p: [pid for s, pid in r if s == 200] for p, r in by_proof.items()}
    statuses = {s for r in by_proof.values() for s, _ in r}
    crossed = [p for p, r in by_proof.items() if len({pid for _, pid in r}) == 2]
    workers = {pid for r in by_proof.values() for _, pid in r}
    print(
        f"{len(sent)} proofs x 4 copies over {len(workers)} workers: "
        f"{sum(len(a) for a in accepted.values())} accepted, {len(crossed)} proofs seen by both workers"
    )
    assert statuses == {200, 401}
    assert all(len(a) == 1 for a in accepted.values()), accepted
    assert len(workers) == 2
    assert crossed, "no proof reached both workers: the replay was never tried across processes"


def batch(url: str, token: str, sent: list[str]) -> list[tuple[int, dict[str, object]]]:
    """Send the proofs at once (a sync worker busy with one request leaves the next to the other worker)."""
    with ThreadPoolExecutor(len(sent)) as pool:
        return [(s, b) for s, b, _ in pool.map(lambda p: send(url, token, p), sent)]


def test_a_replay_to_the_other_worker_is_refused_as_invalid_dpop_proof(shared, token):
    (proof,) = proofs(shared, token, 1)
    status, body, _ = send(shared, token, proof)
    assert status == 200 and body["sub"] == "dpop-worker"
    first = body["pid"]
    for _ in range(20):
        answers = batch(shared, token, [proof] * 8)
        assert {(s, b["code"]) for s, b in answers} == {(401, "invalid_dpop_proof")}
        if any(b["pid"] != first for _, b in answers):
            return
    pytest.fail("every replay reached the worker that accepted the proof")


def test_a_nonce_handed_out_by_one_worker_is_good_on_the_other(nonces, token):
    status, body, headers = send(nonces, token, proofs(nonces, token, 1)[0])
    assert (status, body["code"]) == (401, "use_dpop_nonce")
    nonce, issuer_pid = headers["DPoP-Nonce"], body["pid"]
    for _ in range(20):
        answers = batch(nonces, token, proofs(nonces, token, 8, nonce=nonce))
        assert {s for s, _ in answers} == {200}, answers
        if any(b["pid"] != issuer_pid for _, b in answers):
            return
    pytest.fail("every request reached the worker that issued the nonce")


def test_two_dpop_headers_joined_by_gunicorn_are_refused(shared, token):
    parts = urlsplit(shared)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=15)
    try:
        connection.putrequest("GET", "/api/me")
        connection.putheader("Authorization", f"DPoP {token}")
        for proof in proofs(shared, token, 2):
            connection.putheader("DPoP", proof)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 401
    assert b"invalid_dpop_proof" in body


def test_control_two_workers_with_per_process_locmem_each_accept_the_same_proof(separate, token):
    """Why the store must be shared: without it, a proof is good once per worker, not once."""
    for _ in range(5):  # a loaded machine may hand one flood to a single worker: try again
        by_proof = flood(separate, token, proofs(separate, token, 40), copies=4)
        assert all(1 <= sum(s == 200 for s, _ in r) <= 2 for r in by_proof.values())
        twice = [p for p, r in by_proof.items() if len({pid for s, pid in r if s == 200}) == 2]
        if twice:
            return
    pytest.fail("no proof reached both workers")
