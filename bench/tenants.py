"""Per-call cost of 100 tenants on one templated issuer against one exact issuer, and the JWKS fetches it takes.

One process, one run, one loopback IdP serving one common key set; the candidates are timed in every
pass, interleaved, and the table gives medians over passes (warm-up excluded) and ratios of this run.

    .venv/bin/python -m bench.tenants             # full run
    .venv/bin/python -m bench.tenants --quick     # small counts, as in CI

Rows: all three are ``verify_token`` as the library runs it (memo off, so every call verifies), under one
``ISSUERS`` setting: ``single issuer`` is an exact ``ISSUER``; ``100 tenants`` and ``1 tenant`` are tokens
of a ``{tenant}`` ``ISSUER`` (``TENANTS: "*"``, one ``JWKS_URL`` without ``{tenant}``, ``TENANT_CLAIM``).
The target is a ratio within 1.10 and exactly 1 JWKS fetch for the 100 tenants.
"""

from __future__ import annotations

import argparse
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


def configure_django(issuer: str, template: str, jwks_url: str) -> None:
    import django
    from django.conf import settings

    common = {"JWKS_URL": jwks_url, "AUDIENCE": AUDIENCE, "PROVIDER": "entra"}
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "drf_oidc_jwks"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tenants"}},
        USE_TZ=True,
        DRF_OIDC_JWKS={
            "ISSUERS": [
                {"ISSUER": issuer, **common},
                {"ISSUER": template, "TENANTS": "*", "TENANT_CLAIM": "tid", **common},
            ],
            "TOKEN_CACHE_TTL": 0,
        },
    )
    django.setup()


def template_fetches() -> int:
    """JWKS fetches made by the templated issuer's one client (every tenant shares it)."""
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.jwks import get_client

    return get_client(get_settings().issuers[1]).fetch_count


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
        single_iss = f"{server.base_url}/single/v2.0"
        configure_django(single_iss, template, server.url("/common/keys"))
        from drf_oidc_jwks.tokens import verify_token

        def tokens(issuers: list[str]) -> list[str]:
            return [
                signer.token(sub=f"u{i}", iss=iss, tid=iss.rsplit("/", 2)[-2], jti=str(i))
                for i, iss in enumerate(issuers[j % len(issuers)] for j in range(args.calls))
            ]

        candidates: dict[str, tuple[Callable[[str], Any], list[str]]] = {
            "single issuer (verify_token)": (verify_token, tokens([single_iss])),
            f"{args.tenants} tenants, one templated issuer": (
                verify_token,
                tokens([f"{server.base_url}/{t}/v2.0" for t in tenants]),
            ),
            "1 tenant, one templated issuer": (verify_token, tokens([f"{base}/{tenants[0]}/v2.0"])),
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
            "jwks_fetches_100_tenants": template_fetches(),
            "jwks_requests_seen_by_the_idp": server.total("/common/keys"),
        }
    finally:
        server.stop()


def table(report: dict[str, Any]) -> str:
    lines = ["| candidate | µs per call | ratio to single issuer | ratio to 1 tenant |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['name']} | {r['us_per_call']} | {r['ratio']} | {r['ratio_1']} |" for r in report["rows"]]
    lines.append("")
    lines.append(f"JWKS fetches for {report['tenants']} tenants: {report['jwks_fetches_100_tenants']} (client), ")
    lines[-1] += f"{report['jwks_requests_seen_by_the_idp']} requests seen by the IdP (all rows: one per issuer entry)"
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
