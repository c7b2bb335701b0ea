"""``include("drf_oidc_jwks.contrib.prometheus.urls")``: ``metrics`` (prometheus_client's text format)."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "drf_oidc_jwks_prometheus"

urlpatterns = [path("metrics", views.metrics, name="metrics")]
