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


def configure(issuer: Any, server: Any, redis_url: str | None) -> None:
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
        },
    )
    django.setup()


def candidates(idp: Any, redis: bool) -> dict[str, Any]:
    from django.core.cache import caches

    from drf_oidc_jwks import revocation
    from drf_oidc_jwks.authentication import JWKSAuthentication
    from drf_oidc_jwks.claims import Claims
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.introspection import IntrospectionConfig, Introspector

    issuer = get_settings().issuers[0]
    config = IntrospectionConfig(client_id=idp.client_id, client_secret=idp.client_secret, url=idp.url)

    def introspector(alias: str, memo_size: int) -> Introspector:
        s = get_settings()
        return Introspector(
            issuer,
            config,
            cache=caches[alias],
            leeway=s.leeway,
            http_timeout=s.http_timeout,
            allow_insecure_http=False,
            memo_size=memo_size,
        )

    class WithRevocation(JWKSAuthentication):
        def get_validated_token(self, raw: str) -> Claims:
            claims = super().get_validated_token(raw)
            revocation.check(claims.raw)
            return claims

    def opaque(alias: str, check: bool, memo_size: int = 10000) -> type[JWKSAuthentication]:
        intro = introspector(alias, memo_size)

        def build(payload: Any) -> Claims:
            return Claims(MappingProxyType(dict(payload)), issuer.claims, MappingProxyType({}))

        class Opaque(JWKSAuthentication):
            # As authentication.py will at merge: the Claims memoised with the answer (introspect_as).
            def get_validated_token(self, raw: str) -> Claims:
                claims = intro.introspect_as(raw, build)
                if check:
                    revocation.check(claims.raw)
                return claims

        return Opaque

    found: dict[str, Any] = {
        "JWT, memoised": JWKSAuthentication(),
        "JWT, memoised + revocation check": WithRevocation(),
        "opaque, cache hit (in-process memo)": opaque("default", False)(),
        "opaque, cache hit (in-process memo) + revocation check": opaque("default", True)(),
        "opaque, shared-cache hit (LocMem, memo off)": opaque("default", False, 0)(),
    }
    if redis:
        found["opaque, shared-cache hit (Redis, memo off)"] = opaque("redis", False, 0)()
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
                if "revocation" in name and not name.startswith("opaque"):
                    cache_calls[name] += sum(counting.calls.values())  # type: ignore[attr-defined]
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "median_us": medians,
        "jwt_revocation_cache_calls": cache_calls["JWT, memoised + revocation check"],
        "requests_timed": args.requests * args.passes,
        "idp_requests": idp.requests,
        "revocations": args.revocations,
    }


def report(result: dict[str, Any]) -> str:
    med = result["median_us"]
    base = med["JWT, memoised"]
    lines = ["| candidate | median µs/request | vs memoised JWT |", "| --- | ---: | ---: |"]
    for name, value in med.items():
        lines.append(f"| {name} | {value:.1f} | {value / base:.2f}x |")
    revoc = med["JWT, memoised + revocation check"] / base - 1
    lines.append("")
    lines.append(
        f"revocation check on the memoised JWT path: {revoc * 100:+.1f}% ({result['revocations']} revocations held)"
    )
    lines.append(
        f"shared-cache calls by the JWT + revocation check row: {result['jwt_revocation_cache_calls']} "
        f"over {result['requests_timed']} requests (polls only)"
    )
    lines.append(f"introspection requests to the IdP during the run: {result['idp_requests']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--revocations", type=int, default=1000)
    parser.add_argument("--redis", nargs="?", const="start", default=None, help="a Redis URL, or none to start one")
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
            configure(issuer, server, args.redis)
            result = measure(args, issuer, idp)
        finally:
            if redis_server is not None:
                redis_server.close()
    print(report(result))
    return 0


run: Callable[[list[str] | None], int] = main

if __name__ == "__main__":
    raise SystemExit(main())
