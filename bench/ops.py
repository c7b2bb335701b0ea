"""Operations costs: the memoised path with no signal receivers against the same path without the hooks,
and the worst request latency while refresh-ahead refreshes the JWKS from a slow identity provider.

One process, one run. The no-hook baseline is the memoised branch of ``verify_token`` as it was before the
hooks (settings, clock, memo, SHA-256, lookup, the key-set check), timed interleaved with ``verify_token``
itself, with no receiver and with the Prometheus receivers connected. The refresh-ahead part serves the JWKS
with a delay of seconds, lets the key set enter its refresh-ahead window, and times every memoised call
until the background refresh is done; latencies are given as ratios to the median memoised call.

    .venv/bin/python -m bench.ops            # full run
    .venv/bin/python -m bench.ops --quick    # small counts, as in CI
    .venv/bin/python -m bench.ops --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIENCE = "https://api.bench"
TTL, AHEAD, DELAY = 20.0, 2.0, 1.5  # the window opens 18 s after the fetch; the slow IdP answers 1.5 s later


def configure_django(issuer: Any, server: Any) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "drf_oidc_jwks"],
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bench-ops"}},
        USE_TZ=True,
        DRF_OIDC_JWKS={
            "ISSUER": issuer.issuer,
            "JWKS_URL": server.url("/jwks.json"),
            "AUDIENCE": AUDIENCE,
            "JWKS_CACHE_TTL": TTL,
            "JWKS_REFRESH_AHEAD": AHEAD,
        },
    )
    django.setup()


get_settings: Any = None
get_memo: Any = None


def bind_baseline() -> None:
    """Bind the names the baseline looks up as module globals, exactly as tokens.py does."""
    global get_settings, get_memo
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.tokens import get_memo


def verify_without_hooks(raw: str | bytes, settings: Any = None, *, now: float | None = None) -> Any:
    """The memoised branch of verify_token without the operations hooks: the baseline.

    Line for line the branch before the hooks (``git show 91c8ff4:drf_oidc_jwks/tokens.py``), with the same
    module-global lookups, so the difference timed is the hooks and nothing else.
    """
    s = settings or get_settings()
    clock = time.time() if now is None else now
    memo = get_memo(s) if now is None else None
    digest = b""
    if memo is not None:
        digest = hashlib.sha256(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")).digest()
        hit = memo.get(digest, clock)
        if hit is not None:
            return hit
    raise RuntimeError(f"the token is not memoised ({len(digest)})")


def time_per_call(fn: Callable[[str], Any], token: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        fn(token)
    return (time.perf_counter() - started) / count


def overhead(args: argparse.Namespace, token: str) -> dict[str, Any]:
    from drf_oidc_jwks.contrib.prometheus import metrics
    from drf_oidc_jwks.tokens import verify_token

    def with_receivers(raw: str) -> Any:
        return verify_token(raw)

    candidates: dict[str, Callable[[str], Any]] = {
        "memoised, no hooks (baseline)": verify_without_hooks,
        "memoised, no receivers": verify_token,
    }
    samples: dict[str, list[float]] = {name: [] for name in [*candidates, "memoised, Prometheus receivers"]}
    for index in range(args.passes + 1):
        for name, fn in candidates.items():
            per_call = time_per_call(fn, token, args.calls)
            if index:
                samples[name].append(per_call)
        metrics.connect()  # the Prometheus receivers, connected for one timing and disconnected again
        per_call = time_per_call(with_receivers, token, args.calls)
        for signal, receiver in metrics.RECEIVERS:
            signal.disconnect(receiver, dispatch_uid=f"drf_oidc_jwks.prometheus.{receiver.__name__}")
        if index:
            samples["memoised, Prometheus receivers"].append(per_call)
    medians = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    fastest = {name: min(values) * 1e6 for name, values in samples.items()}
    base, base_min = medians["memoised, no hooks (baseline)"], fastest["memoised, no hooks (baseline)"]
    return {
        name: {"median_us": m, "ratio": m / base, "min_us": fastest[name], "min_ratio": fastest[name] / base_min}
        for name, m in medians.items()
    }


def refresh_ahead(args: argparse.Namespace, issuer: Any, server: Any, token: str) -> dict[str, Any]:
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.jwks import get_client
    from drf_oidc_jwks.tokens import verify_token

    client = get_client(get_settings().issuers[0])
    memoised = [time_per_call(verify_token, token, 2000) for _ in range(5)]
    median = statistics.median(memoised)
    fetched_at = client.current_keyset().fetched_at
    new = issuer.add_key("RS256")
    server.delay = DELAY
    while time.time() < fetched_at + TTL - AHEAD - 0.5:
        verify_token(token)
        time.sleep(0.001)
    latencies = timed_until_refreshed(client, new.kid, token, AHEAD + DELAY + 3)
    server.delay = 0.0
    quiet = timed_for(token, len(latencies))  # the control: as many calls with no refresh anywhere
    return {
        "memoised_median_us": median * 1e6,
        "calls_during_refresh": len(latencies),
        "worst_us": latencies[-1] * 1e6,
        "worst_ratio": latencies[-1] / median,
        "p99_ratio": latencies[int(len(latencies) * 0.99)] / median,
        "quiet_worst_ratio": quiet[-1] / median,
        "quiet_p99_ratio": quiet[int(len(quiet) * 0.99)] / median,
        "jwks_fetches": server.total(),
        "new_keys_used_after": new.kid in client.known_kids(),
        "idp_delay_s": DELAY,
    }


def timed_until_refreshed(client: Any, kid: str | None, token: str, limit: float) -> list[float]:
    """Time each memoised call from just before the window until the background refresh brought ``kid``."""
    from drf_oidc_jwks import background
    from drf_oidc_jwks.tokens import verify_token

    latencies: list[float] = []
    deadline = time.monotonic() + limit
    seen_running = False
    while time.monotonic() < deadline:
        started = time.perf_counter()
        verify_token(token)
        latencies.append(time.perf_counter() - started)
        seen_running = seen_running or background.running(client.state.prefix)
        if seen_running and not background.running(client.state.prefix) and kid in client.known_kids():
            break
    return sorted(latencies)


def timed_for(token: str, count: int) -> list[float]:
    from drf_oidc_jwks.tokens import verify_token

    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        verify_token(token)
        latencies.append(time.perf_counter() - started)
    return sorted(latencies)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from drf_oidc_jwks.testing import TestIssuer

    issuer = TestIssuer(audience=AUDIENCE)
    with issuer.serve() as server:
        configure_django(issuer, server)
        bind_baseline()
        from drf_oidc_jwks.tokens import verify_token

        token = issuer.token(sub="bench", expires_in=3600)
        verify_token(token)  # verified once: memoised from now on
        report = {"overhead": overhead(args, token), "refresh_ahead": refresh_ahead(args, issuer, server, token)}
    report["environment"] = {"python": platform.python_version(), "machine": platform.machine()}
    report["calls_per_pass"], report["passes"] = args.calls, args.passes
    return report


def table(report: dict[str, Any]) -> str:
    lines = [
        "| candidate | median µs | × no hooks | fastest pass µs | × no hooks |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in report["overhead"].items():
        lines.append(f"| {name} | {r['median_us']:.2f} | {r['ratio']:.3f} | {r['min_us']:.2f} | {r['min_ratio']:.3f} |")
    ra = report["refresh_ahead"]
    lines.append(
        f"\nRefresh-ahead from an IdP answering in {ra['idp_delay_s']:g} s: {ra['calls_during_refresh']} memoised "
        f"calls during the window and the refresh; worst {ra['worst_us']:.1f} µs = {ra['worst_ratio']:.1f}× the "
        f"median memoised call ({ra['memoised_median_us']:.2f} µs), p99 {ra['p99_ratio']:.2f}×; "
        f"as many calls with no refresh anywhere: worst {ra['quiet_worst_ratio']:.1f}×, "
        f"p99 {ra['quiet_p99_ratio']:.2f}×; "
        f"{ra['jwks_fetches']} JWKS fetches in all; new keys used after: {ra['new_keys_used_after']}."
    )
    lines.append(f"{report['calls_per_pass']} calls per pass, {report['passes']} passes after a warm-up.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (CI)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    args = parser.parse_args(argv)
    args.calls, args.passes = (2000, 3) if args.quick else (20000, 15)
    report = measure(args)
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
