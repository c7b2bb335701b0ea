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


def configure_django(issuer: Any, server: Any, db_path: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
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
                "OPTIONS": {"MAX_ENTRIES": 100_000},
            }
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DRF_OIDC_JWKS={
            "ISSUER": issuer.issuer,
            "JWKS_URL": server.url("/jwks.json"),
            "AUDIENCE": AUDIENCE,
            "PROVIDER": "better-auth",
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
    with issuer.serve() as server:
        tmp = tempfile.mkdtemp(prefix="drf-oidc-jwks-bench-")
        configure_django(issuer, server, os.path.join(tmp, "bench.sqlite3"))
        return measure(args, issuer, server)


def measure(args: argparse.Namespace, issuer: Any, server: Any) -> dict[str, Any]:
    import jwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from drf_oidc_jwks.authentication import JWKSAuthentication

    users = args.users
    subs = [f"user-{i:05d}" for i in range(users)]
    distinct = [issuer.token(sub=s, email=f"{s}@example.com", name=s, role="user", jti=s) for s in subs]
    repeated = [distinct[0]] * users
    public_key = issuer.key.private_key.public_key()
    factory = APIRequestFactory()

    def requests_for(tokens: list[str]) -> list[Request]:
        return [Request(factory.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {t}")) for t in tokens]

    # Users exist for every candidate that looks them up (steady state, not first sight).
    User = get_user_model()
    User.objects.bulk_create([User(username=s) for s in subs], ignore_conflicts=True)

    ours = JWKSAuthentication()

    def ours_stateless(req: Request) -> Any:
        return ours.authenticate(req)

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

    # The floor: the RSA verify alone, inputs already split (a lower bound, not a verifier).
    split = {t: (t.rsplit(".", 1)[0].encode(), jwt.utils.base64url_decode(t.rsplit(".", 1)[1])) for t in set(distinct)}

    def rsa_floor(token: str) -> Any:
        signing_input, signature = split[token]
        public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())

    def raw_decode(token: str) -> Any:
        return jwt.decode(token, public_key, algorithms=["RS256"], audience=AUDIENCE, issuer=issuer.issuer)

    base = dict(settings.DRF_OIDC_JWKS)
    configs: dict[str, dict[str, Any]] = {
        "stateless": {**base, "SYNC_USERS": False},
        "stateless, memo off": {**base, "SYNC_USERS": False, "TOKEN_CACHE_TTL": 0},
        "sync, claims only": {**base, "SYNC_USERS": True},
        "sync, user touched": {**base, "SYNC_USERS": True},
        "sync, user touched, memo off": {**base, "SYNC_USERS": True, "TOKEN_CACHE_TTL": 0},
    }

    Candidate = tuple[str, str, Callable[[Any], Any], str | None]  # name, input kind, fn, our config
    candidates: list[Candidate] = [
        ("RSA verify (floor)", "token", rsa_floor, None),
        ("jwt.decode (PyJWT)", "token", raw_decode, None),
        ("drf-oidc-jwks stateless", "request", ours_stateless, "stateless"),
        ("drf-oidc-jwks stateless, memo off", "request", ours_stateless, "stateless, memo off"),
        ("drf-oidc-jwks sync, claims only", "request", ours_stateless, "sync, claims only"),
        ("drf-oidc-jwks sync, user touched", "request", ours_user_touched, "sync, user touched"),
        ("drf-oidc-jwks sync, user touched, memo off", "request", ours_user_touched, "sync, user touched, memo off"),
        ("simplejwt stateless (JWK)", "request", simplejwt_stateless, None),
        ("simplejwt + user lookup", "request", simplejwt_db, None),
        ("drf-oidc-auth stateless", "request", drf_oidc_auth_stateless, None),
        ("drf-oidc-auth + get_or_create", "request", drf_oidc_auth_db, None),
    ]
    scenarios = {"1 token repeated": repeated, f"{users} distinct users": distinct}

    results: dict[str, dict[str, Any]] = {}
    for scenario, tokens in scenarios.items():
        samples: dict[str, list[float]] = {name: [] for name, *_ in candidates}
        queries: dict[str, float] = {}
        for pass_no in range(args.passes + 1):  # pass 0 is the warm-up
            for name, kind, fn, config in candidates:
                override = override_settings(DRF_OIDC_JWKS=configs[config]) if config else None
                if override:
                    override.enable()
                try:
                    if config:
                        # Switching settings resets the memo and the JWKS clients (setting_changed):
                        # an untimed warm loop brings them back to a live server's steady state.
                        for item in tokens if kind == "token" else requests_for(tokens):
                            fn(item)
                    inputs = tokens if kind == "token" else requests_for(tokens)
                    if pass_no == 1:
                        with CaptureQueriesContext(connection) as ctx:
                            for item in inputs[: min(200, len(inputs))]:
                                fn(item)
                        queries[name] = len(ctx.captured_queries) / min(200, len(inputs))
                        inputs = tokens if kind == "token" else requests_for(tokens)
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
            }
            for name, values in samples.items()
        }
    return {
        "results": results,
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


def table(report: dict[str, Any]) -> str:
    lines = []
    for scenario, rows in report["results"].items():
        floor = rows["RSA verify (floor)"]["median_us"]
        decode = rows["jwt.decode (PyJWT)"]["median_us"]
        lines.append(f"\n### {scenario}\n")
        lines.append(
            "| candidate | median µs | min–max µs | × floor | × jwt.decode | DB queries/call |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: |"
        )
        for name, r in rows.items():
            lines.append(
                f"| {name} | {r['median_us']:.1f} | {r['min_us']:.1f}–{r['max_us']:.1f} | "
                f"{r['median_us'] / floor:.2f} | {r['median_us'] / decode:.2f} | {r['queries_per_call']:.2f} |"
            )
        lines.append("")
        ours = {k: v["median_us"] for k, v in rows.items() if k.startswith("drf-oidc-jwks")}
        for peer in PEERS + PEERS_DB:
            p = rows[peer]["median_us"]
            compared = ", ".join(f"{k.removeprefix('drf-oidc-jwks ')} {p / v:.1f}×" for k, v in ours.items())
            lines.append(f"- vs {peer}: drf-oidc-jwks is faster by {compared}")
    lines.append(
        f"\nJWKS fetches in the whole run: {report['jwks_fetches']} "
        f"(discovery: {report['discovery_fetches']}, by drf-oidc-auth)"
    )
    env = report["environment"]
    lines.append("\nEnvironment: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000, help="distinct users (default 1000)")
    parser.add_argument("--passes", type=int, default=9, help="timed passes after the warm-up (default 9)")
    parser.add_argument("--quick", action="store_true", help="small counts, to keep the benchmark working in CI")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "latest.json"), help="where to write JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.passes = 50, 2
    report = build(args)
    print(table(report))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"\nJSON written to {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
