"""Discovery and JWKS of the development issuer, to include: ``path("dev-issuer/", include(...urls))``.

The prefix you include it under is the path of ``DEV_ISSUER_URL`` (by default ``DRF_OIDC_JWKS["ISSUER"]``).
"""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path(".well-known/openid-configuration", views.discovery, name="devissuer-discovery"),
    path("jwks.json", views.jwks, name="devissuer-jwks"),
]
