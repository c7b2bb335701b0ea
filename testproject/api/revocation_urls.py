"""URLs of the opaque-token and revocation preview (testproject/api/revocation_views.py)."""

from __future__ import annotations

from django.urls import path

from . import revocation_views

urlpatterns = [
    path("api/preview/me", revocation_views.PreviewMeView.as_view(), name="preview-me"),
    path("preview/backchannel-logout/", revocation_views.PreviewBackchannelLogoutView.as_view(), name="preview-logout"),
]
