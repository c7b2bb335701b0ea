"""The metrics and the receivers that feed them, on prometheus_client's default registry.

Counters and the histogram are process-local values that prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``) writes to files and sums across workers at scrape time. The key-set
age is read from the shared cache at scrape time (:class:`KeySetCollector`), so it is right whichever
worker answers. Label values are bounded: ``issuer`` is a configured ``ISSUER`` (else ``"other"``),
``code`` a code of ``exceptions.REGISTRY`` (else ``"other"``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from drf_oidc_jwks import signals
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import REGISTRY
from drf_oidc_jwks.jwks import get_client

PREFIX = "drf_oidc_jwks_"
OTHER = "other"

TOKENS_VERIFIED = Counter(f"{PREFIX}tokens_verified", "Tokens verified.", ["issuer"])
TOKENS_REFUSED = Counter(f"{PREFIX}tokens_refused", "Tokens refused, by refusal code.", ["issuer", "code"])
TOKEN_MEMO = Counter(
    f"{PREFIX}token_memo_lookups", "Verified tokens by whether the in-process memo answered.", ["result"]
)
JWKS_FETCHES = Counter(
    f"{PREFIX}jwks_fetches", "JWKS fetches by result (ok, not_modified, error).", ["issuer", "result"]
)
JWKS_FETCH_SECONDS = Histogram(
    f"{PREFIX}jwks_fetch_duration_seconds",
    "Duration of answered JWKS fetches.",
    ["issuer"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
STALE_SERVED = Counter(f"{PREFIX}stale_keys_served", "Requests answered with keys past their freshness.", ["issuer"])
TOKENS_REVOKED = Counter(f"{PREFIX}tokens_revoked", "Tokens found revoked.", ["issuer", "code"])


def issuer_label(issuer: Any) -> str:
    """A configured ``ISSUER``, else ``"other"``: never a value a token chose."""
    return issuer if isinstance(issuer, str) and get_settings().issuer_for(issuer) is not None else OTHER


def code_label(code: Any) -> str:
    """A code of the registry, else ``"other"``."""
    return code if isinstance(code, str) and code in REGISTRY else OTHER


def on_refused(sender: Any, *, code: Any = None, issuer: Any = None, **kwargs: Any) -> None:
    """Count a refused token."""
    TOKENS_REFUSED.labels(issuer=issuer_label(issuer), code=code_label(code)).inc()


def on_verified(sender: Any, *, issuer: Any = None, memoised: bool = False, **kwargs: Any) -> None:
    """Count a verified token, and whether the memo answered."""
    TOKENS_VERIFIED.labels(issuer=issuer_label(issuer)).inc()
    TOKEN_MEMO.labels(result="hit" if memoised else "miss").inc()


def on_fetched(sender: Any, *, issuer: Any = None, status: Any = 200, seconds: float = 0.0, **kwargs: Any) -> None:
    """Count an answered JWKS fetch and observe its duration."""
    label = issuer_label(issuer)
    JWKS_FETCHES.labels(issuer=label, result="not_modified" if status == 304 else "ok").inc()
    JWKS_FETCH_SECONDS.labels(issuer=label).observe(seconds)


def on_fetch_failed(sender: Any, *, issuer: Any = None, **kwargs: Any) -> None:
    """Count a failed JWKS fetch."""
    JWKS_FETCHES.labels(issuer=issuer_label(issuer), result="error").inc()


def on_stale(sender: Any, *, issuer: Any = None, **kwargs: Any) -> None:
    """Count a request served with stale keys."""
    STALE_SERVED.labels(issuer=issuer_label(issuer)).inc()


def on_revoked(sender: Any, *, issuer: Any = None, code: Any = None, **kwargs: Any) -> None:
    """Count a revoked token."""
    TOKENS_REVOKED.labels(issuer=issuer_label(issuer), code=code_label(code)).inc()


RECEIVERS = (
    (signals.token_refused, on_refused),
    (signals.token_verified, on_verified),
    (signals.jwks_fetched, on_fetched),
    (signals.jwks_fetch_failed, on_fetch_failed),
    (signals.stale_keys_served, on_stale),
    (signals.token_revoked, on_revoked),
)


class KeySetCollector(Collector):
    """Each configured issuer's key-set age and kid count, read from the shared cache at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily(
            f"{PREFIX}jwks_age_seconds", "Seconds since the shared key set was fetched.", labels=["issuer"]
        )
        kids = GaugeMetricFamily(f"{PREFIX}jwks_keys", "Keys in the shared key set.", labels=["issuer"])
        now = time.time()
        try:
            issuers = get_settings().issuers
        except Exception:  # noqa: BLE001 - a scrape must not fail on a broken setting (the checks report it)
            issuers = ()
        for issuer in issuers:
            entry = get_client(issuer).snapshot().jwks
            if entry is not None:
                age.add_metric([issuer.issuer], max(0.0, now - entry.fetched_at))
                kids.add_metric([issuer.issuer], len(entry.kids))
        yield age
        yield kids


COLLECTOR = KeySetCollector()


def connect() -> None:
    """Connect the receivers (strong references, idempotent) and register the key-set collector once."""
    from prometheus_client import REGISTRY as DEFAULT

    for signal, receiver in RECEIVERS:
        signal.connect(receiver, weak=False, dispatch_uid=f"drf_oidc_jwks.prometheus.{receiver.__name__}")
    try:
        DEFAULT.register(COLLECTOR)
    except ValueError:
        pass  # registered already (ready() ran twice, as in some test set-ups)
