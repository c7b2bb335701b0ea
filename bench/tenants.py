"""Per-call cost of 100 tenants on one templated issuer against one exact issuer, and the JWKS fetches it takes.

One process, one run, one loopback IdP serving one common key set; the candidates are timed in every
pass, interleaved, and the table gives medians over passes (warm-up excluded) and ratios of this run.

    .venv/bin/python -m bench.tenants             # full run
    .venv/bin/python -m bench.tenants --quick     # small counts, as in CI

Rows: ``single issuer`` is ``verify_token`` as the library runs it today (memo off, so every call
verifies). ``100 tenants`` and ``1 tenant`` run the tenant pipeline (issuer index -> the key set's
client -> signature -> claims -> TENANT_CLAIM) over the same key; the ratio between those two is
what the tenants themselves cost. Once the verifier is wired to the
index (step two), ``100 tenants`` becomes ``verify_token`` under a ``{tenant}`` ISSUER and this file
keeps its rows and its figures: the target is a ratio within 1.10 and exactly 1 JWKS fetch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIENCE = "https://api.bench"


def configure_django(issuer: str, jwks_url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "drf_oidc_jwks"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tenants"}},
        USE_TZ=True,
        DRF_OIDC_JWKS={
            "ISSUER": issuer,
            "JWKS_URL": jwks_url,
            "AUDIENCE": AUDIENCE,
            "PROVIDER": "entra",
            "TOKEN_CACHE_TTL": 0,
        },
    )
    django.setup()


def tenant_pipeline(template: str, jwks_url: str, tenants: Any) -> tuple[Callable[[str], Any], Callable[[], int]]:
    """Verify with the issuer index over one shared key set; return (verify, fetch count)."""
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.issuers import IssuerIndex, IssuerRule, compile_template
    from drf_oidc_jwks.jwks import JWKSClient
    from drf_oidc_jwks.tokens import read_unverified, validate_claims, verify_signature

    s = get_settings()
    base = dataclasses.replace(s.issuers[0], issuer=template, jwks_url=jwks_url)
    index = IssuerIndex([IssuerRule(base, template, compile_template(template, tenants), jwks_url, "tid")])
    clients: dict[str, JWKSClient] = {}
    concrete: dict[str, Any] = {}

    def verify(raw: str) -> Any:
        parsed = read_unverified(raw, s.max_token_bytes)
        found = index.require(parsed.payload.get("iss"))
        client = clients.get(found.keyset_id)
        if client is None:
            client = clients[found.keyset_id] = JWKSClient(base, s)
        alg = parsed.header["alg"]
        verify_signature(parsed, client.get_key(parsed.header.get("kid"), alg), alg)
        issuer = concrete.get(found.issuer)
        if issuer is None:
            issuer = concrete[found.issuer] = dataclasses.replace(found.settings, issuer=found.issuer)
        validate_claims(parsed.payload, issuer, s.leeway, time.time())
        found.check_payload(parsed.payload)
        return parsed.payload

    return verify, lambda: sum(c.fetch_count for c in clients.values())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from drf_oidc_jwks.testing import JWKSServer, Response, TestIssuer

    signer = TestIssuer(audience=AUDIENCE)
    server = JWKSServer()
    server.start()
    try:
        server.respond("/common/keys", Response(200, json.dumps(signer.jwks()).encode()))
        base = server.base_url
        template = base + "/{tenant}/v2.0"
        tenants = [f"tenant-{i:03d}" for i in range(args.tenants)]
        single_iss = f"{server.base_url}/{tenants[0]}/v2.0"
        configure_django(single_iss, server.url("/common/keys"))
        from drf_oidc_jwks.tokens import verify_token

        def tokens(issuers: list[str]) -> list[str]:
            return [
                signer.token(sub=f"u{i}", iss=iss, tid=iss.rsplit("/", 2)[-2], jti=str(i))
                for i, iss in enumerate(issuers[j % len(issuers)] for j in range(args.calls))
            ]

        many, many_count = tenant_pipeline(template, server.url("/common/keys"), "*")
        one, _one_count = tenant_pipeline(template, server.url("/common/keys"), [tenants[0]])
        candidates: dict[str, tuple[Callable[[str], Any], list[str]]] = {
            "single issuer (verify_token)": (verify_token, tokens([single_iss])),
            f"{args.tenants} tenants, one templated issuer": (
                many,
                tokens([f"{server.base_url}/{t}/v2.0" for t in tenants]),
            ),
            "1 tenant, one templated issuer": (one, tokens([single_iss])),
        }
        timings: dict[str, list[float]] = {name: [] for name in candidates}
        for n in range(args.passes + 1):
            for name, (func, batch) in candidates.items():
                start = time.perf_counter()
                for raw in batch:
                    func(raw)
                if n:  # the first pass warms the caches and is not counted
                    timings[name].append((time.perf_counter() - start) / len(batch) * 1e6)
        medians = {name: statistics.median(values) for name, values in timings.items()}
        floor = medians["single issuer (verify_token)"]
        one_row = medians["1 tenant, one templated issuer"]
        return {
            "tenants": args.tenants,
            "calls_per_pass": args.calls,
            "passes": args.passes,
            "rows": [
                {
                    "name": n,
                    "us_per_call": round(m, 1),
                    "ratio": round(m / floor, 3),
                    "ratio_1": round(m / one_row, 3),
                }
                for n, m in medians.items()
            ],
            "jwks_fetches_100_tenants": many_count(),
            "jwks_requests_seen_by_the_idp": server.total("/common/keys"),
        }
    finally:
        server.stop()


def table(report: dict[str, Any]) -> str:
    lines = ["| candidate | µs per call | ratio to single issuer | ratio to 1 tenant |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['name']} | {r['us_per_call']} | {r['ratio']} | {r['ratio_1']} |" for r in report["rows"]]
    lines.append("")
    lines.append(f"JWKS fetches for {report['tenants']} tenants: {report['jwks_fetches_100_tenants']} (client), ")
    lines[-1] += f"{report['jwks_requests_seen_by_the_idp']} requests seen by the IdP (all rows)"
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--calls", type=int, default=2000, help="tokens verified per candidate and pass")
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small counts, to keep the benchmark working in CI")
    parser.add_argument("--json", default=None, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.passes = 200, 2
    report = measure(args)
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
