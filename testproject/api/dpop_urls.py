"""URLs of the DPoP test views, included under ``api/dpop/``."""

from __future__ import annotations

from django.urls import path

from . import dpop_views

urlpatterns = [
    path("proof", dpop_views.DPoPProofView.as_view(), name="dpop-proof"),
    path("nonce", dpop_views.DPoPNonceView.as_view(), name="dpop-nonce"),
]
