"""Two real gunicorn workers sharing Redis: a DPoP proof is accepted once in total, a nonce of one worker is good
on the other, and (the control) two workers with per-process LocMemCache each accept the same proof."""

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

from drf_oidc_jwks.testing_dpop import DPoPKey
from tests.services import RedisServer
from tests.services import gunicorn as gunicorn_server

TOKEN = "an-opaque-access-token-the-view-only-hashes"
pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=[])]


def _env(tmp_path: os.PathLike[str], cache_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CACHE_URL": cache_url,
        "VAR_DIR": str(tmp_path),
        "OIDC_SYNC_USERS": "false",
        "OIDC_LOG_LEVEL": "WARNING",
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
    }
    env.pop("DATABASE_URL", None)
    return env


@pytest.fixture
def shared(redis_server: RedisServer, tmp_path) -> Iterator[str]:
    """The testproject under two gunicorn workers whose cache is one real Redis."""
    db = redis_server.url.rsplit("/", 1)[0] + "/4"
    redis.Redis.from_url(db).flushdb()
    with gunicorn_server(_env(tmp_path, redis_server.cache_url.replace("/0", "/4"))) as url:
        yield url


@pytest.fixture
def separate(tmp_path) -> Iterator[str]:
    """The same two workers, each with its own in-process LocMemCache."""
    with gunicorn_server(_env(tmp_path, "locmemcache://dpop-gunicorn")) as url:
        yield url


def send(url: str, proof: str, path: str = "/api/dpop/proof") -> tuple[int, dict[str, object], dict[str, str]]:
    # A new connection per request, so the kernel hands requests to both workers.
    headers = {"Authorization": f"DPoP {TOKEN}", "DPoP": proof, "Connection": "close"}
    response = requests.post(url + path, headers=headers, timeout=15)
    return response.status_code, response.json(), dict(response.headers)


def flood(url: str, proofs: list[str], copies: int) -> dict[str, list[tuple[int, object]]]:
    """Send each proof ``copies`` times, all at once; return (status, pid) per proof."""
    jobs = [p for p in proofs for _ in range(copies)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: send(url, p), jobs))
    by_proof: dict[str, list[tuple[int, object]]] = defaultdict(list)
    for proof, (status, body, _) in zip(jobs, answers):
        by_proof[proof].append((status, body.get("pid")))
    return by_proof


def test_one_proof_sent_to_two_workers_sharing_redis_is_accepted_exactly_once(shared):
    key = DPoPKey()
    url = shared + "/api/dpop/proof"
    proofs = [key.proof("POST", url, access_token=TOKEN) for _ in range(40)]

    by_proof = flood(shared, proofs, copies=4)

    accepted = {p: [pid for s, pid in r if s == 200] for p, r in by_proof.items()}
    statuses = {s for r in by_proof.values() for s, _ in r}
    crossed = [p for p, r in by_proof.items() if len({pid for _, pid in r}) == 2]
    workers = {pid for r in by_proof.values() for _, pid in r}
    print(
        f"{len(proofs)} proofs x 4 copies over {len(workers)} workers: "
        f"{sum(len(a) for a in accepted.values())} accepted, {len(crossed)} proofs seen by both workers"
    )
    assert statuses == {200, 401}
    assert all(len(a) == 1 for a in accepted.values()), accepted
    assert len(workers) == 2
    assert crossed, "no proof reached both workers: the replay was never tried across processes"


def batch(url: str, proofs: list[str], path: str = "/api/dpop/proof") -> list[tuple[int, dict[str, object]]]:
    """Send the proofs at once (a sync worker busy with one request leaves the next to the other worker)."""
    with ThreadPoolExecutor(len(proofs)) as pool:
        return [(s, b) for s, b, _ in pool.map(lambda p: send(url, p, path), proofs)]


def test_a_replay_to_the_other_worker_is_refused_as_invalid_dpop_proof(shared):
    key = DPoPKey()
    url = shared + "/api/dpop/proof"
    proof = key.proof("POST", url, access_token=TOKEN)
    status, body, _ = send(shared, proof)
    assert status == 200
    first = body["pid"]
    for _ in range(20):
        answers = batch(shared, [proof] * 8)
        assert {(s, b["code"]) for s, b in answers} == {(401, "invalid_dpop_proof")}
        if any(b["pid"] != first for _, b in answers):
            return
    pytest.fail("every replay reached the worker that accepted the proof")


def test_a_nonce_handed_out_by_one_worker_is_good_on_the_other(shared):
    key = DPoPKey()
    url = shared + "/api/dpop/nonce"
    status, body, headers = send(shared, key.proof("POST", url, access_token=TOKEN), "/api/dpop/nonce")
    assert (status, body["code"]) == (401, "use_dpop_nonce")
    nonce, issuer_pid = headers["DPoP-Nonce"], body["pid"]
    for _ in range(20):
        proofs = [key.proof("POST", url, access_token=TOKEN, nonce=nonce) for _ in range(8)]
        answers = batch(shared, proofs, "/api/dpop/nonce")
        assert {s for s, _ in answers} == {200}, answers
        if any(b["pid"] != issuer_pid for _, b in answers):
            return
    pytest.fail("every request reached the worker that issued the nonce")


def test_two_dpop_headers_joined_by_gunicorn_are_refused(shared):
    key = DPoPKey()
    url = shared + "/api/dpop/proof"
    parts = urlsplit(shared)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=15)
    try:
        connection.putrequest("POST", "/api/dpop/proof")
        connection.putheader("Authorization", f"DPoP {TOKEN}")
        connection.putheader("DPoP", key.proof("POST", url, access_token=TOKEN))
        connection.putheader("DPoP", key.proof("POST", url, access_token=TOKEN))
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 401
    assert b"invalid_dpop_proof" in body


def test_control_two_workers_with_per_process_locmem_each_accept_the_same_proof(separate):
    """Why the store must be shared: without it, a proof is good once per worker, not once."""
    key = DPoPKey()
    url = separate + "/api/dpop/proof"
    proofs = [key.proof("POST", url, access_token=TOKEN) for _ in range(40)]

    by_proof = flood(separate, proofs, copies=4)

    twice = [p for p, r in by_proof.items() if len({pid for s, pid in r if s == 200}) == 2]
    assert all(1 <= sum(s == 200 for s, _ in r) <= 2 for r in by_proof.values())
    assert twice, "no proof reached both workers"
