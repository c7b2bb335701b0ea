"""End to end: the testproject under gunicorn (2 workers), Redis as the JWKS cache, PostgreSQL as the database.

A load generator on loopback (wrk, from Debian's packages) hits ``/api/me`` with valid
tokens and the same view without authentication, for a bounded time each, in
alternating rounds, and DPoP-bound tokens with a fresh ES256 proof per request. Each user's token is
used over and over (round-robin), as clients do. Reported: throughput ratios (authenticated /
unauthenticated, DPoP / Bearer), p50/p99 latency, JWKS fetches in total, DB queries per request (the
testproject's ``X-DB-Queries`` header: probed after every user's first request and an untimed warm-up
that lets every worker see every user, and summed over every response of the timed rounds).

    .venv/bin/python -m bench.e2e                 # 1,000 users, 3 rounds of 10 s per target
    .venv/bin/python -m bench.e2e --users 10000   # no DPoP round: the memo holds 10,000 tokens
    .venv/bin/python -m bench.e2e --quick         # 50 users, 1 round of 2 s, as in CI
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUD = "https://api.bench"
# Every target counts the X-DB-Queries header of every response (the same Lua cost on each side).
COUNT_LUA = """
local threads = {}
function setup(thread) threads[#threads + 1] = thread; thread:set("id", #threads - 1) end
queries, responses = 0, 0
function response(status, headers, body)
  responses = responses + 1
  queries = queries + (tonumber(headers["X-DB-Queries"]) or 0)
end
function done(summary, latency, requests)
  local q, r = 0, 0
  for _, t in ipairs(threads) do q = q + t:get("queries"); r = r + t:get("responses") end
  io.write(string.format("DB-QUERIES %d %d\\n", q, r))
end
"""
LUA = (
    COUNT_LUA
    + """
tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
counter = 0
request = function()
  counter = counter + 1
  local t = tokens[(counter % #tokens) + 1]
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. t})
end
"""
)

# DPoP: a proof is good once, so each request takes the next pre-made "token proof" line; wrk's threads
# (-t2) take every other line, so no two requests share a proof until the file runs out (then non-2xx).
DPOP_LUA = (
    COUNT_LUA
    + """
function init(args)
  lines = {}
  for line in io.lines(os.getenv("PROOFS_FILE")) do lines[#lines + 1] = line end
  counter = id
end
request = function()
  local token, proof = lines[(counter % #lines) + 1]:match("(%S+) (%S+)")
  counter = counter + 2
  return wrk.format("GET", nil, {["Authorization"] = "DPoP " .. token, ["DPoP"] = proof})
end
"""
)


def write_proofs(path: Path, client: Any, tokens: list[str], url: str, count: int) -> None:
    """``count`` lines of "token proof", each proof fresh (made before the round, untimed)."""
    lines = (f"{t} {client.proof('GET', url, access_token=t)}" for t in (tokens[i % len(tokens)] for i in range(count)))
    path.write_text("\n".join(lines) + "\n")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (Debian package)", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
    assert found, "wrk could not be installed"
    return found


def parse_wrk(output: str) -> dict[str, float]:
    def to_ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"\s50%\s+([\d.]+\w+)", output).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"\s99%\s+([\d.]+\w+)", output).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    counted = re.search(r"DB-QUERIES (\d+) (\d+)", output)
    return {
        "queries": float(counted.group(1)) if counted else 0.0,
        "responses": float(counted.group(2)) if counted else 0.0,
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


#: The token memo's default size (TOKEN_CACHE_SIZE): the DPoP round's tokens must fit beside the Bearer ones.
MEMO_SIZE = 10_000


def mint(issuer: Any, users: int, **extra: Any) -> list[str]:
    """One token per user (the same claims for Bearer and DPoP tokens: the same users, synced alike)."""
    return [
        issuer.token(
            sub=f"user-{i:05d}",
            email=f"user{i}@example.com",
            name=f"User {i}",
            role="user",
            tenant_id="acme",
            expires_in=3600,
            **extra,
        )
        for i in range(users)
    ]


def first_sight(base: str, tokens: list[str], client: Any = None) -> None:
    """Every user's first request (user rows created), 4 at a time; every answer must be a 200."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    local = threading.local()

    def one(token: str) -> int:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        headers = {"Authorization": f"Bearer {token}"}
        if client is not None:
            headers = {
                "Authorization": f"DPoP {token}",
                "DPoP": client.proof("GET", f"{base}/api/me", access_token=token),
            }
        return int(session.get(f"{base}/api/me", headers=headers, timeout=30).status_code)

    with ThreadPoolExecutor(4) as pool:
        statuses = set(pool.map(one, tokens))
    assert statuses == {200}, statuses


def run(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    from drf_oidc_jwks.testing import DPoPKey, TestIssuer
    from tests.services import PostgresServer, RedisServer, gunicorn

    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="drf-oidc-jwks-e2e-"))
    issuer = TestIssuer(audience=AUD)
    dpop_users = min(args.users, args.dpop_users)
    dpop = dpop_users > 0 and args.users + dpop_users <= MEMO_SIZE
    with RedisServer() as redis_server, PostgresServer() as pg, issuer.serve() as jwks_server:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "DATABASE_URL": pg.url,
            "CACHE_URL": redis_server.cache_url,
            "VAR_DIR": str(tmp),
            "DEBUG": "false",
            "DEV_ISSUER_ENABLED": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "OIDC_ISSUER": issuer.issuer,
            "OIDC_JWKS_URL": jwks_server.url("/jwks.json"),
            "OIDC_AUDIENCE": AUD,
            "OIDC_SYNC_USERS": "false" if args.stateless else "true",
            "OIDC_LOG_LEVEL": "WARNING",
            "DB_QUERIES_HEADER": "true",
        }
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        with gunicorn(env) as base:
            tokens = mint(issuer, args.users)
            tokens_file = tmp / "tokens.txt"
            tokens_file.write_text("\n".join(tokens) + "\n")
            (tmp / "tokens.lua").write_text(LUA)
            (tmp / "dpop.lua").write_text(DPOP_LUA)
            client = DPoPKey("ES256")
            bound = mint(issuer, dpop_users, cnf=client.cnf()) if dpop else []
            proofs_file = tmp / "proofs.txt"
            first_sight(base, tokens)
            # Untimed: every worker sees every user (first sight made each user on one worker only).
            warm = max(2, args.users // 400) if args.warmup is None else args.warmup
            subprocess.run(
                [wrk, "-t2", f"-c{args.connections}", f"-d{warm}s", "-s", str(tmp / "tokens.lua"), f"{base}/api/me"],
                env={**os.environ, "TOKENS_FILE": str(tokens_file)},
                capture_output=True,
                check=True,
            )
            # DB queries per request in the steady state, request by request, after the warm-up.
            with requests.Session() as s:
                counts = [
                    int(s.get(f"{base}/api/me", headers={"Authorization": f"Bearer {t}"}).headers["X-DB-Queries"])
                    for t in tokens[: min(200, len(tokens))]
                ]
                baseline_counts = [int(s.get(f"{base}/api/bench/unauthenticated-me").headers["X-DB-Queries"])]
            if dpop:
                first_sight(base, bound, client)
            targets = {
                "authenticated /api/me": [wrk, "-s", str(tmp / "tokens.lua"), f"{base}/api/me"],
                # The same requests, Authorization header included (the view has no authentication class),
                # so wrk does the same work on both sides and only the server's authentication differs.
                "unauthenticated twin": [wrk, "-s", str(tmp / "tokens.lua"), f"{base}/api/bench/unauthenticated-me"],
            }
            if dpop:
                targets["DPoP /api/me (ES256 proofs)"] = [wrk, "-s", str(tmp / "dpop.lua"), f"{base}/api/me"]
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, cmd in targets.items():
                    if name.startswith("DPoP"):
                        write_proofs(proofs_file, client, bound, f"{base}/api/me", args.proofs)
                    out = subprocess.run(
                        [cmd[0], "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", *cmd[1:]],
                        env={**os.environ, "TOKENS_FILE": str(tokens_file), "PROOFS_FILE": str(proofs_file)},
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                    rounds[name].append(parse_wrk(out))
        shutil.rmtree(tmp, ignore_errors=True)
        return report(args, rounds, counts, baseline_counts, jwks_server.total("/jwks.json"), dpop_users if dpop else 0)


def report(
    args: argparse.Namespace,
    rounds: dict[str, list[dict[str, float]]],
    counts: list[int],
    baseline_counts: list[int],
    jwks_fetches: int,
    dpop_users: int,
) -> dict[str, Any]:
    """Medians of the rounds, ratios, DB queries per request (probed after the warm-up; over every timed response)."""
    summary: dict[str, dict[str, float]] = {}
    for name, results in rounds.items():
        summary[name] = {key: sorted(r[key] for r in results)[len(results) // 2] for key in ("rps", "p50_ms", "p99_ms")}
        summary[name]["non_2xx"] = sum(r["non_2xx"] for r in results)
        responses = sum(r["responses"] for r in results)
        summary[name]["db_queries_per_request"] = sum(r["queries"] for r in results) / responses if responses else 0.0
    auth, anon = summary["authenticated /api/me"], summary["unauthenticated twin"]
    dpop = summary.get("DPoP /api/me (ES256 proofs)")
    return {
        "summary": summary,
        "throughput_ratio": auth["rps"] / anon["rps"],
        "dpop_bearer_ratio": dpop["rps"] / auth["rps"] if dpop else None,
        "jwks_fetches": jwks_fetches,
        "db_queries_per_request": sum(counts) / len(counts),
        "db_queries_per_request_timed": auth["db_queries_per_request"],
        "baseline_db_queries_per_request": baseline_counts[0],
        "users": args.users,
        "dpop_users": dpop_users,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "connections": args.connections,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000, help="distinct users, one token each (default 1000)")
    parser.add_argument("--dpop-users", type=int, default=1000, help="users with a DPoP-bound token (at most --users)")
    parser.add_argument("--warmup", type=int, default=None, help="seconds of untimed load first (default users/400)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--proofs", type=int, default=40000, help="fresh DPoP proofs made per DPoP round")
    parser.add_argument("--quick", action="store_true", help="50 users, 1 round of 2 s per target, as in CI")
    parser.add_argument("--stateless", action="store_true", help="SYNC_USERS False (no database)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "e2e.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.rounds, args.seconds, args.proofs = 50, 1, 2, 8000
    report = run(args)
    for name, r in report["summary"].items():
        print(
            f"{name:28} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms"
            f"   non-2xx {r['non_2xx']:.0f}   DB queries/request {r['db_queries_per_request']:.4f}"
        )
    print(f"users: {report['users']}")
    print(f"throughput ratio authenticated / unauthenticated: {report['throughput_ratio']:.2f}")
    if report["dpop_bearer_ratio"] is None:
        print(f"DPoP round skipped: {report['users']} Bearer tokens leave no room in the {MEMO_SIZE}-token memo")
    else:
        print(f"throughput ratio DPoP / Bearer (both authenticated /api/me): {report['dpop_bearer_ratio']:.2f}")
    print(f"JWKS fetches in total: {report['jwks_fetches']}")
    print(
        f"DB queries per authenticated request: {report['db_queries_per_request']:.2f} after the warm-up,"
        f" {report['db_queries_per_request_timed']:.4f} over the timed rounds"
        f" (unauthenticated twin: {report['baseline_db_queries_per_request']})"
    )
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
