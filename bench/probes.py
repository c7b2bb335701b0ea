"""Two probes of ``bench.run`` beside the timings: memo memory per entry, and a profile of the memo-miss path.

Both run in the benchmark's process with its settings and loopback JWKS server:

* memory: ``tracemalloc``'s traced total before and after N distinct tokens go through
  ``authenticate`` into the memo (requests built beforehand, the JWKS already warm), divided by N;
* profile: ``cProfile`` over N memo-miss requests (``TOKEN_CACHE_TTL: 0``), the top functions by
  own time (``tottime``), so a change to the verifier shows where the time went.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
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
