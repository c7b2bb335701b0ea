"""URL patterns to ``include()``: the RFC 9728 metadata document, ``health/`` and the back-channel logout receiver."""

from __future__ import annotations

from django.urls import path, re_path

from . import backchannel, health, views
from .challenges import WELL_KNOWN, metadata_url

__all__ = ["WELL_KNOWN", "app_name", "metadata_url", "urlpatterns"]

app_name = "drf_oidc_jwks"

urlpatterns = [
    path(
        ".well-known/oauth-protected-resource", views.ProtectedResourceMetadataView.as_view(), name="resource-metadata"
    ),
    re_path(
        r"^\.well-known/oauth-protected-resource/(?P<resource_path>.+)$",
        views.ProtectedResourceMetadataView.as_view(),
        name="resource-metadata-path",
    ),
    # Operations: readiness (docs/operations.md)
    path("health/", health.HealthView.as_view(), name="health"),
    # OpenID Connect Back-Channel Logout 1.0: a plain Django view (CSRF-exempt, no DRF authentication).
    path("backchannel-logout/", backchannel.BackchannelLogoutView.as_view(), name="backchannel-logout"),
]
