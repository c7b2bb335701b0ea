"""Per-proof cost of DPoP checks against the floor of one signature verification of the proof's algorithm.

One process, one run. For ES256 and EdDSA proofs: the bare signature verify (cryptography, inputs already split
and decoded: a lower bound, not a checker), ``check_proof`` alone, and ``check_proof`` plus the replay store's
``cache.add`` in a LocMemCache. Candidates are interleaved in every pass; the table gives medians over passes
(warm-up excluded) and ratios to the floor measured in this run.

    .venv/bin/python -m bench.dpop            # full run
    .venv/bin/python -m bench.dpop --quick    # small counts, as in CI
    .venv/bin/python -m bench.dpop --json out.json
"""

from __future__ import annotations

import argparse
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

URL = "https://api.bench/api/me"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl"
ALGORITHMS = ("ES256", "EdDSA")


def configure_django() -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "drf_oidc_jwks"],
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": "bench-dpop",
                "OPTIONS": {"MAX_ENTRIES": 1_000_000},
            }
        },
        USE_TZ=True,
    )
    django.setup()


def floor_for(alg: str, key: Any) -> Callable[[tuple[bytes, bytes]], None]:
    """The bare verify of ``alg`` with cryptography, on (signing input, signature in the form it wants)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    public = key.private_key.public_key()
    if alg == "ES256":
        return lambda item: public.verify(item[1], item[0], ec.ECDSA(hashes.SHA256()))
    return lambda item: public.verify(item[1], item[0])


def floor_input(alg: str, proof: str) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from drf_oidc_jwks.dpop import b64url_decode

    head, body, sig = proof.split(".")
    signature = b64url_decode(sig)
    if alg == "ES256":  # JWS carries r||s; cryptography takes DER, converted outside the timed loop
        signature = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    return f"{head}.{body}".encode(), signature


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from django.core.cache import caches

    from drf_oidc_jwks.dpop import check_proof
    from drf_oidc_jwks.dpop_store import ReplayStore
    from drf_oidc_jwks.testing_dpop import DPoPKey

    store = ReplayStore(caches["default"])
    keys = {alg: DPoPKey(alg) for alg in ALGORITHMS}

    def checked(proof: str) -> Any:
        return check_proof(proof, method="GET", url=URL, access_token=TOKEN, max_age=300, leeway=5)

    def checked_and_recorded(proof: str) -> None:
        store.remember(checked(proof), max_age=300, leeway=5)

    samples: dict[str, list[float]] = {}
    for pass_no in range(args.passes + 1):  # pass 0 is the warm-up
        for alg, key in keys.items():
            # Fresh proofs every pass (untimed): the replay store must see new jtis.
            proofs = [key.proof("GET", URL, access_token=TOKEN) for _ in range(args.proofs)]
            floor, floor_items = floor_for(alg, key), [floor_input(alg, p) for p in proofs]
            timed: list[tuple[str, Callable[[Any], Any], list[Any]]] = [
                (f"{alg} verify (floor)", floor, floor_items),
                (f"{alg} check_proof", checked, proofs),
                (f"{alg} check_proof + LocMem replay add", checked_and_recorded, proofs),
            ]
            for name, fn, items in timed:
                started = time.perf_counter_ns()
                for item in items:
                    fn(item)
                elapsed = time.perf_counter_ns() - started
                if pass_no > 0:
                    samples.setdefault(name, []).append(elapsed / len(items) / 1000)
    results = {
        name: {"median_us": statistics.median(v), "min_us": min(v), "max_us": max(v)} for name, v in samples.items()
    }
    return {"results": results, "proofs_per_pass": args.proofs, "passes": args.passes, "environment": environment()}


# Rows of bench/run.py: DPoP through JWKSAuthentication (the memoised access token, and its first request).

#: The proof algorithms bench/run.py times DPoP requests with (each against its own verify floor).
RUN_ALGORITHMS = ("ES256", "EdDSA")


def bound_tokens(issuer: Any, key: Any, subs: list[str], clients: dict[str, Any]) -> dict[str, list[str]]:
    """Per proof algorithm, one access token per user (signed with ``key``) bound to that algorithm's client key."""
    return {
        f"dpop {alg}": [issuer.token(sub=s, key=key, cnf=c.cnf(), jti=f"{alg}-{s}") for s in subs]
        for alg, c in clients.items()
    }


def dpop_requests(factory: Any, client: Any, tokens: list[str]) -> list[Any]:
    """DRF requests with ``Authorization: DPoP`` and a fresh proof each (made untimed: a proof is good once)."""
    from rest_framework.request import Request

    # With the Host header every HTTP/1.1 client sends (the factory leaves it out; get_host() then rebuilds it).
    headers = [client.headers(t, "GET", "http://testserver/api/me") for t in tokens]
    return [Request(factory.get("/api/me", HTTP_HOST="testserver", **h)) for h in headers]


def cache_add() -> Callable[[Any], None]:
    """One ``cache.add`` of a new key in the default cache: the replay store's share of a DPoP request.

    The keys have the replay store's form and length (Django's cache checks every key character by character).
    """
    import itertools

    from django.core.cache import caches

    from drf_oidc_jwks.dpop_store import replay_key

    sample = replay_key("bench", "bench")
    prefix, width = sample[:-22], 22  # the store's prefix, then 22 base64url characters of digest
    cache, counter = caches["default"], itertools.count()
    return lambda _: cache.add(f"{prefix}{next(counter):0{width}d}", 1, 300)


def environment() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        **{name: version(name) for name in ("Django", "PyJWT", "cryptography")},
    }


def table(report: dict[str, Any]) -> str:
    rows = report["results"]
    lines = ["| candidate | median µs | min–max µs | × floor of its algorithm |", "| --- | ---: | ---: | ---: |"]
    for name, r in rows.items():
        floor = rows[f"{name.split()[0]} verify (floor)"]["median_us"]
        lines.append(
            f"| {name} | {r['median_us']:.1f} | {r['min_us']:.1f}–{r['max_us']:.1f} | {r['median_us'] / floor:.2f} |"
        )
    lines.append(f"\n{report['proofs_per_pass']} proofs per pass, {report['passes']} passes after a warm-up.")
    lines.append("Environment: " + ", ".join(f"{k} {v}" for k, v in report["environment"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (CI)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    args = parser.parse_args(argv)
    args.proofs, args.passes = (200, 3) if args.quick else (2000, 7)
    configure_django()
    report = measure(args)
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
