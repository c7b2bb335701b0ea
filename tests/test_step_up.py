"""Step-up authentication (RFC 9470): HasAuthLevel answers 401 insufficient_user_authentication with a challenge."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest
from mcp.client.auth.utils import extract_field_from_www_auth
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from drf_oidc_jwks.challenges import parse_challenges
from drf_oidc_jwks.exceptions import CODES, REGISTRY, InsufficientUserAuthentication
from drf_oidc_jwks.permissions import HasAuthLevel, HasRole, HasScope

pytestmark = pytest.mark.django_db

factory = APIRequestFactory()


def view_with(*permission_classes: Any) -> Any:
    def get(self: APIView, request: Any) -> Response:
        return Response({"ok": True})

    cls: Any = type("StepUp", (APIView,), {"permission_classes": list(permission_classes), "get": get})
    return cls.as_view()


def run(view: Any, issuer: Any, claims: dict[str, Any] | None) -> Any:
    extra = {} if claims is None else {"HTTP_AUTHORIZATION": f"Bearer {issuer.token(**claims)}"}
    return view(factory.get("/step-up", **extra))


def challenge_of(response: Any) -> dict[str, str]:
    (challenge,) = parse_challenges(response["WWW-Authenticate"])
    assert challenge.scheme == "Bearer"
    return challenge.params


NOW = int(time.time())


@pytest.mark.parametrize(
    ("permission", "claims", "status"),
    [
        (HasAuthLevel("mfa"), {"acr": "mfa"}, 200),
        (HasAuthLevel("mfa", "phr"), {"acr": "phr"}, 200),
        (HasAuthLevel("mfa"), {"acr": "pwd"}, 401),
        (HasAuthLevel("mfa"), {}, 401),
        (HasAuthLevel("mfa"), {"acr": ["mfa"]}, 401),
        (HasAuthLevel(max_age=300), {"auth_time": NOW - 10}, 200),
        (HasAuthLevel(max_age=300), {"auth_time": NOW - 3600}, 401),
        (HasAuthLevel(max_age=300), {}, 401),
        (HasAuthLevel(max_age=300), {"auth_time": "recently"}, 401),
        (HasAuthLevel(max_age=300), {"auth_time": True}, 401),
        (HasAuthLevel("mfa", max_age=300), {"acr": "mfa", "auth_time": NOW - 10}, 200),
        (HasAuthLevel("mfa", max_age=300), {"acr": "mfa", "auth_time": NOW - 3600}, 401),
        (HasAuthLevel("mfa", max_age=300), {"acr": "pwd", "auth_time": NOW - 10}, 401),
    ],
)
def test_acr_and_auth_time_matrix(oidc_settings: Any, issuer: Any, permission: Any, claims: Any, status: int) -> None:
    response = run(view_with(permission), issuer, claims)
    assert response.status_code == status
    if status == 401:
        assert response.data["code"] == "insufficient_user_authentication"
        assert challenge_of(response)["error"] == "insufficient_user_authentication"


def test_a_wrong_acr_is_answered_with_the_acr_values_to_log_in_with(oidc_settings: Any, issuer: Any) -> None:
    response = run(view_with(HasAuthLevel("urn:mfa", "phr")), issuer, {"acr": "pwd"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_user_authentication", acr_values="urn:mfa phr", '
        'error_description="A different authentication level is required."'
    )
    assert response.data == {
        "detail": "A different authentication level is required.",
        "code": "insufficient_user_authentication",
    }


def test_an_old_login_is_answered_with_max_age(oidc_settings: Any, issuer: Any) -> None:
    response = run(view_with(HasAuthLevel("mfa", max_age=60)), issuer, {"acr": "mfa", "auth_time": NOW - 600})
    params = challenge_of(response)
    assert params["max_age"] == "60" and params["acr_values"] == "mfa"
    assert params["error_description"] == "A more recent authentication is required."


def test_an_absent_auth_time_is_refused_when_max_age_is_set(oidc_settings: Any, issuer: Any) -> None:
    response = run(view_with(HasAuthLevel(max_age=60)), issuer, {"acr": "mfa"})
    params = challenge_of(response)
    assert response.status_code == 401 and params["max_age"] == "60" and "acr_values" not in params


def test_the_clock_is_injectable_so_max_age_is_measured_against_it(oidc_settings: Any, issuer: Any) -> None:
    later = HasAuthLevel(max_age=60, clock=lambda: NOW + 3600)
    assert run(view_with(later), issuer, {"auth_time": NOW}).status_code == 401
    now = HasAuthLevel(max_age=60, clock=lambda: NOW + 30)
    assert run(view_with(now), issuer, {"auth_time": NOW}).status_code == 200


def test_the_step_up_challenge_carries_resource_metadata_when_resource_is_set(oidc_settings: Any, issuer: Any) -> None:
    oidc_settings(RESOURCE="https://api.test/mcp")
    response = run(view_with(HasAuthLevel("mfa")), issuer, {"acr": "pwd", "aud": "https://api.test/mcp"})
    assert challenge_of(response)["resource_metadata"] == "https://api.test/.well-known/oauth-protected-resource/mcp"


def test_the_mcp_sdk_reads_the_step_up_challenge_as_sent(oidc_settings: Any, issuer: Any) -> None:
    oidc_settings(RESOURCE="https://api.test/mcp")
    response = run(view_with(HasAuthLevel("mfa", max_age=30)), issuer, {"acr": "pwd", "aud": "https://api.test/mcp"})
    sdk_view = httpx2.Response(response.status_code, headers={"WWW-Authenticate": response["WWW-Authenticate"]})
    assert extract_field_from_www_auth(sdk_view, "error") == "insufficient_user_authentication"
    assert extract_field_from_www_auth(sdk_view, "acr_values") == "mfa"
    assert extract_field_from_www_auth(sdk_view, "max_age") == "30"
    assert extract_field_from_www_auth(sdk_view, "resource_metadata") == challenge_of(response)["resource_metadata"]


def test_without_a_token_the_answer_is_the_plain_401_not_a_step_up(oidc_settings: Any, issuer: Any) -> None:
    response = run(view_with(HasAuthLevel("mfa")), issuer, None)
    assert response.status_code == 401
    assert "insufficient_user_authentication" not in response["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("permission", "claims", "status"),
    [
        (HasAuthLevel("mfa") & HasScope("pay"), {"acr": "mfa", "scope": "pay"}, 200),
        (HasAuthLevel("mfa") & HasScope("pay"), {"acr": "pwd", "scope": "pay"}, 403),
        (HasAuthLevel("mfa") | HasRole("admin"), {"acr": "pwd", "roles": ["admin"]}, 200),
        (HasAuthLevel("mfa") | HasRole("admin"), {"acr": "pwd"}, 403),
        (~HasAuthLevel("mfa"), {"acr": "pwd"}, 200),
        (~HasAuthLevel("mfa"), {"acr": "mfa"}, 403),
    ],
)
def test_has_auth_level_composes_as_a_boolean(
    oidc_settings: Any, issuer: Any, permission: Any, claims: Any, status: int
) -> None:
    assert run(view_with(permission), issuer, claims).status_code == status


def test_one_configured_permission_is_reused_across_requests_without_leaking_a_refusal(
    oidc_settings: Any, issuer: Any
) -> None:
    view = view_with(HasAuthLevel("mfa"))
    assert run(view, issuer, {"acr": "pwd"}).status_code == 401
    assert run(view, issuer, {"acr": "mfa"}).status_code == 200


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        (("",), {}),
        (("a b",), {}),
        ((1,), {}),
        (("mfa",), {"max_age": -1}),
        (("mfa",), {"max_age": 1.5}),
        ((), {"max_age": True}),
    ],
)
def test_has_auth_level_refuses_a_requirement_that_means_nothing(args: Any, kwargs: Any) -> None:
    with pytest.raises(TypeError):
        HasAuthLevel(*args, **kwargs)


def test_the_code_is_registered_as_a_401_and_is_no_token_refusal() -> None:
    spec = REGISTRY["insufficient_user_authentication"]
    assert spec.status == 401 and spec.cls is InsufficientUserAuthentication
    assert "insufficient_user_authentication" not in CODES


def test_repr_names_the_requirement() -> None:
    assert repr(HasAuthLevel("mfa", max_age=60)) == "HasAuthLevel('mfa', max_age=60)"
