"""drf-spectacular: the security scheme, per-operation scopes that agree with HasScope, Swagger UI served locally."""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from contextlib import ExitStack
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from django.core.management import call_command
from django.test import override_settings
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings, spectacular_settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from drf_oidc_jwks.authentication import JWKSAuthentication
from drf_oidc_jwks.challenges import parse_challenges
from drf_oidc_jwks.permissions import HasAuthLevel, HasRole, HasScope
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
            "description": f"Bearer JWT issued by {issuer} for audience {settings.DRF_OIDC_JWKS['AUDIENCE']}."
            ' To paste a token instead, set "OPENAPI_SCHEME": "bearer" in DRF_OIDC_JWKS (docs: openapi.md).',
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


# -- step-up (HasAuthLevel): x-step-up and a sentence of description, from the permission's own hook --

SENTENCE = "Step-up authentication (RFC 9470): the access token must come from "
ENDING = "; otherwise the answer is 401 `insufficient_user_authentication`, naming what a new login must achieve."


def operation(schema: dict[str, Any], route: str, method: str) -> dict[str, Any]:
    return schema["paths"][route][method]


def step_up_challenge(response: Any) -> dict[str, str]:
    assert response.status_code == 401, response.content
    (challenge,) = parse_challenges(response["WWW-Authenticate"])
    assert challenge.params["error"] == "insufficient_user_authentication"
    return challenge.params


def test_the_testprojects_step_up_endpoints_carry_their_requirement():
    schema = project_schema()
    payments = operation(schema, "/api/payments", "post")
    assert payments["x-step-up"] == [{"acr_values": ["mfa"]}]
    assert payments["description"] == (
        "``/api/payments``: a multi-factor login (``acr`` ``mfa``).\n\n" + SENTENCE + "a login with acr `mfa`" + ENDING
    )
    security_page = operation(schema, "/api/account/security", "get")
    assert security_page["x-step-up"] == [{"max_age": 300}]
    assert security_page["description"].endswith("\n\n" + SENTENCE + "a login at most 300 seconds ago" + ENDING)
    assert security(schema, "/api/payments", "post") == [{"oidc": []}]  # the security requirement is unchanged


@pytest.mark.parametrize(("route", "method"), [*REPORTS, ("/api/me", "get"), ("/api/health", "get")])
def test_operations_without_has_auth_level_carry_no_step_up(route, method):
    op = operation(project_schema(), route, method)
    assert "x-step-up" not in op
    assert "Step-up" not in op.get("description", "")


def test_the_max_age_in_the_schema_is_the_one_enforced_read_per_request(oidc_client):
    now = int(time.time())  # at the call, not at import: the suite may run for minutes before this test
    # A context nested inside oidc_client's settings: the settings fixture, set after it, would restore them late.
    with override_settings(STEP_UP_MAX_AGE=60):
        (level,) = operation(project_schema(), "/api/account/security", "get")["x-step-up"]
        assert level == {"max_age": 60}
        assert oidc_client(auth_time=now - 30).get("/api/account/security").status_code == 200
        refused = oidc_client(auth_time=now - 90).get("/api/account/security")
    assert step_up_challenge(refused)["max_age"] == str(level["max_age"])


def test_the_acr_values_in_the_schema_are_the_ones_enforced(oidc_client):
    (level,) = operation(project_schema(), "/api/payments", "post")["x-step-up"]
    for acr in level["acr_values"]:
        assert oidc_client(acr=acr).post("/api/payments").status_code == 201
    assert step_up_challenge(oidc_client(acr="pwd").post("/api/payments"))["acr_values"] == " ".join(
        level["acr_values"]
    )


class PerMethodLevel(HasAuthLevel):
    """Reads must come from an mfa login, writes from a hardware key within a minute: one hook for both."""

    def get_required_level(self, request: Request, view: APIView) -> HasAuthLevel:
        return HasAuthLevel("hwk", max_age=60) if request.method == "POST" else self


class Hardened(APIView):
    authentication_classes = [JWKSAuthentication]
    permission_classes = [PerMethodLevel("mfa")]

    def get(self, request: Request) -> Response:
        return Response({})

    def post(self, request: Request) -> Response:
        return Response({})


def test_a_subclass_overriding_the_hook_feeds_the_schema_and_the_check_alike(oidc_token):
    schema = generated(("/hardened", Hardened))
    assert operation(schema, "/hardened", "get")["x-step-up"] == [{"acr_values": ["mfa"]}]
    assert operation(schema, "/hardened", "post")["x-step-up"] == [{"acr_values": ["hwk"], "max_age": 60}]
    assert operation(schema, "/hardened", "post")["description"] == (
        SENTENCE + "a login with acr `hwk` at most 60 seconds ago" + ENDING
    )  # no docstring of its own: the sentence is the description

    now = int(time.time())

    def call(method: str, **claims: Any) -> Any:
        auth = f"Bearer {oidc_token(**claims)}"
        return Hardened.as_view()(getattr(APIRequestFactory(), method)("/hardened", HTTP_AUTHORIZATION=auth))

    assert call("get", acr="mfa").status_code == 200
    assert step_up_challenge(call("post", acr="mfa", auth_time=now)) == {
        "realm": "api",
        "error": "insufficient_user_authentication",
        "acr_values": "hwk",
        "max_age": "60",
        "error_description": "A different authentication level is required.",
    }
    assert step_up_challenge(call("post", acr="hwk", auth_time=now - 120))["max_age"] == "60"
    assert call("post", acr="hwk", auth_time=now - 10).status_code == 200


def step_up_view(*permissions: Any) -> type[APIView]:
    def get(self: APIView, request: Request) -> Response:
        return Response({})

    return type(
        "StepUp",
        (APIView,),
        {"authentication_classes": [JWKSAuthentication], "permission_classes": [*permissions], "get": get},
    )


@pytest.mark.parametrize(
    ("permissions", "expected"),
    [
        (
            [HasAuthLevel("mfa") | HasAuthLevel("phr", max_age=60)],
            [{"acr_values": ["mfa"]}, {"acr_values": ["phr"], "max_age": 60}],
        ),
        ([HasAuthLevel("mfa") | HasRole("admin")], [{"acr_values": ["mfa"]}, {}]),
        (
            [HasScope("payments:write") & HasAuthLevel("mfa", "phr", max_age=300)],
            [{"acr_values": ["mfa", "phr"], "max_age": 300}],
        ),
        (
            [HasAuthLevel("mfa", "phr") & HasAuthLevel("phr", "hwk", max_age=300), HasAuthLevel(max_age=60)],
            [{"acr_values": ["phr"], "max_age": 60}],
        ),
        (
            [HasAuthLevel("mfa"), HasAuthLevel("phr") | HasAuthLevel(max_age=60)],
            [{"acr_values": ["mfa"], "max_age": 60}],
        ),
        ([HasAuthLevel("mfa") & HasAuthLevel("phr")], [{"acr_values": []}]),
    ],
    ids=["or", "or-other-permission", "and-scope", "and-narrows", "and-distributes", "and-exclusive"],
)
def test_compositions_give_step_up_alternatives(permissions, expected):
    assert operation(generated(("/s", step_up_view(*permissions))), "/s", "get")["x-step-up"] == expected


def test_an_or_composition_is_described_as_alternatives():
    schema = generated(("/s", step_up_view(HasAuthLevel("mfa", "phr") | HasRole("admin"))))
    assert operation(schema, "/s", "get")["description"] == (
        SENTENCE + "a login with acr `mfa` or `phr`, or from any login (another permission grants access)" + ENDING
    )


@pytest.mark.parametrize(
    "permissions", [[~HasAuthLevel("mfa")], [HasScope("a") | ~HasAuthLevel(max_age=5)], [HasRole("admin")]]
)
def test_negated_or_absent_step_up_states_nothing(permissions):
    op = operation(generated(("/s", step_up_view(*permissions))), "/s", "get")
    assert "x-step-up" not in op and "Step-up" not in op.get("description", "")


def test_without_the_hook_the_schema_warns_and_leaves_step_up_out_and_checks_pass(capsys):
    with patched_settings({"POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums"]}):
        schema = project_schema()
        call_command("check")
    payments = operation(schema, "/api/payments", "post")
    assert "x-step-up" not in payments and "Step-up" not in payments["description"]
    assert security(schema, "/api/payments", "post") == [{"oidc": []}]
    assert 'add "drf_oidc_jwks.openapi.postprocess_step_up" to SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]' in (
        capsys.readouterr().err
    )


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


# -- the how-to page's set-up (docs/examples/openapi_example.py, included by docs/openapi.md) --

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE = DOCS / "examples" / "openapi_example.py"


def example_sections() -> dict[str, str]:
    found = re.findall(r"# --8<-- \[start:([\w-]+)\]\n(.*?)# --8<-- \[end:\1\]", EXAMPLE.read_text(), re.S)
    return dict(found)


def example_settings(*sections: str) -> dict[str, Any]:
    """Run the module's prelude (a project's existing settings) and then the named sections, as the page orders them."""
    source = EXAMPLE.read_text()
    prelude = source[: source.index("# --8<-- [start:")]
    namespace: dict[str, Any] = {"__name__": "openapi_example_settings"}
    exec(compile(prelude + "".join(example_sections()[name] for name in sections), str(EXAMPLE), "exec"), namespace)
    return {name: value for name, value in namespace.items() if name.isupper()}


@pytest.fixture
def documented(settings):
    spec = importlib.util.spec_from_file_location("openapi_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["openapi_example"] = module
    settings.ROOT_URLCONF = "openapi_example"

    patches = ExitStack()

    def apply(*sections: str) -> dict[str, Any]:
        values = example_settings(*sections)
        for name in ("REST_FRAMEWORK", "SPECTACULAR_SETTINGS", "DRF_OIDC_JWKS"):
            setattr(settings, name, values[name])
        # drf-spectacular reads its settings once; patched_settings is its own way to change them (not SERVE_*).
        spectacular = values["SPECTACULAR_SETTINGS"]
        serve = {k: v for k, v in spectacular.items() if k.startswith("SERVE_")}
        assert all(getattr(spectacular_settings, k) == v for k, v in serve.items())
        patches.enter_context(patched_settings({k: v for k, v in spectacular.items() if k not in serve}))
        return values

    with patches:
        yield apply
    sys.modules.pop("openapi_example", None)


def test_the_how_to_page_includes_every_section_of_its_example_module():
    page = (DOCS / "openapi.md").read_text()
    included = re.findall(r'^--8<-- "openapi_example\.py:([\w-]+)"$', page, re.MULTILINE)
    assert sorted(included) == sorted(example_sections()) and len(included) == 4


def test_the_documented_apps_are_the_ones_this_project_runs_with(documented):
    from django.apps import apps

    added = example_settings("settings")["INSTALLED_APPS"][4:]
    assert added == ["drf_spectacular", "drf_spectacular_sidecar"]
    assert all(apps.is_installed(app) for app in added)


def test_the_documented_set_up_serves_the_openid_connect_scheme_with_the_operations_scopes(documented):
    values = documented("settings", "oauth")
    schema = project_schema()
    assert (schema["info"]["title"], schema["info"]["version"]) == ("Reports API", "1.0.0")
    assert schema["components"]["securitySchemes"]["oidc"]["openIdConnectUrl"] == (
        "https://auth.example.com/.well-known/openid-configuration"
    )
    assert list(schema["paths"]) == ["/api/reports"]  # SERVE_INCLUDE_SCHEMA: False
    assert security(schema, "/api/reports", "get") == [{"oidc": ["reports:read"]}]
    assert values["REST_FRAMEWORK"]["DEFAULT_SCHEMA_CLASS"] == "drf_spectacular.openapi.AutoSchema"


def test_the_documented_swagger_ui_logs_in_with_pkce_and_loads_nothing_from_elsewhere(documented, live_server):
    documented("settings", "oauth")
    html = requests.get(live_server.url + "/api/docs/", timeout=10).text
    assert '"clientId": "reports-api-docs"' in html
    assert '"usePkceWithAuthorizationCodeGrant": true' in html
    assert not re.search(r"https?://|//[a-z]", html, re.IGNORECASE)
    redirect = requests.get(live_server.url + "/api/docs/oauth2-redirect.html?state=x", timeout=10)
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()


def test_the_documented_switch_gives_swagger_ui_a_token_field_that_says_how_to_fill_it(documented):
    documented("settings", "oauth", "bearer")
    scheme = project_schema()["components"]["securitySchemes"]["oidc"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert scheme["description"].endswith("Paste the access token without 'Bearer '.")


def test_the_documented_hooks_keep_drf_spectaculars_default_and_document_step_up(documented):
    from drf_spectacular.settings import SPECTACULAR_DEFAULTS

    hooks = documented("settings", "oauth")["SPECTACULAR_SETTINGS"]["POSTPROCESSING_HOOKS"]
    assert hooks == [*SPECTACULAR_DEFAULTS["POSTPROCESSING_HOOKS"], "drf_oidc_jwks.openapi.postprocess_step_up"]
    schema = generated(("/s", step_up_view(HasAuthLevel("mfa", max_age=300))))
    assert operation(schema, "/s", "get")["x-step-up"] == [{"acr_values": ["mfa"], "max_age": 300}]


def test_the_step_up_sample_on_the_how_to_page_is_what_the_demo_schema_says():
    page = (DOCS / "openapi.md").read_text()
    section = page[page.index("## Step-up: `HasAuthLevel`") :]
    sample = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    schema = project_schema()
    for route, methods in sample["paths"].items():
        for method, documented_operation in methods.items():
            assert operation(schema, route, method)["x-step-up"] == documented_operation["x-step-up"]
    quoted = re.search(r"the payments description ends with: \*(.*?)\*\n", section, re.S).group(1)
    assert operation(schema, "/api/payments", "post")["description"].endswith(" ".join(quoted.split()))
