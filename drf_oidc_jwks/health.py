"""``health/``: readiness for load balancers and Kubernetes probes, from the shared cache only.

200 when every configured issuer has usable keys (fresh, or stale within ``JWKS_MAX_STALE``), 503
otherwise; the JSON says per issuer its state, the key set's age and how many kids it holds. A probe
never waits for the identity provider: keys that are stale or missing start one background refresh
(bounded like any other: the lock, the failure backoff, one thread per issuer per process).
"""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views import View

from .conf import IssuerSettings, get_settings
from .jwks import get_client

#: The states an issuer's keys can be in; the first two serve tokens.
FRESH, STALE, EXPIRED, MISSING = "fresh", "stale", "expired", "missing"
USABLE = (FRESH, STALE)


def issuer_health(issuer: IssuerSettings, now: float) -> dict[str, Any]:
    """One issuer's readiness from its client's snapshot of the shared cache (no HTTP)."""
    client = get_client(issuer)
    entry = client.snapshot().jwks
    if entry is None:
        state, age, kids = MISSING, None, 0
    else:
        age = round(max(0.0, now - entry.fetched_at), 3)
        kids = len(entry.kids)
        state = FRESH if now < entry.fresh_until else STALE if now < entry.stale_until else EXPIRED
    if state != FRESH:
        client.refresh_in_background()
    return {"issuer": issuer.issuer, "state": state, "age": age, "kids": kids}


class HealthView(View):
    """GET ``health/``: 200 when every issuer has usable keys, 503 otherwise (no token needed)."""

    def get(self, request: HttpRequest) -> JsonResponse:
        now = time.time()
        issuers = [issuer_health(i, now) for i in get_settings().issuers]
        ready = all(i["state"] in USABLE for i in issuers)
        response = JsonResponse({"ready": ready, "issuers": issuers}, status=200 if ready else 503)
        response["Cache-Control"] = "no-store"
        return response
