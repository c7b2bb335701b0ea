from __future__ import annotations

from django.apps import AppConfig


class PrometheusConfig(AppConfig):
    name = "drf_oidc_jwks.contrib.prometheus"
    label = "drf_oidc_jwks_prometheus"
    verbose_name = "OIDC JWKS Prometheus metrics"

    def ready(self) -> None:
        from .metrics import connect

        connect()
