"""WWW-Authenticate challenges: quoting, the 401/403/step-up builders, the RFC 9110 parser, the 401's scopes."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp.client.auth.utils import (
    extract_field_from_www_auth,
    extract_resource_metadata_from_www_auth,
    extract_scope_from_www_auth,
)
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from drf_oidc_jwks.challenges import (
    Challenge,
    bearer_challenge,
    description_text,
    insufficient_scope_challenge,
    parse_challenges,
    quote,
    required_scopes_for,
    scope_text,
    step_up_challenge,
)
from drf_oidc_jwks.permissions import HasRole, HasScope

METADATA = "https://api.example.com/.well-known/oauth-protected-resource/mcp"


def sdk(header: str, status: int = 401) -> httpx2.Response:
    return httpx2.Response(status, headers={"WWW-Authenticate": header})


# -- quoting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("api", '"api"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\r\nbreak", '"line  break"'),
        ("tab\tkept", '"tab\tkept"'),
        ("caf\u00e9", '"caf?"'),
    ],
)
def test_quote_escapes_quotes_and_backslashes_and_drops_what_a_header_cannot_hold(value: str, quoted: str) -> None:
    assert quote(value) == quoted


def test_error_description_is_narrowed_to_rfc_6750_characters() -> None:
    assert description_text('Requires "a" \\ b\u2014c') == "Requires 'a' / b?c"


def test_scope_text_keeps_only_scope_tokens_once_each_in_order() -> None:
    assert scope_text(["b", "a", "b", "bad scope", 'q"uote', "", "c"]) == "b a c"


@given(st.text(max_size=60), st.text(max_size=60))
def test_any_realm_and_description_give_a_challenge_the_parser_reads_back(realm: str, description: str) -> None:
    header = bearer_challenge(realm, error="invalid_token", error_description=description or None)
    (challenge,) = parse_challenges(header)
    assert challenge.params["realm"] == quote(realm)[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if description:
        assert challenge.params["error_description"] == description_text(description)


# -- builders: each challenge exactly as sent ------------------------------------------------


def test_the_401_names_the_required_scopes_and_the_metadata() -> None:
    header = bearer_challenge("api", scope=["files:read", "files:write"], resource_metadata=METADATA)
    assert header == f'Bearer realm="api", scope="files:read files:write", resource_metadata="{METADATA}"'


def test_the_invalid_token_401_keeps_its_error_and_description() -> None:
    header = bearer_challenge("api", error="invalid_token", error_description="The token has expired.", scope=["a"])
    assert header == 'Bearer realm="api", error="invalid_token", scope="a", error_description="The token has expired."'


def test_the_403_carries_scope_description_and_resource_metadata() -> None:
    header = insufficient_scope_challenge("api", ["files:write"], "Requires scope: files:write.", METADATA)
    assert header == (
        'Bearer realm="api", error="insufficient_scope", scope="files:write", '
        f'error_description="Requires scope: files:write.", resource_metadata="{METADATA}"'
    )
    response = sdk(header, 403)
    assert extract_field_from_www_auth(response, "error") == "insufficient_scope"
    assert extract_scope_from_www_auth(response) == "files:write"
    assert extract_resource_metadata_from_www_auth(response) == METADATA


def test_the_step_up_challenge_follows_rfc_9470_section_3() -> None:
    header = step_up_challenge("api", ["urn:mace:incommon:iap:silver"], 5, "A more recent authentication is required.")
    assert header == (
        'Bearer realm="api", error="insufficient_user_authentication", acr_values="urn:mace:incommon:iap:silver", '
        'max_age="5", error_description="A more recent authentication is required."'
    )


def test_the_mcp_sdk_finds_the_scope_before_a_description_that_mentions_one() -> None:
    header = insufficient_scope_challenge("api", ["real"], "scope=fake", METADATA)
    assert extract_scope_from_www_auth(sdk(header, 403)) == "real"


def test_empty_values_are_left_out() -> None:
    assert bearer_challenge("api", scope=[], acr_values=[], error_description="") == 'Bearer realm="api"'


# -- the parser (RFC 9110 section 11.6.1) ------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ('Bearer realm="api"', [Challenge("Bearer", {"realm": "api"})]),
        ("Bearer", [Challenge("Bearer", {})]),
        ("Basic abc==", [Challenge("Basic", {}, "abc==")]),
        (
            'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
            [
                Challenge("Newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
                Challenge("Basic", {"realm": "simple"}),
            ],
        ),
        (
            'Bearer realm="api", error="invalid_token", DPoP algs="ES256 EdDSA"',
            [
                Challenge("Bearer", {"realm": "api", "error": "invalid_token"}),
                Challenge("DPoP", {"algs": "ES256 EdDSA"}),
            ],
        ),
        ('Bearer REALM = "x" ,, ', [Challenge("Bearer", {"realm": "x"})]),
        ("Basic, Bearer", [Challenge("Basic", {}), Challenge("Bearer", {})]),
    ],
)
def test_the_parser_reads_rfc_9110_challenges(header: str, parsed: list[Challenge]) -> None:
    assert parse_challenges(header) == parsed


@pytest.mark.parametrize(
    "header",
    [
        'Bearer realm="unterminated',
        "Bearer realm=a b",
        "=x",
        "Bearer a=1, a=2",
        'Bearer realm="x"y',
        'Bearer realm="\x01"',
        "Bearer; x",
    ],
)
def test_the_parser_refuses_what_the_grammar_does_not_allow(header: str) -> None:
    with pytest.raises(ValueError):
        parse_challenges(header)


# -- the scopes the endpoint requires (the 401's scope) --------------------------------------

factory = APIRequestFactory()


def view(*permissions: Any, method: str = "get", **attributes: Any) -> tuple[Any, APIView]:
    request = factory.generic(method.upper(), "/x")
    cls: Any = type("V", (APIView,), {"permission_classes": list(permissions), **attributes})
    instance = cls()
    drf_request = instance.initialize_request(request)
    instance.request = drf_request
    return drf_request, instance


@pytest.mark.parametrize(
    ("permissions", "attributes", "method", "scopes"),
    [
        ((HasScope("a"),), {}, "get", ("a",)),
        ((HasScope.all("a", "b"),), {}, "get", ("a", "b")),
        ((HasScope("a") | HasRole("admin"),), {}, "get", ("a",)),
        ((IsAuthenticated & HasScope("a") & HasScope("b"),), {}, "get", ("a", "b")),
        ((~HasScope("banned"), HasScope("a")), {}, "get", ("a",)),
        ((~~HasScope("a"),), {}, "get", ("a",)),
        ((HasScope,), {"required_scopes": {"get": ["r"], "post": ["w"]}}, "get", ("r",)),
        ((HasScope,), {"required_scopes": {"get": ["r"], "post": ["w"]}}, "post", ("w",)),
        ((HasScope,), {"required_scopes": {"get": ["r"]}}, "delete", ()),
        ((HasScope,), {}, "get", ()),
        ((HasRole("admin"),), {}, "get", ()),
    ],
)
def test_required_scopes_for_reads_the_views_has_scope_for_this_request(
    permissions: Any, attributes: Any, method: str, scopes: tuple[str, ...]
) -> None:
    request, instance = view(*permissions, method=method, **attributes)
    assert required_scopes_for(request, instance) == scopes


def test_required_scopes_come_first_and_appear_once() -> None:
    request, instance = view(HasScope("b", "mcp"))
    assert required_scopes_for(request, instance, ("mcp", "a")) == ("mcp", "a", "b")
    assert required_scopes_for(request, None, ("mcp",)) == ("mcp",)


class Files(viewsets.ViewSet):
    permission_classes = [HasScope]
    required_scopes = {"list": ["files:read"], "create": ["files:write"], "archive": ["files:admin"]}

    def list(self, request: Any) -> Response:
        return Response([])

    def create(self, request: Any) -> Response:
        return Response({}, status=201)

    @action(detail=False, methods=["post"])
    def archive(self, request: Any) -> Response:
        return Response({})


@pytest.mark.parametrize(
    ("actions", "method", "scopes"),
    [
        ({"get": "list", "post": "create"}, "get", ("files:read",)),
        ({"get": "list", "post": "create"}, "post", ("files:write",)),
        ({"post": "archive"}, "post", ("files:admin",)),
    ],
)
def test_a_viewset_action_names_its_own_scopes(actions: dict[str, str], method: str, scopes: tuple[str, ...]) -> None:
    instance: Any = Files(action_map=actions)
    instance.action = actions[method]
    request = instance.initialize_request(factory.generic(method.upper(), "/files"))
    assert required_scopes_for(request, instance) == scopes


def test_a_view_whose_permissions_cannot_be_built_still_gets_the_required_scopes() -> None:
    class Broken(APIView):
        def get_permissions(self) -> Any:
            raise RuntimeError("misconfigured")

    instance = Broken()
    request = instance.initialize_request(factory.get("/x"))
    assert required_scopes_for(request, instance, ("mcp",)) == ("mcp",)


# -- wired: the challenges exactly as the API sends them -----------------------------------------

RESOURCE = "https://api.example.com/mcp"


def test_the_401_without_a_token_names_the_endpoints_scopes_and_the_metadata(oidc_settings: Any, api: Any) -> None:
    oidc_settings(RESOURCE=RESOURCE)
    response = api.get("/api/reports/export")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="api", scope="reports:read reports:export", resource_metadata="{METADATA}"'
    )
    assert extract_scope_from_www_auth(response) == "reports:read reports:export"
    assert extract_resource_metadata_from_www_auth(response) == METADATA


def test_the_401_for_a_refused_token_keeps_its_error_and_adds_required_scopes(
    oidc_settings: Any, issuer: Any, api: Any
) -> None:
    oidc_settings(REQUIRED_SCOPES=["mcp:tools"])
    api.credentials(HTTP_AUTHORIZATION="Bearer " + issuer.token(expires_in=-999))
    response = api.get("/api/reports")
    assert response.status_code == 401
    (challenge,) = parse_challenges(response["WWW-Authenticate"])
    assert challenge.params["error"] == "invalid_token"
    assert challenge.params["scope"] == "mcp:tools reports:read"
    assert "error_description" in challenge.params


def test_the_403_sent_carries_scope_description_and_resource_metadata(
    oidc_settings: Any, issuer: Any, api: Any
) -> None:
    oidc_settings(RESOURCE=RESOURCE)
    api.credentials(HTTP_AUTHORIZATION="Bearer " + issuer.token(scope="other"))
    response = api.post("/api/reports", {}, format="json")
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="reports:write", '
        f'error_description="Requires scope: reports:write.", resource_metadata="{METADATA}"'
    )


def test_required_scopes_403_also_names_the_metadata(oidc_settings: Any, issuer: Any, api: Any) -> None:
    oidc_settings(RESOURCE=RESOURCE, REQUIRED_SCOPES=["mcp:tools"])
    api.credentials(HTTP_AUTHORIZATION="Bearer " + issuer.token(scope="openid"))
    response = api.get("/api/me")
    assert response.status_code == 403
    assert extract_resource_metadata_from_www_auth(response) == METADATA
    assert extract_field_from_www_auth(response, "error_description") == "Requires scope: mcp:tools."


def test_scopes_supported_adds_scopes_supported_and_never_offline_access(oidc_settings: Any, api: Any) -> None:
    oidc_settings(RESOURCE=RESOURCE, SCOPES_SUPPORTED=["files:read"])
    body = api.get("/.well-known/oauth-protected-resource/mcp").json()
    assert "files:read" in body["scopes_supported"] and "reports:read" in body["scopes_supported"]
    assert "offline_access" not in body["scopes_supported"]
