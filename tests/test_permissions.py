"""Permission classes decide from the verified token alone: 401 without one, 403 naming what is missing."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import SimpleLazyObject
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from drf_oidc_jwks.permissions import (
    HasOrgRole,
    HasPermission,
    HasRole,
    HasScope,
    HasTenant,
    all_of,
    any_of,
    to_requirement,
)
from drf_oidc_jwks.tokens import verify_token
from testproject.api import authz_views

pytestmark = pytest.mark.django_db

NOT_AUTHENTICATED = "Authentication credentials were not provided."

# --------------------------------------------------------------------------------------------
# The endpoint matrix: every caller against every permission-protected endpoint of the demo.
# --------------------------------------------------------------------------------------------

CALLERS: dict[str, dict[str, Any] | None] = {
    "anonymous": None,
    "plain_user": {"roles": ["user"]},
    "editor": {"roles": "editor"},
    "admin": {"roles": ["admin"]},
    "admin_among_others": {"roles": "editor,admin"},
    "reader": {"scope": "reports:read"},
    "writer": {"scope": "reports:write"},
    "exporter": {"scope": "reports:read reports:export"},
    "export_only": {"scope": "reports:export"},
    "analyst": {"scope": "reports:read analytics:read"},
    "analytics_only": {"scope": "analytics:read"},
    "biller": {"permissions": ["read:billing"]},
    "billing_writer": {"permissions": ["write:billing"]},
    "scope_named_like_permission": {"scope": "read:billing"},
    "permission_named_like_scope": {"permissions": ["reports:read"]},
    "org_member": {"tenant_id": "acme", "org_role": "member", "organization_ids": ["acme"]},
    "org_owner_no_tenant": {"org_role": "owner", "organization_ids": ["acme", "globex"]},
    "everything": {
        "roles": ["admin"],
        "scope": "reports:read reports:write reports:export analytics:read",
        "permissions": ["read:billing"],
        "tenant_id": "acme",
        "org_role": "owner",
    },
}

# (method, path): (who is allowed, status when allowed, code and detail when an authenticated caller is refused)
ENDPOINTS: dict[tuple[str, str], tuple[set[str], int, str, str]] = {
    ("get", "/api/admin/users"): (
        {"admin", "admin_among_others", "everything"},
        200,
        "role_required",
        "Requires role: admin.",
    ),
    ("get", "/api/billing"): (
        {"biller", "everything"},
        200,
        "permission_required",
        "Requires permission: read:billing.",
    ),
    ("get", "/api/reports"): (
        {"reader", "exporter", "analyst", "everything"},
        200,
        "insufficient_scope",
        "Requires scope: reports:read.",
    ),
    ("post", "/api/reports"): (
        {"writer", "everything"},
        201,
        "insufficient_scope",
        "Requires scope: reports:write.",
    ),
    ("get", "/api/reports/export"): (
        {"exporter", "everything"},
        200,
        "insufficient_scope",
        "Requires all of the scopes: reports:read, reports:export.",
    ),
    ("get", "/api/analytics"): (
        {"analyst", "everything"},
        200,
        "insufficient_scope",
        "Requires all of the scopes: reports:read, analytics:read.",
    ),
    ("get", "/api/tenant/data"): (
        {"org_member", "everything"},
        200,
        "tenant_required",
        "This endpoint requires an active organization.",
    ),
}

# The 403 carries the refusal's description too (MCP authorization 2026-07-28).
SCOPE_CHALLENGES = {
    ("get", "/api/reports"): (
        'Bearer realm="api", error="insufficient_scope", scope="reports:read", '
        'error_description="Requires scope: reports:read."'
    ),
    ("post", "/api/reports"): (
        'Bearer realm="api", error="insufficient_scope", scope="reports:write", '
        'error_description="Requires scope: reports:write."'
    ),
    ("get", "/api/reports/export"): (
        'Bearer realm="api", error="insufficient_scope", scope="reports:read reports:export", '
        'error_description="Requires all of the scopes: reports:read, reports:export."'
    ),
    ("get", "/api/analytics"): (
        'Bearer realm="api", error="insufficient_scope", scope="reports:read analytics:read", '
        'error_description="Requires all of the scopes: reports:read, analytics:read."'
    ),
}
# The 401 names the scopes the endpoint requires, where it requires any.
ANONYMOUS_CHALLENGES = {
    ("get", "/api/reports"): 'Bearer realm="api", scope="reports:read"',
    ("post", "/api/reports"): 'Bearer realm="api", scope="reports:write"',
    ("get", "/api/reports/export"): 'Bearer realm="api", scope="reports:read reports:export"',
    ("get", "/api/analytics"): 'Bearer realm="api", scope="reports:read analytics:read"',
}


def request(api: Any, issuer: Any, method: str, path: str, claims: dict[str, Any] | None, **extra: Any) -> Any:
    """Send one request, with a token minted from ``claims`` (None: no Authorization header)."""
    if claims is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {issuer.token(sub='caller-7', **claims)}"
    return getattr(api, method)(path, format="json", **extra)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS), ids=lambda e: f"{e[0]} {e[1]}")
@pytest.mark.parametrize("caller", list(CALLERS))
def test_every_caller_is_allowed_or_refused_exactly_as_the_endpoint_requires(
    oidc_settings: Any, issuer: Any, api: Any, caller: str, endpoint: tuple[str, str]
) -> None:
    method, path = endpoint
    allowed, ok_status, code, detail = ENDPOINTS[endpoint]
    response = request(api, issuer, method, path, CALLERS[caller])

    if caller == "anonymous":
        assert response.status_code == 401
        assert response.data["detail"].code == "not_authenticated"
        assert response["WWW-Authenticate"] == ANONYMOUS_CHALLENGES.get(endpoint, 'Bearer realm="api"')
    elif caller in allowed:
        assert response.status_code == ok_status, response.content
        assert "WWW-Authenticate" not in response
    else:
        assert response.status_code == 403, response.content
        assert response.data["detail"].code == code
        assert response.json() == {"detail": detail, "code": code}
        if code == "insufficient_scope":
            assert response["WWW-Authenticate"] == SCOPE_CHALLENGES[endpoint]
        else:
            assert "WWW-Authenticate" not in response


def test_refusals_name_the_requirement_and_nothing_of_the_token(oidc_settings: Any, issuer: Any, api: Any) -> None:
    token = issuer.token(sub="secret-subject", roles=["secret-role"], scope="secret-scope", permissions=["secret-p"])
    for path in ("/api/admin/users", "/api/billing", "/api/reports", "/api/analytics", "/api/tenant/data"):
        response = api.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 403
        body = response.content.decode() + response.get("WWW-Authenticate", "")
        for secret in ("secret-subject", "secret-role", "secret-scope", "secret-p", token):
            assert secret not in body


def test_an_admin_response_carries_the_callers_subject(oidc_settings: Any, issuer: Any, api: Any) -> None:
    response = request(api, issuer, "get", "/api/admin/users", {"roles": ["admin"]})
    assert response.json() == {"message": "You are an admin", "admin_id": "caller-7"}


def test_a_refused_token_is_401_invalid_token_before_any_permission_runs(
    oidc_settings: Any, issuer: Any, api: Any
) -> None:
    token = issuer.token(roles=["admin"], expires_in=-3600)
    response = api.get("/api/admin/users", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert response.data["detail"].code == "token_expired"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_roles_read_through_the_better_auth_preset_claim(oidc_settings: Any, issuer: Any, api: Any) -> None:
    oidc_settings(PROVIDER="better-auth")
    assert request(api, issuer, "get", "/api/admin/users", {"role": "admin"}).status_code == 200
    assert request(api, issuer, "get", "/api/admin/users", {"role": "user"}).status_code == 403
    # the generic claim name means nothing under this preset
    assert request(api, issuer, "get", "/api/admin/users", {"roles": ["admin"]}).status_code == 403


# --------------------------------------------------------------------------------------------
# Composition with &, |, ~ and DRF's own classes, through real views and real tokens.
# --------------------------------------------------------------------------------------------

factory = APIRequestFactory()


def view_with(*permission_classes: Any, **attributes: Any) -> Any:
    """An APIView answering 200 to GET and 201 to POST, guarded by ``permission_classes``."""

    def get(self: APIView, request: Any) -> Response:
        return Response({"ok": True})

    def post(self: APIView, request: Any) -> Response:
        return Response({"ok": True}, status=201)

    cls: Any = type("Guarded", (APIView,), {"permission_classes": list(permission_classes), "get": get, "post": post})
    for name, value in attributes.items():
        setattr(cls, name, value)
    return cls.as_view()


def run(view: Any, issuer: Any, claims: dict[str, Any] | None, method: str = "get", **extra: Any) -> Any:
    if claims is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {issuer.token(**claims)}"
    return view(getattr(factory, method)("/guarded", **extra))


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"scope": "reports:read"}, 200),
        ({"roles": ["admin"]}, 200),
        ({"scope": "reports:read", "roles": ["admin"]}, 200),
        ({"scope": "reports:write", "roles": ["user"]}, 403),
        (None, 401),
    ],
)
def test_or_passes_when_either_side_passes(oidc_settings: Any, issuer: Any, claims: Any, status: int) -> None:
    response = run(view_with(HasScope("reports:read") | HasRole("admin")), issuer, claims)
    assert response.status_code == status


def test_a_refused_or_is_a_plain_403_without_a_scope_challenge(oidc_settings: Any, issuer: Any) -> None:
    # A role would do as well as the scope, so an insufficient_scope challenge would mislead the client.
    response = run(view_with(HasScope("reports:read") | HasRole("admin")), issuer, {"roles": ["user"]})
    assert response.status_code == 403
    assert response.data["detail"].code == "permission_denied"
    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"scope": "reports:read", "roles": ["editor"]}, 200),
        ({"scope": "reports:read"}, 403),
        ({"roles": ["editor"]}, 403),
        (None, 401),
    ],
)
def test_and_needs_both_sides(oidc_settings: Any, issuer: Any, claims: Any, status: int) -> None:
    response = run(view_with(HasScope("reports:read") & HasRole("editor")), issuer, claims)
    assert response.status_code == status


@pytest.mark.parametrize(
    "permission",
    [HasRole("admin") | IsAdminUser, IsAdminUser | HasRole("admin"), IsAuthenticated & HasRole("admin")],
    ids=["ours-or-drf", "drf-or-ours", "drf-and-ours"],
)
def test_composes_with_drfs_own_classes_in_either_order(oidc_settings: Any, issuer: Any, permission: Any) -> None:
    view = view_with(permission)
    assert run(view, issuer, {"roles": ["admin"]}).status_code == 200
    assert run(view, issuer, {"roles": ["user"]}).status_code == 403
    assert run(view, issuer, None).status_code == 401


def test_separate_entries_keep_each_refusal_precise(oidc_settings: Any, issuer: Any) -> None:
    view = view_with(IsAuthenticated, HasScope("reports:read"))
    response = run(view, issuer, {"scope": "other"})
    assert response.status_code == 403
    assert response.data["detail"].code == "insufficient_scope"
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="reports:read", '
        'error_description="Requires scope: reports:read."'
    )


@pytest.mark.parametrize(
    ("claims", "status"),
    [({"roles": ["user"]}, 200), ({"roles": ["user", "suspended"]}, 403), (None, 401)],
)
def test_negation_after_is_authenticated_refuses_the_role(
    oidc_settings: Any, issuer: Any, claims: Any, status: int
) -> None:
    response = run(view_with(IsAuthenticated, ~HasRole("suspended")), issuer, claims)
    assert response.status_code == status


def test_negation_alone_is_plain_boolean_and_lets_anonymous_callers_in(oidc_settings: Any, issuer: Any) -> None:
    # As with DRF's ``~IsAuthenticated``: documented, hence pair negations with IsAuthenticated.
    view = view_with(~HasRole("suspended"))
    assert run(view, issuer, None).status_code == 200
    assert run(view, issuer, {"roles": ["suspended"]}).status_code == 403


def token_request(issuer: Any, **claims: Any) -> Any:
    """A DRF request authenticated with the verified claims of a freshly minted token."""
    drf_request = APIView().initialize_request(factory.get("/x"))
    drf_request.user = _untouchable_user()
    drf_request.auth = verify_token(issuer.token(**claims))
    return drf_request


@pytest.mark.parametrize(("roles", "expected"), [(["user"], True), (["user", "suspended"], False)])
def test_negated_permission_answers_object_checks_like_request_checks(
    oidc_settings: Any, issuer: Any, roles: list[str], expected: bool
) -> None:
    # DRF's default has_object_permission is True, which would make ``~`` refuse every object.
    negated = (~HasRole("suspended"))()
    drf_request = token_request(issuer, roles=roles)
    assert negated.has_permission(drf_request, APIView()) is expected
    assert negated.has_object_permission(drf_request, APIView(), object()) is expected


def test_a_session_authenticated_caller_without_a_token_is_401_not_403(oidc_settings: Any, issuer: Any) -> None:
    user = get_user_model().objects.create_user("staff", is_staff=True)
    view = view_with(HasRole("admin"))
    drf_request = factory.get("/guarded")
    force_authenticate(drf_request, user=user)  # authenticated, but request.auth is not a verified token
    response = view(drf_request)
    assert response.status_code == 401
    assert response.data["detail"].code == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_session_staff_user_still_passes_an_or_with_is_admin_user(oidc_settings: Any) -> None:
    user = get_user_model().objects.create_user("staff2", is_staff=True)
    drf_request = factory.get("/guarded")
    force_authenticate(drf_request, user=user)
    assert view_with(HasRole("admin") | IsAdminUser)(drf_request).status_code == 200


def test_configured_instances_hand_out_a_fresh_object_per_request() -> None:
    configured = HasRole("admin")
    first, second = configured(), configured()
    assert first is not second and first is not configured
    assert first.required == second.required == (("admin",),)


# --------------------------------------------------------------------------------------------
# All-of, any-of, and the view-attribute form.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permission", "claims", "status"),
    [
        (HasRole("admin", "editor"), {"roles": ["editor"]}, 200),
        (HasRole.any("admin", "editor"), {"roles": ["editor"]}, 200),
        (HasRole.all("admin", "editor"), {"roles": ["editor"]}, 403),
        (HasRole.all("admin", "editor"), {"roles": ["editor", "admin"]}, 200),
        (HasPermission.all("read:a", "write:a"), {"permissions": ["read:a"]}, 403),
        (HasPermission.all("read:a", "write:a"), {"permissions": ["read:a", "write:a"]}, 200),
        (HasOrgRole("owner", "admin"), {"org_role": "admin", "tenant_id": "t"}, 200),
        (HasOrgRole("owner", "admin"), {"org_role": "member", "tenant_id": "t"}, 403),
        (HasScope("a", "b"), {"scope": "b"}, 200),
        (HasScope.all("a", "b"), {"scope": "b"}, 403),
        (HasScope.all("a", "b"), {"scope": ["b", "a"]}, 200),
        (HasTenant(), {"tenant_id": "t"}, 200),
        (HasTenant, {"tenant_id": "t"}, 200),
        (HasTenant(), {"organization_ids": ["t"]}, 403),
    ],
)
def test_any_of_and_all_of_forms(oidc_settings: Any, issuer: Any, permission: Any, claims: Any, status: int) -> None:
    assert run(view_with(permission), issuer, claims).status_code == status


def test_org_role_refusal_names_the_required_roles(oidc_settings: Any, issuer: Any) -> None:
    response = run(view_with(HasOrgRole("owner", "admin")), issuer, {"org_role": "member", "tenant_id": "t"})
    assert response.status_code == 403
    assert response.data == {
        "detail": "Requires one of the organization roles: owner, admin.",
        "code": "org_role_required",
    }
    assert response.data["detail"].code == "org_role_required"


def test_all_of_scope_challenge_lists_every_scope(oidc_settings: Any, issuer: Any) -> None:
    response = run(view_with(HasScope.all("a", "b")), issuer, {"scope": "a"})
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="a b", '
        'error_description="Requires all of the scopes: a, b."'
    )
    assert response.data["detail"] == "Requires all of the scopes: a, b."


def test_scope_challenge_uses_the_configured_realm(oidc_settings: Any, issuer: Any) -> None:
    oidc_settings(REALM="reports")
    response = run(view_with(HasScope("a")), issuer, {"scope": "b"})
    assert response["WWW-Authenticate"] == (
        'Bearer realm="reports", error="insufficient_scope", scope="a", error_description="Requires scope: a."'
    )


class ScopedReports(viewsets.ViewSet):
    permission_classes = [HasScope]
    required_scopes = {
        "list": ["reports:read"],
        "create": [["reports:write"], ["reports:admin"]],
        "destroy": any_of("reports:delete", "reports:admin"),
        "purge": all_of("reports:delete", "reports:admin"),
    }

    def list(self, request: Any) -> Response:
        return Response([])

    def create(self, request: Any) -> Response:
        return Response({}, status=201)

    def destroy(self, request: Any, pk: str) -> Response:
        return Response(status=204)

    def retrieve(self, request: Any, pk: str) -> Response:  # no entry in required_scopes
        return Response({})

    @action(detail=False, methods=["post"])
    def purge(self, request: Any) -> Response:
        return Response(status=204)


def test_documented_scope_hierarchy_and_step_up_examples_answer_as_the_page_says(
    oidc_settings: Any, issuer: Any, examples: Any
) -> None:
    import time

    oidc_settings(SCOPE_HIERARCHY=examples.SCOPE_HIERARCHY)
    files = examples.FileView.as_view()
    assert run(files, issuer, {"scope": "files:admin"}, method="put").status_code == 200
    assert run(files, issuer, {"scope": "files:write"}).status_code == 200
    assert run(files, issuer, {"scope": "files:read"}, method="put").status_code == 403
    pay, now = examples.PaymentView.as_view(), int(time.time())
    good = {"acr": "phr", "auth_time": now - 10, "scope": "payments:write"}
    assert run(pay, issuer, good, method="post").status_code == 201
    for claims in ({**good, "acr": "pwd"}, {**good, "auth_time": now - 600}):
        assert run(pay, issuer, claims, method="post").data["detail"].code == "insufficient_user_authentication"
    assert run(pay, issuer, {**good, "scope": "payments:read"}, method="post").status_code == 403


@pytest.mark.parametrize(
    ("actions", "method", "kwargs", "scope", "status"),
    [
        ({"get": "list"}, "get", {}, "reports:read", 200),
        ({"get": "list"}, "get", {}, "reports:write", 403),
        ({"post": "create"}, "post", {}, "reports:write", 201),
        ({"post": "create"}, "post", {}, "reports:admin", 201),
        ({"post": "create"}, "post", {}, "reports:read", 403),
        ({"delete": "destroy"}, "delete", {"pk": "1"}, "reports:delete", 204),
        ({"delete": "destroy"}, "delete", {"pk": "1"}, "reports:admin", 204),
        ({"delete": "destroy"}, "delete", {"pk": "1"}, "reports:read", 403),
        ({"post": "purge"}, "post", {}, "reports:delete", 403),
        ({"post": "purge"}, "post", {}, "reports:delete reports:admin", 204),
        ({"get": "retrieve"}, "get", {"pk": "1"}, "reports:read reports:write reports:admin reports:delete", 403),
    ],
)
def test_required_scopes_per_action(
    oidc_settings: Any, issuer: Any, actions: Any, method: str, kwargs: Any, scope: str, status: int
) -> None:
    view = ScopedReports.as_view(actions)
    token = issuer.token(scope=scope)
    response = view(getattr(factory, method)("/r", HTTP_AUTHORIZATION=f"Bearer {token}"), **kwargs)
    assert response.status_code == status


def test_an_action_missing_from_required_scopes_is_refused_without_a_challenge(oidc_settings: Any, issuer: Any) -> None:
    view = ScopedReports.as_view({"get": "retrieve"})
    token = issuer.token(scope="reports:read reports:write reports:admin reports:delete")
    response = view(factory.get("/r/1", HTTP_AUTHORIZATION=f"Bearer {token}"), pk="1")
    assert response.status_code == 403
    assert response.data["detail"].code == "insufficient_scope"
    assert response.data["detail"] == "No scope grants this action."
    assert "WWW-Authenticate" not in response


def test_an_any_group_refusal_describes_the_alternatives(oidc_settings: Any, issuer: Any) -> None:
    view = ScopedReports.as_view({"post": "create"})
    response = view(factory.post("/r", HTTP_AUTHORIZATION=f"Bearer {issuer.token(scope='x')}"))
    assert response.data["detail"] == "Requires one of the scopes: reports:write, reports:admin."
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="reports:write reports:admin", '
        'error_description="Requires one of the scopes: reports:write, reports:admin."'
    )


def test_mixed_groups_are_described_with_and_and_or(oidc_settings: Any, issuer: Any) -> None:
    view = view_with(HasScope, required_scopes=[["a", "b"], ["c"]])
    response = run(view, issuer, {"scope": "a"})
    assert response.data["detail"] == "Requires the scopes (a and b) or c."


def test_method_keys_and_a_star_fallback_serve_plain_api_views(oidc_settings: Any, issuer: Any) -> None:
    view = view_with(HasRole, required_roles={"post": ["editor"], "*": []})
    assert run(view, issuer, {"roles": []}).status_code == 200  # GET falls back to "*": no role needed
    assert run(view, issuer, {"roles": []}, method="post").status_code == 403
    assert run(view, issuer, {"roles": ["editor"]}, method="post").status_code == 201


def test_upper_case_method_keys_work_too(oidc_settings: Any, issuer: Any) -> None:
    view = view_with(HasPermission, required_permissions={"GET": "read:x"})
    assert run(view, issuer, {"permissions": ["read:x"]}).status_code == 200
    assert run(view, issuer, {"permissions": ["read:y"]}).status_code == 403
    assert run(view, issuer, {"permissions": ["read:x"]}, method="post").status_code == 403


def test_head_follows_the_get_entry_of_a_plain_api_view(oidc_settings: Any, issuer: Any) -> None:
    view = view_with(HasScope, required_scopes={"get": ["reports:read"]})
    assert run(view, issuer, {"scope": "reports:read"}, method="head").status_code == 200
    assert run(view, issuer, {"scope": "other"}, method="head").status_code == 403
    assert run(view, issuer, {"scope": "reports:read"}, method="options").status_code == 403  # no entry


def test_a_view_hook_computes_the_requirement_per_request(oidc_settings: Any, issuer: Any) -> None:
    def get_required_scopes(self: APIView, request: Any) -> list[str]:
        return ["reports:read"] if request.method == "GET" else ["reports:write"]

    view = view_with(HasScope, get_required_scopes=get_required_scopes)
    assert run(view, issuer, {"scope": "reports:read"}).status_code == 200
    assert run(view, issuer, {"scope": "reports:read"}, method="post").status_code == 403
    assert run(view, issuer, {"scope": "reports:write"}, method="post").status_code == 201


def test_a_permission_subclass_overrides_the_hook(oidc_settings: Any, issuer: Any) -> None:
    class TenantAdmin(HasRole):
        def get_required_roles(self, request: Any, view: Any) -> Any:
            return to_requirement([f"{request.auth.tenant_id}:admin"])

    view = view_with(TenantAdmin)
    assert run(view, issuer, {"tenant_id": "acme", "roles": ["acme:admin"]}).status_code == 200
    assert run(view, issuer, {"tenant_id": "acme", "roles": ["globex:admin"]}).status_code == 403


def test_view_attributes_compose_like_any_other_permission(oidc_settings: Any, issuer: Any) -> None:
    view = view_with(HasRole("admin") | HasScope, required_scopes={"get": ["reports:read"]})
    assert run(view, issuer, {"roles": ["admin"]}).status_code == 200
    assert run(view, issuer, {"scope": "reports:read"}).status_code == 200
    assert run(view, issuer, {"scope": "x"}).status_code == 403


def test_a_missing_view_attribute_is_a_configuration_error(oidc_settings: Any, issuer: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="required_scopes"):
        run(view_with(HasScope), issuer, {"scope": "a"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a", (("a",),)),
        (["a", "b", "a"], (("a", "b"),)),
        ([], ((),)),
        ({"b", "a"}, (("a", "b"),)),
        ([["a"], ["b", "c"]], (("a",), ("b", "c"))),
        (any_of("a", "b"), (("a",), ("b",))),
        (all_of("a", "b"), (("a", "b"),)),
    ],
)
def test_view_attribute_values_normalise(value: Any, expected: Any) -> None:
    assert to_requirement(value) == expected


@pytest.mark.parametrize("value", ["", None, 3, [1], ["a", ["b"]], [[]], {"a": 1}, [[""]]])
def test_malformed_view_attribute_values_are_refused(value: Any) -> None:
    with pytest.raises(ImproperlyConfigured):
        to_requirement(value)


def test_constructor_arguments_are_checked_at_definition_time() -> None:
    with pytest.raises(TypeError):
        HasRole("")
    with pytest.raises(TypeError):
        HasRole(["admin"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        HasScope.all()
    with pytest.raises(TypeError):
        HasScope.any()
    with pytest.raises(ValueError):
        HasRole("a", match="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        any_of()


def test_a_subclass_rewords_refusals_through_describe(oidc_settings: Any, issuer: Any) -> None:
    class PoliteScope(HasScope):
        def describe(self, required: Any) -> str:
            return "Please ask for " + " or ".join(" and ".join(group) for group in required) + "."

    response = run(view_with(PoliteScope("a", "b")), issuer, {"scope": "c"})
    assert response.status_code == 403
    assert response.data == {"detail": "Please ask for a or b.", "code": "insufficient_scope"}
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="a b", error_description="Please ask for a or b."'
    )


def test_reprs_say_what_is_required() -> None:
    assert repr(HasRole("a", "b")) == "HasRole('a', 'b')"
    assert repr(HasRole("a")) == repr(HasRole.all("a")) == "HasRole('a')"
    assert repr(HasScope.all("a", "b")) == "HasScope.all('a', 'b')"
    assert repr(HasScope()) == "HasScope(<view.required_scopes>)"
    assert repr(HasTenant()) == "HasTenant()"


# --------------------------------------------------------------------------------------------
# No database access in permission checks.
# --------------------------------------------------------------------------------------------


def _untouchable_user() -> Any:
    """A user that runs a query the moment anything looks at it."""
    return SimpleLazyObject(lambda: get_user_model().objects.filter(username="nobody").first())


DB_FREE_VIEWS = [
    (authz_views.AdminUsersView.as_view(), "get", {"roles": ["admin"]}, 200),
    (authz_views.AdminUsersView.as_view(), "get", {"roles": ["user"]}, 403),
    (authz_views.BillingView.as_view(), "get", {"permissions": ["read:billing"]}, 200),
    (authz_views.BillingView.as_view(), "get", {"permissions": []}, 403),
    (authz_views.AnalyticsView.as_view(), "get", {"scope": "reports:read analytics:read"}, 200),
    (authz_views.AnalyticsView.as_view(), "get", {"scope": "reports:read"}, 403),
    (authz_views.ReportViewSet.as_view({"get": "list", "post": "create"}), "get", {"scope": "reports:read"}, 200),
    (authz_views.ReportViewSet.as_view({"get": "list", "post": "create"}), "post", {"scope": "reports:read"}, 403),
    (authz_views.TenantDataView.as_view(), "get", {"tenant_id": "acme", "org_role": "owner"}, 200),
    (authz_views.TenantDataView.as_view(), "get", {"org_role": "owner"}, 403),
]


@pytest.mark.parametrize(("view", "method", "claims", "status"), DB_FREE_VIEWS)
def test_permission_checks_run_no_queries(
    oidc_settings: Any, issuer: Any, django_assert_num_queries: Any, view: Any, method: str, claims: Any, status: int
) -> None:
    claims_obj = verify_token(issuer.token(**claims))
    drf_request = getattr(factory, method)("/x")
    force_authenticate(drf_request, user=_untouchable_user(), token=claims_obj)  # type: ignore[arg-type]
    with django_assert_num_queries(0):
        response = view(drf_request)
    assert response.status_code == status


@pytest.mark.parametrize(
    "permission",
    [
        HasRole("admin"),
        HasOrgRole("owner"),
        HasScope("a"),
        HasPermission("p"),
        HasTenant(),
        HasRole("admin") | HasScope("a"),
        ~HasTenant(),
        HasTenant() & HasOrgRole("owner"),
    ],
)
def test_has_permission_alone_runs_no_queries(
    oidc_settings: Any, issuer: Any, django_assert_num_queries: Any, permission: Any
) -> None:
    drf_request = token_request(issuer, roles=["x"], scope="b", tenant_id="t", org_role="owner")
    with django_assert_num_queries(0):
        instance = permission()
        assert isinstance(instance.has_permission(drf_request, APIView()), bool)
        assert isinstance(instance.has_object_permission(drf_request, APIView(), object()), bool)


def test_stateless_requests_to_protected_endpoints_run_no_queries(
    oidc_settings: Any, issuer: Any, api: Any, django_assert_num_queries: Any
) -> None:
    oidc_settings(SYNC_USERS=False)
    admin = issuer.token(roles=["admin"])
    user = issuer.token(roles=["user"])
    api.get("/api/admin/users", HTTP_AUTHORIZATION=f"Bearer {admin}")  # warm the JWKS cache
    with django_assert_num_queries(0):
        assert api.get("/api/admin/users", HTTP_AUTHORIZATION=f"Bearer {admin}").status_code == 200
        assert api.get("/api/admin/users", HTTP_AUTHORIZATION=f"Bearer {user}").status_code == 403
        assert api.get("/api/admin/users").status_code == 401


# --------------------------------------------------------------------------------------------
# The documentation's examples (docs/examples/authorization_example.py) run, and the page matches them.
# --------------------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES_FILE = DOCS / "examples" / "authorization_example.py"


def example_sections() -> dict[str, str]:
    source = EXAMPLES_FILE.read_text()
    found = re.findall(r"# --8<-- \[start:([\w-]+)\]\n(.*?)# --8<-- \[end:\1\]", source, re.S)
    return {name: body.strip("\n") for name, body in found}


@pytest.fixture(scope="module")
def examples() -> Any:
    spec = importlib.util.spec_from_file_location("authorization_example", EXAMPLES_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_authorization_page_shows_exactly_the_example_modules_sections() -> None:
    page = (DOCS / "authorization.md").read_text()
    blocks = [block.strip("\n") for block in re.findall(r"```python\n(.*?)```", page, re.S)]
    sections = example_sections()
    assert len(sections) >= 8
    assert sorted(blocks) == sorted(sections.values())


EXAMPLE_CASES = [
    ("AdminUsersView", "get", {"roles": ["admin"]}, 200, None),
    ("AdminUsersView", "get", {"roles": ["user"]}, 403, "role_required"),
    ("AdminUsersView", "get", None, 401, "not_authenticated"),
    ("BillingView", "get", {"permissions": ["read:billing"]}, 200, None),
    ("BillingView", "get", {"scope": "read:billing"}, 403, "permission_required"),
    ("OrganizationSettingsView", "get", {"tenant_id": "acme", "org_role": "admin"}, 200, None),
    ("OrganizationSettingsView", "get", {"tenant_id": "acme", "org_role": "member"}, 403, "org_role_required"),
    ("OrganizationSettingsView", "get", {"org_role": "owner"}, 403, "tenant_required"),
    ("ExportView", "get", {"scope": "reports:read reports:export"}, 200, None),
    ("ExportView", "get", {"scope": "reports:read"}, 403, "insufficient_scope"),
    ("ReportView", "get", {"roles": ["admin"]}, 200, None),
    ("ReportView", "get", {"scope": "reports:read"}, 200, None),
    ("ReportView", "get", {"scope": "reports:write"}, 403, "permission_denied"),
    ("CommentView", "post", {"roles": ["user"]}, 201, None),
    ("CommentView", "post", {"roles": ["user", "suspended"]}, 403, "permission_denied"),
    ("CommentView", "post", None, 401, "not_authenticated"),
    ("ArchiveView", "get", {"scope": "archive:read"}, 200, None),
    ("ArchiveView", "post", {"scope": "archive:read"}, 403, "insufficient_scope"),
    ("ArchiveView", "post", {"scope": "archive:write"}, 201, None),
    ("TenantAdminView", "get", {"tenant_id": "acme", "roles": ["acme:admin"]}, 200, None),
    ("TenantAdminView", "get", {"tenant_id": "acme", "roles": ["globex:admin"]}, 403, "role_required"),
    ("TenantAdminView", "get", {"roles": ["acme:admin"]}, 403, "tenant_required"),
]


@pytest.mark.parametrize(("name", "method", "claims", "status", "code"), EXAMPLE_CASES)
def test_documented_view_examples_answer_as_the_page_says(
    oidc_settings: Any, issuer: Any, examples: Any, name: str, method: str, claims: Any, status: int, code: Any
) -> None:
    response = run(getattr(examples, name).as_view(), issuer, claims, method=method)
    assert response.status_code == status
    if code is not None:
        assert response.data["detail"].code == code


def test_documented_all_of_example_challenges_with_both_scopes(oidc_settings: Any, issuer: Any, examples: Any) -> None:
    response = run(examples.ExportView.as_view(), issuer, {"scope": "reports:read"})
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="reports:read reports:export", '
        'error_description="Requires all of the scopes: reports:read, reports:export."'
    )


@pytest.mark.parametrize(
    ("actions", "method", "kwargs", "scope", "status"),
    [
        ({"get": "list"}, "get", {}, "invoices:read", 200),
        ({"get": "list"}, "get", {}, "invoices:write", 403),
        ({"post": "create"}, "post", {}, "invoices:read", 403),
        ({"post": "create"}, "post", {}, "invoices:read invoices:write", 201),
        ({"delete": "destroy"}, "delete", {"pk": "1"}, "invoices:admin", 204),
        ({"delete": "destroy"}, "delete", {"pk": "1"}, "billing:admin", 204),
        ({"delete": "destroy"}, "delete", {"pk": "1"}, "invoices:read invoices:write", 403),
        ({"get": "retrieve"}, "get", {"pk": "1"}, "invoices:read invoices:write invoices:admin billing:admin", 403),
    ],
)
def test_documented_view_attribute_example(
    oidc_settings: Any, issuer: Any, examples: Any, actions: Any, method: str, kwargs: Any, scope: str, status: int
) -> None:
    view = examples.InvoiceViewSet.as_view(actions)
    token = issuer.token(scope=scope)
    response = view(getattr(factory, method)("/invoices", HTTP_AUTHORIZATION=f"Bearer {token}"), **kwargs)
    assert response.status_code == status


def test_documented_tenancy_example_scopes_stamps_and_refuses(oidc_settings: Any, issuer: Any, examples: Any) -> None:
    from testproject.api.models import Resource

    theirs = Resource.objects.create(tenant_id="globex", created_by="g", name="theirs")
    collection = examples.ResourceViewSet.as_view({"get": "list", "post": "create"})
    detail = examples.ResourceViewSet.as_view({"get": "retrieve", "patch": "partial_update"})
    owner = f"Bearer {issuer.token(sub='ann', tenant_id='acme', org_role='owner', organization_ids=['acme', 'globex'])}"

    created = collection(factory.post("/r", {"name": "ours"}, format="json", HTTP_AUTHORIZATION=owner))
    assert created.status_code == 201
    assert (created.data["tenant_id"], created.data["created_by"]) == ("acme", "ann")
    listed = collection(factory.get("/r", HTTP_AUTHORIZATION=owner))
    assert [r["name"] for r in listed.data] == ["ours"]
    assert detail(factory.get("/r", HTTP_AUTHORIZATION=owner), pk=str(theirs.pk)).status_code == 404
    moved = detail(
        factory.patch("/r", {"tenant_id": "globex"}, format="json", HTTP_AUTHORIZATION=owner), pk=created.data["id"]
    )
    assert moved.status_code == 403
    assert moved.data["detail"].code == "tenant_mismatch"
    in_globex = collection(factory.get("/r", HTTP_AUTHORIZATION=owner, HTTP_X_ORGANIZATION_ID="globex"))
    assert [r["name"] for r in in_globex.data] == ["theirs"]
    outside = collection(factory.get("/r", HTTP_AUTHORIZATION=owner, HTTP_X_ORGANIZATION_ID="initech"))
    assert outside.status_code == 403
    assert outside.data["detail"].code == "tenant_not_allowed"


def test_documented_related_lookup_example_refuses_another_tenants_project(
    oidc_settings: Any, issuer: Any, examples: Any
) -> None:
    from testproject.api.models import Project, Task

    ours = Project.objects.create(tenant_id="acme", name="ours")
    theirs = Project.objects.create(tenant_id="globex", name="theirs")
    collection = examples.TaskViewSet.as_view({"get": "list", "post": "create"})
    member = f"Bearer {issuer.token(sub='ann', tenant_id='acme')}"

    ok = collection(factory.post("/t", {"project": ours.pk, "title": "a"}, format="json", HTTP_AUTHORIZATION=member))
    assert ok.status_code == 201
    assert Task.objects.get(pk=ok.data["id"]).created_by == "ann"
    refused = collection(
        factory.post("/t", {"project": theirs.pk, "title": "b"}, format="json", HTTP_AUTHORIZATION=member)
    )
    assert refused.status_code == 400
    assert refused.data["project"][0].code == "does_not_exist"
    assert Task.objects.filter(project=theirs).count() == 0
