"""A ``/metrics`` view: prometheus_client's exposition, multiprocess-aware, with the key-set gauges.

Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` each scrape sums every worker's files (prometheus_client's
``MultiProcessCollector``); without it the default registry is served. Next to django-prometheus, mount
this view at another path, or keep django-prometheus's: the counters are on the same registry.
"""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from .metrics import COLLECTOR


def metrics(request: HttpRequest) -> HttpResponse:
    """Serve the metrics in Prometheus's text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(COLLECTOR)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
