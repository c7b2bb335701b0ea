"""The drf-spectacular set-up of docs/openapi.md: the page includes the ``[start:name]`` sections verbatim
(pymdownx.snippets), and tests/test_openapi.py runs this module as the settings and URLconf of a project.

The lines before the first section stand for what your project already has; the test runs the sections in
the page's order on top of them (settings, oauth; then bearer for the token-field variant).
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from drf_oidc_jwks.permissions import HasScope

INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "drf_oidc_jwks"]
REST_FRAMEWORK: dict[str, Any] = {"DEFAULT_AUTHENTICATION_CLASSES": ["drf_oidc_jwks.authentication.JWKSAuthentication"]}
DRF_OIDC_JWKS: dict[str, Any] = {"ISSUER": "https://auth.example.com", "AUDIENCE": "https://api.example.com"}


class ReportSerializer(serializers.Serializer):
    title = serializers.CharField()


class ReportsView(generics.GenericAPIView):
    serializer_class = ReportSerializer
    permission_classes = [HasScope("reports:read")]

    def get(self, request: Request) -> Response:
        return Response(self.get_serializer([], many=True).data)


# --8<-- [start:settings]
# settings.py -- after: pip install "drf-oidc-jwks[spectacular]"
INSTALLED_APPS += [
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by your project: no CDN
]

REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"

SPECTACULAR_SETTINGS = {
    "TITLE": "Reports API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,  # the schema view itself is not an operation of the API
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {
        "persistAuthorization": True,  # keep the token across page reloads
        "validatorUrl": None,  # no badge fetched from validator.swagger.io
    },
    # drf-spectacular's default hook, then the one documenting HasAuthLevel (step-up) in each operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "drf_oidc_jwks.openapi.postprocess_step_up",
    ],
}
# --8<-- [end:settings]

# --8<-- [start:oauth]
# Swagger UI's "Authorize" logs in at the IdP itself (authorization code + PKCE): register a *public*
# client there with the redirect URI  https://<your host>/api/docs/oauth2-redirect.html
DRF_OIDC_JWKS["OPENAPI_SCHEME"] = "openIdConnect"  # the default: the scheme points at the IdP's discovery
SPECTACULAR_SETTINGS["SWAGGER_UI_OAUTH2_CONFIG"] = {
    "clientId": "reports-api-docs",  # the public client's id (no secret: a browser cannot keep one)
    "usePkceWithAuthorizationCodeGrant": True,
    "scopes": "openid reports:read",
}
# --8<-- [end:oauth]


# --8<-- [start:urls]
# urls.py
from drf_spectacular.views import (  # noqa: E402
    SpectacularAPIView,
    SpectacularSwaggerOauthRedirectView,
    SpectacularSwaggerView,
)

urlpatterns = [
    path("api/reports", ReportsView.as_view()),  # your API
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Swagger UI returns here from the IdP's login page: the redirect URI of the public client.
    path("api/docs/oauth2-redirect.html", SpectacularSwaggerOauthRedirectView.as_view(), name="swagger-oauth-redirect"),
]
# --8<-- [end:urls]

# --8<-- [start:bearer]
# No interactive login for the docs (client credentials only, or the development issuer): a token field.
DRF_OIDC_JWKS["OPENAPI_SCHEME"] = "bearer"
# --8<-- [end:bearer]
