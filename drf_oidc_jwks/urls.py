"""URL patterns to ``include()``: the RFC 9728 protected-resource metadata document."""

from __future__ import annotations

from django.urls import path, re_path

from . import views
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
]
