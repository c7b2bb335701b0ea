"""Per-call cost of bearer-token authentication: the crypto floor, raw PyJWT, drf-oidc-jwks and its peers.

One process, one run, the same tokens from one loopback JWKS server. Every candidate
is timed in every pass, interleaved, so machine noise hits them alike; the table
reports medians over passes (warm-up pass excluded) and ratios taken in this run.

    .venv/bin/python -m bench.run                 # full run (docs/benchmarks.md)
    .venv/bin/python -m bench.run --quick         # small counts, as in CI
    .venv/bin/python -m bench.run --json out.json

Peers are installed by the benchmark's own extra: ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIENCE = "https://api.bench"
#: Our verifier is timed with each of these; each has its own crypto floor.
ALGS = ("RS256", "ES256", "EdDSA")
FLOORS = {"RS256": "RSA verify (floor)", "ES256": "ES256 verify (floor)", "EdDSA": "EdDSA verify (floor)"}
CACHE_ADD = "LocMem cache.add (replay store)"


def configure_django(issuer: Any, server: Any, db_path: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["testserver"],  # a DPoP proof's htu is checked against the request's host
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "drf_oidc_jwks",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db_path}},
        # Room for every user's cached state (LocMemCache culls at 300 entries by default; Redis would not).
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": "bench",
                "OPTIONS": {"MAX_ENTRIES": 1_000_000},
            }
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DRF_OIDC_JWKS={
            "ISSUER": issuer.issuer,
            "JWKS_URL": server.url("/jwks.json"),
            "AUDIENCE": AUDIENCE,
            "PROVIDER": "better-auth",
            "ALGORITHMS": list(ALGS),
        },
        SIMPLE_JWT={
            "ALGORITHM": "RS256",
            "SIGNING_KEY": None,
            "VERIFYING_KEY": None,
            "JWK_URL": server.url("/jwks.json"),
            "AUDIENCE": AUDIENCE,
            "ISSUER": issuer.issuer,
            "USER_ID_FIELD": "username",
            "USER_ID_CLAIM": "sub",
            "TOKEN_TYPE_CLAIM": None,
            "AUTH_HEADER_TYPES": ("Bearer",),
        },
        OIDC_AUTH={
            "OIDC_ENDPOINT": issuer.issuer,
            "OIDC_CLAIMS_OPTIONS": {"aud": {"essential": True, "value": AUDIENCE}},
            "JWT_AUTH_HEADER_PREFIX": "Bearer",
            "OIDC_RESOLVE_USER_FUNCTION": "bench.run.oidc_auth_stateless_user",
        },
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class _StatelessUser:
    is_authenticated = True

    def __init__(self, sub: str) -> None:
        self.pk = sub


def oidc_auth_stateless_user(request: Any, token: Any) -> Any:
    """drf-oidc-auth's resolver in stateless mode: no database."""
    return _StatelessUser(token["sub"])


def oidc_auth_db_user(request: Any, token: Any) -> Any:
    """drf-oidc-auth's resolver with a user row, the way its docs suggest (get_or_create by sub)."""
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username=token["sub"])
    return user


def build(args: argparse.Namespace) -> dict[str, Any]:
    from drf_oidc_jwks.testing import TestIssuer

    issuer = TestIssuer(audience=AUDIENCE)
    for alg in ALGS[1:]:
        issuer.add_key(alg)  # published before the first fetch; tokens name their key explicitly
    with issuer.serve() as server:
        tmp = tempfile.mkdtemp(prefix="drf-oidc-jwks-bench-")
        configure_django(issuer, server, os.path.join(tmp, "bench.sqlite3"))
        return measure(args, issuer, server)


PLAIN_MEMOISED = "drf-oidc-jwks stateless"
DPOP_OFF = "drf-oidc-jwks stateless, DPOP off"
#: Row name -> the v2 hooks taken out of JWKSAuthentication for it (each a public pipeline step).
V2_ABLATIONS = {
    "drf-oidc-jwks stateless, no DPoP hook": ("dpop",),
    "drf-oidc-jwks stateless, no introspection hook": ("introspection",),
    "drf-oidc-jwks stateless, no revocation check": ("revocation",),
    "drf-oidc-jwks stateless, no v2 hooks": ("dpop", "introspection", "revocation"),
}


def without(hooks: tuple[str, ...]) -> Any:
    """A JWKSAuthentication with the named v2 steps replaced by what the plain Bearer JWT path needs."""
    from drf_oidc_jwks.authentication import JWKSAuthentication
    from drf_oidc_jwks.tokens import verify_token

    class Ablated(JWKSAuthentication):
        if "dpop" in hooks:

            def is_dpop(self, request: Any, header: str) -> bool:
                return False

        if "introspection" in hooks:

            def verify_or_introspect(self, raw: str, *, dpop: bool = False) -> Any:
                return verify_token(raw, dpop=dpop)

        if "revocation" in hooks:

            def check_revoked(self, claims: Any) -> None:
                return None

    return Ablated()


def measure(args: argparse.Namespace, issuer: Any, server: Any) -> dict[str, Any]:
    import jwt
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from bench import probes
    from drf_oidc_jwks.authentication import JWKSAuthentication

    users = args.users
    subs = [f"user-{i:05d}" for i in range(users)]
    keys = dict(zip(ALGS, issuer.keys, strict=True))
    minted = {
        alg: [issuer.token(sub=s, key=key, email=f"{s}@example.com", name=s, role="user", jti=s) for s in subs]
        for alg, key in keys.items()
    }
    public_key = keys["RS256"].private_key.public_key()
    factory = APIRequestFactory()

    def requests_for(tokens: list[str]) -> list[Request]:
        return [Request(factory.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {t}")) for t in tokens]

    # DPoP (issue 14): RS256 access tokens bound to a client key per proof algorithm; fresh proofs per pass.
    from bench import dpop as dpop_bench
    from drf_oidc_jwks.testing import DPoPKey

    clients = {alg: DPoPKey(alg) for alg in dpop_bench.RUN_ALGORITHMS}

    def inputs_for(kind: str, tokens: list[str], alg: str) -> list[Any]:
        if kind == "dpop":
            return dpop_bench.dpop_requests(factory, clients[alg], tokens)
        return tokens if kind == "token" else requests_for(tokens)

    # Users exist for every candidate that looks them up (steady state, not first sight).
    User = get_user_model()
    User.objects.bulk_create([User(username=s) for s in subs], ignore_conflicts=True)

    ours = JWKSAuthentication()

    def ours_stateless(req: Request) -> Any:
        return ours.authenticate(req)

    ablated = {name: without(hooks).authenticate for name, hooks in V2_ABLATIONS.items()}

    def ours_user_touched(req: Request) -> Any:
        user, claims = ours.authenticate(req)
        return user.is_active and user.pk

    from rest_framework_simplejwt.authentication import JWTAuthentication, JWTStatelessUserAuthentication

    simple_stateless = JWTStatelessUserAuthentication()
    simple_db = JWTAuthentication()

    def simplejwt_stateless(req: Request) -> Any:
        return simple_stateless.authenticate(req)

    def simplejwt_db(req: Request) -> Any:
        user, token = simple_db.authenticate(req)
        return user.pk

    from oidc_auth import authentication as oidc_auth_module
    from oidc_auth.settings import api_settings as oidc_api_settings

    oidc = oidc_auth_module.JSONWebTokenAuthentication()

    def drf_oidc_auth_stateless(req: Request) -> Any:
        return oidc.authenticate(req)

    def drf_oidc_auth_db(req: Request) -> Any:
        previous = oidc_api_settings.OIDC_RESOLVE_USER_FUNCTION
        oidc_api_settings.__dict__["OIDC_RESOLVE_USER_FUNCTION"] = oidc_auth_db_user
        try:
            user, payload = oidc.authenticate(req)
        finally:
            oidc_api_settings.__dict__["OIDC_RESOLVE_USER_FUNCTION"] = previous
        return user.pk

    # The floors: the verify alone, inputs already split (a lower bound, not a verifier).
    floor_fns = probes.crypto_floors(keys, minted)

    def raw_decode(token: str) -> Any:
        return jwt.decode(token, public_key, algorithms=["RS256"], audience=AUDIENCE, issuer=issuer.issuer)

    base = dict(settings.DRF_OIDC_JWKS)
    configs: dict[str, dict[str, Any]] = {
        "stateless": {**base, "SYNC_USERS": False},
        "stateless, memo off": {**base, "SYNC_USERS": False, "TOKEN_CACHE_TTL": 0},
        "stateless, DPOP off": {**base, "SYNC_USERS": False, "DPOP": "off"},
        "sync, claims only": {**base, "SYNC_USERS": True},
        "sync, user touched": {**base, "SYNC_USERS": True},
        "sync, user touched, memo off": {**base, "SYNC_USERS": True, "TOKEN_CACHE_TTL": 0},
    }

    # name, input kind, fn, our config, the algorithm of its tokens
    Candidate = tuple[str, str, Callable[[Any], Any], str | None, str]
    candidates: list[Candidate] = [
        (FLOORS["RS256"], "token", floor_fns["RS256"], None, "RS256"),
        ("jwt.decode (PyJWT)", "token", raw_decode, None, "RS256"),
        ("drf-oidc-jwks stateless", "request", ours_stateless, "stateless", "RS256"),
        ("drf-oidc-jwks stateless, memo off", "request", ours_stateless, "stateless, memo off", "RS256"),
        # Issue 18 target 6: the plain memoised path against itself with each v2 feature's hook taken out,
        # and with DPoP configured off: what an unconfigured feature costs the plain path.
        *[(name, "request", fn, "stateless", "RS256") for name, fn in ablated.items()],
        (DPOP_OFF, "request", ours_stateless, "stateless, DPOP off", "RS256"),
        ("drf-oidc-jwks sync, claims only", "request", ours_stateless, "sync, claims only", "RS256"),
        ("drf-oidc-jwks sync, user touched", "request", ours_user_touched, "sync, user touched", "RS256"),
        (
            "drf-oidc-jwks sync, user touched, memo off",
            "request",
            ours_user_touched,
            "sync, user touched, memo off",
            "RS256",
        ),
        ("simplejwt stateless (JWK)", "request", simplejwt_stateless, None, "RS256"),
        ("simplejwt + user lookup", "request", simplejwt_db, None, "RS256"),
        ("drf-oidc-auth stateless", "request", drf_oidc_auth_stateless, None, "RS256"),
        ("drf-oidc-auth + get_or_create", "request", drf_oidc_auth_db, None, "RS256"),
    ]
    for alg in ALGS[1:]:
        candidates += [
            (FLOORS[alg], "token", floor_fns[alg], None, alg),
            (f"drf-oidc-jwks stateless, memo off, {alg}", "request", ours_stateless, "stateless, memo off", alg),
        ]
    candidates.append((CACHE_ADD, "token", dpop_bench.cache_add(), None, "RS256"))
    for alg in dpop_bench.RUN_ALGORITHMS:  # the row's alg is the proof's: its floor is that verify
        candidates += [
            (f"drf-oidc-jwks DPoP {alg} proof, memoised token", "dpop", ours_stateless, "stateless", alg),
            (f"drf-oidc-jwks DPoP {alg} proof, first request", "dpop", ours_stateless, "stateless, memo off", alg),
        ]
    minted.update(dpop_bench.bound_tokens(issuer, keys["RS256"], subs, clients))
    scenarios = {
        "1 token repeated": {alg: [tokens[0]] * users for alg, tokens in minted.items()},
        f"{users} distinct users": minted,
    }

    results: dict[str, dict[str, Any]] = {}
    for scenario, by_alg in scenarios.items():
        samples: dict[str, list[float]] = {name: [] for name, *_ in candidates}
        queries: dict[str, float] = {}
        for pass_no in range(args.passes + 1):  # pass 0 is the warm-up
            for name, kind, fn, config, alg in candidates:
                tokens = by_alg[f"dpop {alg}" if kind == "dpop" else alg]
                override = override_settings(DRF_OIDC_JWKS=configs[config]) if config else None
                if override:
                    override.enable()
                try:
                    if config:
                        # Switching settings resets the memo and the JWKS clients (setting_changed):
                        # an untimed warm loop brings them back to a live server's steady state.
                        for item in inputs_for(kind, tokens, alg):
                            fn(item)
                    inputs = inputs_for(kind, tokens, alg)
                    if pass_no == 1:
                        with CaptureQueriesContext(connection) as ctx:
                            for item in inputs[: min(200, len(inputs))]:
                                fn(item)
                        queries[name] = len(ctx.captured_queries) / min(200, len(inputs))
                        inputs = inputs_for(kind, tokens, alg)
                    started = time.perf_counter_ns()
                    for item in inputs:
                        fn(item)
                    elapsed = time.perf_counter_ns() - started
                finally:
                    if override:
                        override.disable()
                if pass_no > 0:
                    samples[name].append(elapsed / len(inputs) / 1000)
        results[scenario] = {
            name: {
                "median_us": statistics.median(values),
                "min_us": min(values),
                "max_us": max(values),
                "queries_per_call": queries.get(name, 0.0),
                "alg": alg,
            }
            for (name, *_, alg), values in zip(candidates, samples.values(), strict=True)
        }
    return {
        "results": results,
        **probes.probe(args, issuer, keys["RS256"], configs["stateless"], configs["stateless, memo off"]),
        "jwks_fetches": server.total("/jwks.json"),
        "discovery_fetches": server.total("/.well-known/openid-configuration"),
        "users": users,
        "passes": args.passes,
        "environment": environment(),
    }


def environment() -> dict[str, str]:
    from importlib.metadata import version

    def v(name: str) -> str:
        try:
            return version(name)
        except Exception:  # noqa: BLE001
            return "-"

    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        **{
            name: v(name)
            for name in (
                "Django",
                "djangorestframework",
                "PyJWT",
                "cryptography",
                "djangorestframework-simplejwt",
                "drf-oidc-auth",
                "joserfc",
            )
        },
    }


PEERS = ("simplejwt stateless (JWK)", "drf-oidc-auth stateless")
PEERS_DB = ("simplejwt + user lookup", "drf-oidc-auth + get_or_create")


#: Issue 18's targets: (what, numerator row, denominator row, at most).
TARGETS = [
    ("first request (memo miss), RS256", "drf-oidc-jwks stateless, memo off", FLOORS["RS256"], 1.6),
    ("first request (memo miss), ES256", "drf-oidc-jwks stateless, memo off, ES256", FLOORS["ES256"], 1.6),
    ("first request (memo miss), EdDSA", "drf-oidc-jwks stateless, memo off, EdDSA", FLOORS["EdDSA"], 1.6),
    ("memoised request", "drf-oidc-jwks stateless", FLOORS["RS256"], 0.12),
    ("memoised, synced user used", "drf-oidc-jwks sync, user touched", FLOORS["RS256"], 0.5),
]
MEMO_BYTES_TARGET = 2048
#: Target 6: an unconfigured v2 feature slows the plain memoised path by at most 3%.
V2_BUDGET = 1.03


def v2_budget(rows: dict[str, Any]) -> list[tuple[str, float]]:
    """(what, ratio) per v2 feature: the plain memoised row over the row without that feature (or configured off)."""
    plain = rows[PLAIN_MEMOISED]["median_us"]
    out = [
        (f"plain memoised / {n.removeprefix(PLAIN_MEMOISED + ', ')}", plain / rows[n]["median_us"])
        for n in V2_ABLATIONS
    ]
    out.append(("DPOP off / plain memoised", rows[DPOP_OFF]["median_us"] / plain))
    return out


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target's ratio per scenario, and whether it is met."""
    out = []
    for scenario, rows in report["results"].items():
        for what, row, floor, limit in TARGETS:
            ratio = rows[row]["median_us"] / rows[floor]["median_us"]
            out.append({"scenario": scenario, "target": what, "ratio": ratio, "limit": limit, "met": ratio <= limit})
        for what, ratio in v2_budget(rows):
            out.append(
                {"scenario": scenario, "target": what, "ratio": ratio, "limit": V2_BUDGET, "met": ratio <= V2_BUDGET}
            )
        for alg in ("ES256", "EdDSA"):
            # Issue 14: a memoised DPoP request <= 1.5 x its proof's verify floor + one shared-cache add.
            row = rows[f"drf-oidc-jwks DPoP {alg} proof, memoised token"]["median_us"]
            ratio = (row - rows[CACHE_ADD]["median_us"]) / rows[FLOORS[alg]]["median_us"]
            what = f"DPoP {alg}, memoised token: (request - cache.add) / {alg} verify floor"
            out.append({"scenario": scenario, "target": what, "ratio": ratio, "limit": 1.5, "met": ratio <= 1.5})
    return out


def table(report: dict[str, Any]) -> str:
    lines = []
    for scenario, rows in report["results"].items():
        decode = rows["jwt.decode (PyJWT)"]["median_us"]
        lines.append(f"\n### {scenario}\n")
        lines.append(
            "| candidate | median µs | min–max µs | × floor (its alg) | × jwt.decode | DB queries/call |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: |"
        )
        for name, r in rows.items():
            floor = rows[FLOORS[r["alg"]]]["median_us"]
            vs_decode = f"{r['median_us'] / decode:.2f}" if r["alg"] == "RS256" else "–"
            lines.append(
                f"| {name} | {r['median_us']:.1f} | {r['min_us']:.1f}–{r['max_us']:.1f} | "
                f"{r['median_us'] / floor:.2f} | {vs_decode} | {r['queries_per_call']:.2f} |"
            )
        lines.append("")
        ours = {k: v["median_us"] for k, v in rows.items() if k.startswith("drf-oidc-jwks") and v["alg"] == "RS256"}
        for peer in PEERS + PEERS_DB:
            p = rows[peer]["median_us"]
            compared = ", ".join(f"{k.removeprefix('drf-oidc-jwks ')} {p / v:.1f}×" for k, v in ours.items())
            lines.append(f"- vs {peer}: drf-oidc-jwks is faster by {compared}")
    lines.append("\n### Targets (issue 18)\n")
    lines.append("| scenario | target | ratio | at most | met |\n| --- | --- | ---: | ---: | --- |")
    for t in report["targets"]:
        lines.append(
            f"| {t['scenario']} | {t['target']} | {t['ratio']:.2f} | {t['limit']} | {'yes' if t['met'] else 'no'} |"
        )
    per_entry = report["memo_bytes_per_entry"]
    lines.append(
        f"| – | memo memory per entry ({report['typical_token_bytes']:.0f}-byte tokens, tracemalloc) | "
        f"{per_entry:.0f} B | {MEMO_BYTES_TARGET} B | {'yes' if per_entry <= MEMO_BYTES_TARGET else 'no'} |"
    )
    if "profile" in report:
        from bench.probes import profile_table

        lines.append(profile_table(report["profile"]["top"], report["profile"]["calls"]))
    lines.append(
        f"\nJWKS fetches in the whole run: {report['jwks_fetches']} "
        f"(discovery: {report['discovery_fetches']}, by drf-oidc-auth)"
    )
    env = report["environment"]
    lines.append("\nEnvironment: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    return "\n".join(lines)


# -- Opaque tokens and revocation (issue 15): bench/introspection.py, in a process of its own (its own settings) --

#: (ratio from bench/introspection.py, at most): an opaque cache hit vs a memoised JWT; the revocation check's cost.
INTROSPECTION_TARGETS = [("opaque cache hit / memoised JWT", 2.0), ("revocation check on / off (memoised JWT)", 1.10)]


def introspection_figures(args: argparse.Namespace) -> dict[str, Any]:
    """Run bench/introspection.py (LocMem, and Redis when a server can be started) and return its JSON."""
    import shutil
    import subprocess

    command = [sys.executable, "-m", "bench.introspection", "--json"]
    command += ["--requests", "500", "--passes", "2"] if args.quick else []
    command += ["--redis"] if shutil.which("redis-server") else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def introspection_table(figures: dict[str, Any]) -> str:
    lines = [
        "\n### Opaque tokens and revocation (issue 15)\n",
        "| ratio | value | at most | met |",
        "| --- | ---: | ---: | --- |",
    ]
    limits = dict(INTROSPECTION_TARGETS)
    for what, ratio in figures["ratios"].items():
        limit = limits.get(what)
        met = "–" if limit is None else ("yes" if ratio <= limit else "no")
        lines.append(f"| {what} | {ratio:.2f} | {limit if limit is not None else 'reported'} | {met} |")
    lines.append(
        f"\nShared-cache calls by the revocation check: {figures['jwt_revocation_cache_calls']} "
        f"over {figures['requests_timed']} requests (polls only)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000, help="distinct users (default 1000)")
    parser.add_argument("--passes", type=int, default=9, help="timed passes after the warm-up (default 9)")
    parser.add_argument("--quick", action="store_true", help="small counts, to keep the benchmark working in CI")
    parser.add_argument("--profile", action="store_true", help="also profile the memo-miss path (cProfile)")
    parser.add_argument("--no-introspection", action="store_true", help="skip the opaque-token and revocation rows")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "latest.json"), help="where to write JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.passes = 50, 2
    report = build(args)
    report["targets"] = targets(report)
    if not args.no_introspection:
        report["introspection"] = introspection_figures(args)
    print(table(report))
    if "introspection" in report:
        print(introspection_table(report["introspection"]))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"\nJSON written to {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
