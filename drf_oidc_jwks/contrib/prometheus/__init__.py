"""Prometheus metrics for drf-oidc-jwks: add ``"drf_oidc_jwks.contrib.prometheus"`` to ``INSTALLED_APPS``.

Needs ``pip install drf-oidc-jwks[prometheus]``. See docs/operations.md for the metric names and labels.
"""
