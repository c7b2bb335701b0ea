"""The code of docs/adopting.md, one ``[start:name]`` section per block (the page includes them verbatim).

tests/test_adopting.py runs ``django-admin startproject``, appends these sections to the new project's
``settings.py`` and ``urls.py`` as the page says, runs the page's shell blocks against ``runserver``, and
counts the settings lines the page quotes. This file is never imported as a whole.
"""
# ruff: noqa
# mypy: ignore-errors
# fmt: off

# --8<-- [start:settings]
INSTALLED_APPS += ["rest_framework", "drf_oidc_jwks"]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["drf_oidc_jwks.authentication.JWKSAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
DRF_OIDC_JWKS = {
    "ISSUER": "http://127.0.0.1:8000/dev-issuer",
    "AUDIENCE": "http://127.0.0.1:8000/api",
}
# --8<-- [end:settings]

# --8<-- [start:devissuer-settings]
INSTALLED_APPS += ["drf_oidc_jwks.contrib.devissuer"]  # development only: refuses to start with DEBUG = False
# --8<-- [end:devissuer-settings]

# --8<-- [start:views]
# mysite/views.py
from rest_framework.response import Response
from rest_framework.views import APIView


class MeView(APIView):
    def get(self, request):
        claims = request.auth  # drf_oidc_jwks.claims.Claims (None for a session login)
        return Response({"user": request.user.get_username(), "sub": claims.sub if claims else None})
# --8<-- [end:views]

# --8<-- [start:urls]
# mysite/urls.py: below the existing urlpatterns
from django.urls import include
from mysite.views import MeView

urlpatterns += [path("api/me", MeView.as_view())]
# --8<-- [end:urls]

# --8<-- [start:devissuer-urls]
urlpatterns += [path("dev-issuer/", include("drf_oidc_jwks.contrib.devissuer.urls"))]  # development only
# --8<-- [end:devissuer-urls]

# --8<-- [start:real-idp]
DRF_OIDC_JWKS = {
    "ISSUER": "http://127.0.0.1:9000",  # the "issuer" line of: bash scripts/idp.sh start
    "AUDIENCE": "http://127.0.0.1:8000/api",  # the audience line (the resource tokens are asked for)
    "ALGORITHMS": ["RS256", "ES256"],  # what oidc-provider signs with
}
# --8<-- [end:real-idp]

# --8<-- [start:session-settings]
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "drf_oidc_jwks.authentication.JWKSAuthentication",  # first: its 401 + Bearer challenge is what clients get
    "rest_framework.authentication.SessionAuthentication",  # the admin's login, for the browsable API
]
# --8<-- [end:session-settings]

# --8<-- [start:session-urls]
urlpatterns += [path("api-auth/", include("rest_framework.urls"))]  # the browsable API's "Log in" link
# --8<-- [end:session-urls]
