"""drf-spectacular: the security scheme, per-operation scopes that agree with HasScope, Swagger UI served locally."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
import requests
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from drf_oidc_jwks.authentication import JWKSAuthentication
from drf_oidc_jwks.permissions import HasRole, HasScope
from drf_oidc_jwks.testing import TestIssuer

pytest_plugins = ["drf_oidc_jwks.pytest_plugin"]
pytestmark = pytest.mark.django_db

REPORTS = {
    ("/api/reports", "get"): ["reports:read"],
    ("/api/reports", "post"): ["reports:write"],
    ("/api/reports/export", "get"): ["reports:export", "reports:read"],
    ("/api/analytics", "get"): ["analytics:read", "reports:read"],
}


def project_schema(**query: str) -> dict[str, Any]:
    response = APIClient().get("/api/schema/", {"format": "json", **query})
    assert response.status_code == 200, response.content
    return response.json()


def security(schema: dict[str, Any], route: str, method: str) -> list[dict[str, list[str]]]:
    return schema["paths"][route][method]["security"]


# -- the scheme --


def test_the_schema_offers_an_openid_connect_scheme_pointing_at_discovery(settings):
    settings.DRF_OIDC_JWKS = {**settings.DRF_OIDC_JWKS, "OPENAPI_SCHEME": "openIdConnect"}
    schemes = project_schema()["components"]["securitySchemes"]
    issuer = settings.DRF_OIDC_JWKS["ISSUER"]
    assert schemes == {
        "oidc": {
            "type": "openIdConnect",
            "openIdConnectUrl": f"{issuer}/.well-known/openid-configuration",
            "description": f"Bearer JWT issued by {issuer} for audience {settings.DRF_OIDC_JWKS['AUDIENCE']}.",
        }
    }


def test_openid_connect_is_the_default_scheme(settings):
    value = {k: v for k, v in settings.DRF_OIDC_JWKS.items() if k != "OPENAPI_SCHEME"}
    settings.DRF_OIDC_JWKS = value
    assert project_schema()["components"]["securitySchemes"]["oidc"]["type"] == "openIdConnect"


def test_the_bearer_setting_gives_an_http_bearer_jwt_scheme(settings):
    settings.DRF_OIDC_JWKS = {**settings.DRF_OIDC_JWKS, "OPENAPI_SCHEME": "bearer"}
    scheme = project_schema()["components"]["securitySchemes"]["oidc"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")


def test_several_issuers_get_one_openid_connect_scheme_each(settings):
    settings.DRF_OIDC_JWKS = {
        "ISSUERS": [{"ISSUER": "https://a.example.com"}, {"ISSUER": "https://b.example.com"}],
        "AUDIENCE": "https://api.example.com",
    }
    schema = project_schema()
    schemes = schema["components"]["securitySchemes"]
    assert {name: s["openIdConnectUrl"] for name, s in schemes.items()} == {
        "oidc": "https://a.example.com/.well-known/openid-configuration",
        "oidc2": "https://b.example.com/.well-known/openid-configuration",
    }
    assert security(schema, "/api/reports", "get") == [{"oidc": ["reports:read"]}, {"oidc2": ["reports:read"]}]


# -- per-operation scopes --


@pytest.mark.parametrize(("route", "method"), list(REPORTS))
def test_operations_protected_by_has_scope_list_their_scopes(route, method):
    assert security(project_schema(), route, method) == [{"oidc": REPORTS[(route, method)]}]


def test_operations_without_scopes_require_a_token_but_no_scope():
    schema = project_schema()
    assert security(schema, "/api/me", "get") == [{"oidc": []}]
    assert security(schema, "/api/admin/users", "get") == [{"oidc": []}]


def test_public_operations_have_no_security_requirement():
    assert security(project_schema(), "/api/health", "get") == [{}]


def test_required_scopes_are_added_to_every_operation(settings):
    settings.DRF_OIDC_JWKS = {**settings.DRF_OIDC_JWKS, "REQUIRED_SCOPES": ["api"]}
    schema = project_schema()
    assert security(schema, "/api/reports", "get") == [{"oidc": ["api", "reports:read"]}]
    assert security(schema, "/api/me", "get") == [{"oidc": ["api"]}]


@pytest.mark.parametrize(("route", "method"), list(REPORTS))
def test_the_scopes_the_schema_lists_are_exactly_what_the_permission_lets_through(oidc_client, route, method):
    (requirement,) = security(project_schema(), route, method)
    scopes = requirement["oidc"]
    call = getattr(oidc_client(scope=" ".join(scopes)), method)
    assert call(route).status_code in (200, 201)
    for missing in scopes:
        fewer = " ".join(s for s in scopes if s != missing)
        refused = getattr(oidc_client(scope=fewer), method)(route)
        assert refused.status_code == 403
        assert refused.data["detail"].code == "insufficient_scope"


class Either(APIView):
    authentication_classes = [JWKSAuthentication]
    permission_classes = [HasScope("items:read") | HasRole("admin")]

    def get(self, request: Request) -> Response:
        return Response({})


class Both(APIView):
    authentication_classes = [JWKSAuthentication]
    permission_classes = [HasScope("a") & HasScope.all("b", "c")]

    def get(self, request: Request) -> Response:
        return Response({})


class AnyOf(APIView):
    authentication_classes = [JWKSAuthentication]
    permission_classes = [HasScope("x", "y")]

    def get(self, request: Request) -> Response:
        return Response({})


class Negated(APIView):
    authentication_classes = [JWKSAuthentication]
    permission_classes = [~HasScope("banned")]

    def get(self, request: Request) -> Response:
        return Response({})


class Hooked(APIView):
    """Scopes from the view's own hook, per method."""

    class Auth(JWKSAuthentication):
        pass

    authentication_classes = [Auth]
    permission_classes = [HasScope]

    def get_required_scopes(self, request: Request) -> list[str]:
        return ["items:write"] if request.method == "POST" else ["items:read"]

    def get(self, request: Request) -> Response:
        return Response({})

    def post(self, request: Request) -> Response:
        return Response({})


def generated(*views: tuple[str, type[APIView]]) -> dict[str, Any]:
    patterns = [path(route.lstrip("/"), view.as_view()) for route, view in views]
    return SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)


def test_composed_permissions_become_alternative_or_combined_requirements():
    schema = generated(("/either", Either), ("/both", Both), ("/any", AnyOf), ("/not", Negated))
    assert security(schema, "/either", "get") == [{"oidc": ["items:read"]}, {"oidc": []}]
    assert security(schema, "/both", "get") == [{"oidc": ["a", "b", "c"]}]
    assert security(schema, "/any", "get") == [{"oidc": ["x"]}, {"oidc": ["y"]}]
    assert security(schema, "/not", "get") == [{"oidc": []}]


def test_a_views_own_scope_hook_feeds_the_schema_and_subclasses_of_the_authentication_match():
    schema = generated(("/hooked", Hooked))
    assert security(schema, "/hooked", "get") == [{"oidc": ["items:read"]}]
    assert security(schema, "/hooked", "post") == [{"oidc": ["items:write"]}]


def test_the_scheme_is_registered_by_the_app_when_drf_spectacular_is_installed():
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    from drf_oidc_jwks.openapi import JWKSAuthenticationScheme

    assert JWKSAuthenticationScheme in OpenApiAuthenticationExtension._registry
    assert OpenApiAuthenticationExtension.get_match(Hooked.Auth()).__class__ is JWKSAuthenticationScheme


# -- Swagger UI --


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def test_swagger_ui_references_only_local_assets_and_they_all_load(live_server):
    page = requests.get(live_server.url + "/api/docs/", timeout=10)
    assert page.status_code == 200
    html = page.text
    parser = Assets()
    parser.feed(html)
    schema_url = re.search(r'url: "([^"]+)"', html).group(1)
    urls = [*parser.urls, schema_url]
    assert len(parser.urls) >= 4  # favicon, stylesheet, bundle, preset
    assert not re.search(r"https?://|//[a-z]", html, re.IGNORECASE), "an absolute URL would load from elsewhere"
    assert '"validatorUrl": null' in html  # no validator badge fetched from validator.swagger.io
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        response = requests.get(live_server.url + url, timeout=10)
        assert response.status_code == 200, url
        assert len(response.content) > 100, url
    css = requests.get(live_server.url + next(u for u in urls if u.endswith(".css")), timeout=10).text
    assert not re.search(r"url\((['\"]?)https?:", css)  # no web fonts or images from elsewhere


def test_the_swagger_oauth2_redirect_page_is_served_locally(live_server):
    response = requests.get(live_server.url + "/api/docs/oauth2-redirect.html?state=x", timeout=10)
    assert response.status_code == 200
    assert "oauth2" in response.text.lower()


def test_authorize_in_swagger_ui_sends_the_bearer_token_the_schema_describes(oidc_token):
    # What "Authorize" does for the bearer scheme: the pasted token goes in Authorization: Bearer.
    schema = project_schema()
    assert schema["components"]["securitySchemes"]["oidc"]["scheme"] == "bearer"
    token = oidc_token(scope="reports:read")
    assert APIClient().get("/api/reports", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


def test_schema_generation_needs_no_keys_and_makes_no_request():
    issuer = TestIssuer(audience="https://api.test")
    with issuer.configure(install=False, OPENAPI_SCHEME="openIdConnect"):
        schema = project_schema()
        assert schema["components"]["securitySchemes"]["oidc"]["openIdConnectUrl"].startswith("https://issuer.test/")
