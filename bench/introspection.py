"""Per-request cost of an introspected opaque token on a cache hit, and of the revocation check, vs a memoised JWT.

One process, one run: a loopback JWKS server and a loopback RFC 7662 endpoint; every candidate is a DRF
authentication class timed in every pass, interleaved; medians over passes (warm-up excluded), ratios
taken in this run. The default cache is a LocMemCache that counts its calls, so the report shows how
many shared-cache calls the revocation check made per request (polls only).

    .venv/bin/python -m bench.introspection            # LocMem
    .venv/bin/python -m bench.introspection --redis    # also the opaque cache hit on a real Redis
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIENCE = "https://api.bench"


def configure(issuer: Any, server: Any, idp: Any, redis_url: str | None) -> None:
    import django
    from django.conf import settings

    caches: dict[str, Any] = {
        "default": {
            "BACKEND": "tests.counting_cache.CountingLocMemCache",
            "LOCATION": "bench-introspection",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    if redis_url:
        caches["redis"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "drf_oidc_jwks"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES=caches,
        USE_TZ=True,
        DRF_OIDC_JWKS={
            "ISSUER": issuer.issuer,
            "JWKS_URL": server.url("/jwks.json"),
            "AUDIENCE": AUDIENCE,
            "SYNC_USERS": False,
            "INTROSPECTION": {"CLIENT_ID": idp.client_id, "CLIENT_SECRET": idp.client_secret, "URL": idp.url},
        },
    )
    django.setup()


def candidates(idp: Any, redis: bool) -> dict[str, Any]:
    from django.core.cache import caches

    from drf_oidc_jwks.authentication import JWKSAuthentication
    from drf_oidc_jwks.claims import Claims
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.introspection import IntrospectionConfig, Introspector

    issuer = get_settings().issuers[0]
    config = IntrospectionConfig.from_setting(issuer.introspection or {})

    class WithoutRevocation(JWKSAuthentication):
        # The same class with its revocation step off: the baseline the check is measured against.
        def check_revoked(self, claims: Claims) -> None:
            return None

    def shared_only(alias: str) -> JWKSAuthentication:
        # The answer from the shared cache on every request (in-process memo off), on ``alias``.
        s = get_settings()
        intro = Introspector(
            issuer, config, cache=caches[alias], leeway=s.leeway, http_timeout=s.http_timeout,
            allow_insecure_http=False, memo_size=0,
        )  # fmt: skip

        def build(payload: Any) -> Claims:
            return Claims(MappingProxyType(dict(payload)), issuer.claims, MappingProxyType({}), token_format="opaque")

        class SharedOnly(JWKSAuthentication):
            def verify_or_introspect(self, raw: str) -> Claims:
                return intro.introspect_as(raw, build)

        return SharedOnly()

    found: dict[str, Any] = {
        "JWT, memoised, revocation check off": WithoutRevocation(),
        "JWT, memoised": JWKSAuthentication(),
        "opaque, cache hit": JWKSAuthentication(),
        "opaque, cache hit, revocation check off": WithoutRevocation(),
        "opaque, shared-cache hit (LocMem, memo off)": shared_only("default"),
    }
    if redis:
        found["opaque, shared-cache hit (Redis, memo off)"] = shared_only("redis")
    return found


def measure(args: argparse.Namespace, issuer: Any, idp: Any) -> dict[str, Any]:
    from django.core.cache import caches
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from drf_oidc_jwks import revocation

    now = int(time.time())
    jwt_token = issuer.token(sub="alice", jti="j-alice", sid="s-alice")
    idp.tokens["opaque-bench-token"] = {"iss": issuer.issuer, "sub": "alice", "aud": AUDIENCE, "exp": now + 3600}
    # A realistic set: revocations of other users, so the check looks up a non-empty view.
    for i in range(args.revocations):
        revocation.revoke(issuer.issuer, sub=f"gone-{i}")
    factory = APIRequestFactory()
    classes = candidates(idp, args.redis is not None)
    tokens = {name: ("opaque-bench-token" if name.startswith("opaque") else jwt_token) for name in classes}

    def requests_for(token: str) -> list[Request]:
        return [Request(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {token}")) for _ in range(args.requests)]

    samples: dict[str, list[float]] = {name: [] for name in classes}
    cache_calls: dict[str, int] = {name: 0 for name in classes}
    counting = caches["default"]
    for pass_no in range(args.passes + 1):
        for name, auth in classes.items():
            inputs = requests_for(tokens[name])
            auth.authenticate(inputs[0])  # warm: the first use fills the memo / the shared cache
            counting.reset_counts()  # type: ignore[attr-defined]
            started = time.perf_counter_ns()
            for req in inputs:
                auth.authenticate(req)
            elapsed = time.perf_counter_ns() - started
            if pass_no > 0:
                samples[name].append(elapsed / len(inputs) / 1000)
                if name == "JWT, memoised":
                    cache_calls[name] += sum(counting.calls.values())  # type: ignore[attr-defined]
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "median_us": medians,
        "jwt_revocation_cache_calls": cache_calls["JWT, memoised"],
        "requests_timed": args.requests * args.passes,
        "idp_requests": idp.requests,
        "revocations": args.revocations,
    }


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """The two figures issue 15 bounds: an opaque cache hit vs a memoised JWT, and the revocation check's cost."""
    med = result["median_us"]
    found = {
        "opaque cache hit / memoised JWT": med["opaque, cache hit"] / med["JWT, memoised"],
        "revocation check on / off (memoised JWT)": med["JWT, memoised"] / med["JWT, memoised, revocation check off"],
    }
    if "opaque, shared-cache hit (Redis, memo off)" in med:
        found["opaque Redis hit (memo off) / memoised JWT"] = (
            med["opaque, shared-cache hit (Redis, memo off)"] / med["JWT, memoised"]
        )
    return found


def report(result: dict[str, Any]) -> str:
    med = result["median_us"]
    base = med["JWT, memoised"]
    lines = ["| candidate | median µs/request | vs memoised JWT |", "| --- | ---: | ---: |"]
    for name, value in med.items():
        lines.append(f"| {name} | {value:.1f} | {value / base:.2f}x |")
    lines.append("")
    for what, ratio in ratios(result).items():
        lines.append(f"- {what}: {ratio:.2f}x")
    lines.append(
        f"- shared-cache calls by the memoised JWT row (revocation check on): {result['jwt_revocation_cache_calls']} "
        f"over {result['requests_timed']} requests (polls only); {result['revocations']} revocations held"
    )
    lines.append(f"- introspection requests to the IdP during the run: {result['idp_requests']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--revocations", type=int, default=1000)
    parser.add_argument("--redis", nargs="?", const="start", default=None, help="a Redis URL, or none to start one")
    parser.add_argument("--json", action="store_true", help="print the result (and its ratios) as JSON")
    args = parser.parse_args(argv)

    from drf_oidc_jwks.testing import TestIssuer
    from tests.introspection_server import introspection_server

    issuer = TestIssuer(audience=AUDIENCE)
    redis_server: Any = None
    with issuer.serve() as server, introspection_server() as idp:
        if args.redis == "start":
            from tests.services import RedisServer

            redis_server = RedisServer().start()
            args.redis = redis_server.url
        try:
            configure(issuer, server, idp, args.redis)
            result = measure(args, issuer, idp)
        finally:
            if redis_server is not None:
                redis_server.close()
    if args.json:
        import json

        print(json.dumps({**result, "ratios": ratios(result)}))
    else:
        print(report(result))
    return 0


run: Callable[[list[str] | None], int] = main

if __name__ == "__main__":
    raise SystemExit(main())
