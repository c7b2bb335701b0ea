"""What ``bench.run`` measures beside the interleaved timings: the crypto floors, memo memory, a profile.

Both run in the benchmark's process with its settings and loopback JWKS server:

* memory: ``tracemalloc``'s traced total before and after N distinct tokens go through
  ``authenticate`` into the memo (requests built beforehand, the JWKS already warm), divided by N;
* profile: ``cProfile`` over N memo-miss requests (``TOKEN_CACHE_TTL: 0``), the top functions by
  own time (``tottime``), so a change to the verifier shows where the time went.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import tracemalloc
from collections.abc import Callable
from typing import Any

#: Claims a typical access token carries besides iss/aud/sub/iat/exp, sized so the token is about 800 bytes.
TYPICAL_CLAIMS: dict[str, Any] = {
    "scope": "openid profile email docs:read docs:write",
    "role": "user",
    "tenant_id": "acme",
    "email_verified": True,
}


def typical_token(issuer: Any, key: Any, sub: str) -> str:
    """A signed token of a typical size (about 800 bytes with RS256-2048)."""
    return str(
        issuer.token(
            sub=sub, key=key, email=f"{sub}@example.com", name=f"User {sub}", jti=f"jti-{sub}", **TYPICAL_CLAIMS
        )
    )


def memo_bytes_per_entry(
    authenticate: Callable[[Any], Any], requests: list[Any], warm: Any, clear: Callable[[], None]
) -> float:
    """Bytes the memo keeps per verified token: traced memory growth over ``len(requests)`` distinct tokens."""
    clear()
    authenticate(warm)  # keys fetched and parsed, settings built: not part of any entry
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for request in requests:
            authenticate(request)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / len(requests)


def profile_top(run: Callable[[], None], top: int = 5) -> list[dict[str, Any]]:
    """The ``top`` functions by own time while ``run()`` runs: name, calls, own seconds, share of the total."""
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    out = []
    for (filename, line, name), (_cc, calls, tottime, _ct, _callers) in rows[:top]:
        where = filename.rsplit("/", 2)
        place = "/".join(where[-2:]) if filename not in ("~", "") else "builtin"
        out.append({"function": f"{name} ({place}:{line})", "calls": calls, "own_s": tottime, "share": tottime / total})
    return out


def profile_table(rows: list[dict[str, Any]], calls: int) -> str:
    lines = [
        f"\n### Profile of the memo-miss path ({calls} requests, top {len(rows)} by own time)\n",
        "| function | calls | own µs/request | share |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| `{r['function']}` | {r['calls']} | {r['own_s'] / calls * 1e6:.1f} | {r['share']:.0%} |")
    return "\n".join(lines)


def crypto_floors(keys: dict[str, Any], minted: dict[str, list[str]]) -> dict[str, Callable[[str], Any]]:
    """Per algorithm, the verify alone with the key object preloaded and the token already split and decoded."""
    import jwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    split: dict[str, tuple[bytes, bytes]] = {}
    for t in {t for tokens in minted.values() for t in tokens}:
        signing_input, _, signature = t.rpartition(".")
        split[t] = (signing_input.encode(), jwt.utils.base64url_decode(signature))
    rsa_key = keys["RS256"].private_key.public_key()
    ec_key = keys["ES256"].private_key.public_key()
    ed_key = keys["EdDSA"].private_key.public_key()
    # cryptography verifies ECDSA signatures in DER; the JWS form (r || s) is converted beforehand.
    der = {
        t: encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        for t, (_, sig) in ((t, split[t]) for t in minted["ES256"])
    }

    def rsa_floor(token: str) -> Any:
        signing_input, signature = split[token]
        rsa_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())

    def es256_floor(token: str) -> Any:
        ec_key.verify(der[token], split[token][0], ec.ECDSA(hashes.SHA256()))

    def eddsa_floor(token: str) -> Any:
        signing_input, signature = split[token]
        ed_key.verify(signature, signing_input)

    return {"RS256": rsa_floor, "ES256": es256_floor, "EdDSA": eddsa_floor}


def probe(args: argparse.Namespace, issuer: Any, key: Any, memo_on: dict[str, Any], memo_off: dict[str, Any]) -> Any:
    """Memo memory per entry (tracemalloc) and, with ``--profile``, the memo-miss path's top functions."""
    from django.test.utils import override_settings
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from drf_oidc_jwks import tokens as verifier
    from drf_oidc_jwks.authentication import JWKSAuthentication

    ours = JWKSAuthentication()
    factory = APIRequestFactory()
    n = max(args.users, 200)
    typical = [typical_token(issuer, key, f"mem-{i:05d}") for i in range(n + 1)]
    requests = [Request(factory.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {t}")) for t in typical]
    out: dict[str, Any] = {"typical_token_bytes": statistics.mean(len(t) for t in typical)}
    with override_settings(DRF_OIDC_JWKS={**memo_on, "TOKEN_CACHE_SIZE": n + 10}):
        out["memo_bytes_per_entry"] = memo_bytes_per_entry(
            ours.authenticate, requests[1:], requests[0], verifier.reset_memo
        )
    if args.profile:
        with override_settings(DRF_OIDC_JWKS=memo_off):
            ours.authenticate(requests[0])

            def run() -> None:
                for request in requests:
                    ours.authenticate(request)

            out["profile"] = {"calls": len(requests), "top": profile_top(run)}
    return out
