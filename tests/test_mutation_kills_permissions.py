"""Permissions: any()/all_of(), the org role under a selected organisation, HasAuthLevel's edges and its hook.

Written against surviving mutants of drf_oidc_jwks/permissions.py (docs/security.md, "Mutation testing").
Requests go through real DRF views (APIRequestFactory, or the demo API's URLs) with tokens of the test issuer.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from drf_oidc_jwks.challenges import parse_challenges
from drf_oidc_jwks.permissions import HasAuthLevel, HasRole, HasScope, all_of
from testproject.api.models import Resource

factory = APIRequestFactory()
HEADER = "HTTP_X_ORGANIZATION_ID"


def view_with(*permission_classes: Any, **attributes: Any) -> Any:
    def get(self: APIView, request: Any) -> Response:
        return Response({"ok": True})

    def post(self: APIView, request: Any) -> Response:
        return Response({"ok": True})

    body = {"permission_classes": list(permission_classes), "get": get, "post": post, **attributes}
    cls: Any = type("Guarded", (APIView,), body)
    return cls.as_view()


def run(view: Any, issuer: Any, claims: dict[str, Any], method: str = "get") -> Any:
    return view(getattr(factory, method)("/guarded", HTTP_AUTHORIZATION=f"Bearer {issuer.token(**claims)}"))


def test_all_of_is_every_value_and_any_is_one_of_them(oidc_settings: Any, issuer: Any) -> None:
    assert all_of("reports:read", "reports:export") == ["reports:read", "reports:export"]
    both = view_with(HasScope, required_scopes={"get": all_of("reports:read", "reports:export")})
    assert run(both, issuer, {"scope": "reports:read reports:export"}).status_code == 200
    assert run(both, issuer, {"scope": "reports:read"}).status_code == 403
    either = HasRole.any("admin", "editor")
    assert repr(either) == "HasRole('admin', 'editor')"
    assert run(view_with(either), issuer, {"roles": ["editor"]}).status_code == 200
    assert run(view_with(either), issuer, {"roles": ["viewer"]}).status_code == 403


def test_an_org_role_counts_only_in_the_tokens_own_organisation(oidc_settings: Any, issuer: Any, api: Any) -> None:
    own = Resource.objects.create(tenant_id="acme", created_by="x", name="a")
    theirs = Resource.objects.create(tenant_id="globex", created_by="x", name="g")
    token = issuer.token(tenant_id="acme", org_role="owner", organization_ids=["acme", "globex"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    # An owner of acme, working in globex by header: its role says nothing about globex.
    url = f"/api/tenant/resources/{theirs.pk}"
    refused = api.patch(url, {"name": "x"}, format="json", **auth, **{HEADER: "globex"})
    assert (refused.status_code, refused.data["detail"].code) == (403, "permission_denied")
    # The header naming its own organisation: its role holds there.
    allowed = api.patch(f"/api/tenant/resources/{own.pk}", {"name": "y"}, format="json", **auth, **{HEADER: "acme"})
    assert allowed.status_code == 200
    own.refresh_from_db()
    theirs.refresh_from_db()
    assert (own.name, theirs.name) == ("y", "g")


def test_a_max_age_of_zero_admits_only_a_login_of_this_very_second(oidc_settings: Any, issuer: Any) -> None:
    level = HasAuthLevel(max_age=0, clock=lambda: 1_700_000_000.0)
    assert repr(level) == "HasAuthLevel(max_age=0)"
    assert run(view_with(level), issuer, {"auth_time": 1_700_000_000}).status_code == 200
    assert run(view_with(level), issuer, {"auth_time": 1_699_999_999}).status_code == 401
    with pytest.raises(TypeError):
        HasAuthLevel(max_age=-1)


def test_a_login_exactly_max_age_old_is_still_recent_enough(oidc_settings: Any, issuer: Any) -> None:
    level = HasAuthLevel(max_age=300, clock=lambda: 1_700_000_300.0)
    assert run(view_with(level), issuer, {"auth_time": 1_700_000_000}).status_code == 200
    assert run(view_with(level), issuer, {"auth_time": 1_699_999_999}).status_code == 401


def test_the_repr_of_an_acr_only_level_names_no_max_age() -> None:
    assert repr(HasAuthLevel("mfa", "phr")) == "HasAuthLevel('mfa', 'phr')"
    assert repr(HasAuthLevel("mfa", max_age=60)) == "HasAuthLevel('mfa', max_age=60)"


def test_a_missing_auth_time_is_answered_with_its_own_description(oidc_settings: Any, issuer: Any) -> None:
    response = run(view_with(HasAuthLevel(max_age=300)), issuer, {})
    assert response.status_code == 401
    assert response.data["detail"] == "The time of authentication is required."
    (challenge,) = parse_challenges(response["WWW-Authenticate"])
    assert challenge.params["error_description"] == "The time of authentication is required."
    assert challenge.params["max_age"] == "300"


class PerMethodLevel(HasAuthLevel):
    """Reads may use any login; writes need the view's ``write_acr`` (the hook sees the request and the view)."""

    def get_required_level(self, request: Any, view: Any) -> HasAuthLevel:
        if request.method == "GET":
            return HasAuthLevel(max_age=10**9)
        return HasAuthLevel(view.write_acr)


def test_the_required_level_hook_is_given_the_request_and_the_view(oidc_settings: Any, issuer: Any) -> None:
    view = view_with(PerMethodLevel(max_age=1), write_acr="mfa")
    claims = {"acr": "pwd", "auth_time": 1_700_000_000}
    assert run(view, issuer, claims).status_code == 200
    refused = run(view, issuer, claims, method="post")
    assert refused.status_code == 401
    assert parse_challenges(refused["WWW-Authenticate"])[0].params["acr_values"] == "mfa"
    assert run(view, issuer, {**claims, "acr": "mfa"}, method="post").status_code == 200


def test_requirement_groups_given_as_sets_are_sorted_and_lists_keep_their_order() -> None:
    from drf_oidc_jwks.permissions import to_requirement

    assert to_requirement([["b", "a"], {"e", "d", "c", "b", "a"}]) == (("b", "a"), ("a", "b", "c", "d", "e"))


def test_has_tenant_follows_the_views_organisation_header(oidc_settings: Any, issuer: Any, api: Any) -> None:
    token = issuer.token(organization_ids=["acme", "globex"])  # no tenant_id: only the header selects one
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert api.get("/api/tenant/data", **auth, **{HEADER: "globex"}).json()["tenant_id"] == "globex"
    outside = api.get("/api/tenant/data", **auth, **{HEADER: "initech"})
    assert (outside.status_code, outside.json()["code"]) == (403, "tenant_not_allowed")
    none = api.get("/api/tenant/data", **auth)
    assert (none.status_code, none.json()["code"]) == (403, "tenant_required")


class OwnCode(HasRole):
    """A project's own permission: a code of its own, not one of the library's."""

    code = "needs_a_badge"


def refusal(permission: Any, issuer: Any, claims: dict[str, Any]) -> tuple[Any, Any]:
    seen: list[Exception] = []

    def handle_exception(self: APIView, exc: Exception) -> Any:
        seen.append(exc)
        return APIView.handle_exception(self, exc)

    def get(self: APIView, request: Any) -> Response:
        return Response({"ok": True})

    cls: Any = type("Recorded", (APIView,), {"permission_classes": [permission], "get": get})
    cls.handle_exception = handle_exception
    response = cls.as_view()(factory.get("/guarded", HTTP_AUTHORIZATION=f"Bearer {issuer.token(**claims)}"))
    return response, seen[0]


def test_a_refusal_raises_the_class_of_its_code_or_a_plain_permission_denied_for_an_own_code(
    oidc_settings: Any, issuer: Any
) -> None:
    from rest_framework.exceptions import PermissionDenied

    from drf_oidc_jwks.exceptions import OrgRoleRequired, PermissionRequired, RoleRequired
    from drf_oidc_jwks.permissions import HasOrgRole, HasPermission

    for permission, cls in ((HasRole("admin"), RoleRequired), (HasOrgRole("owner"), OrgRoleRequired)):
        response, exc = refusal(permission, issuer, {"tenant_id": "acme"})
        assert type(exc) is cls and response.status_code == 403
    response, exc = refusal(HasPermission("read:billing"), issuer, {})
    assert type(exc) is PermissionRequired
    assert response.data == {"detail": "Requires permission: read:billing.", "code": "permission_required"}
    response, exc = refusal(OwnCode("badge"), issuer, {})
    assert type(exc) is PermissionDenied
    assert response.status_code == 403
    assert response.data == {"detail": "Requires role: badge.", "code": "needs_a_badge"}
    assert response.data["detail"].code == "needs_a_badge"


@pytest.mark.parametrize("key", ["head", "HEAD", "get", "GET"])
def test_a_head_request_is_held_to_its_own_entry_or_else_to_the_get_entry(
    oidc_settings: Any, issuer: Any, key: str
) -> None:
    required = {key: ["s:one"], **({"get": ["s:other"]} if key.lower() == "head" else {})}
    view = view_with(HasScope, required_scopes=required)
    token = issuer.token(scope="s:one")
    assert view(factory.head("/guarded", HTTP_AUTHORIZATION=f"Bearer {token}")).status_code == 200


def test_a_wrong_match_names_the_two_allowed_values() -> None:
    with pytest.raises(ValueError, match='match must be "any" or "all", got \'some\''):
        HasRole("admin", match="some")  # type: ignore[arg-type]


def test_describe_words_every_shape_of_requirement() -> None:
    role = HasRole("x")
    assert role.describe(()) == "No role grants this action."
    assert role.describe(((),)) == "Permission denied."
    assert role.describe((("a",),)) == "Requires role: a."
    assert role.describe((("a", "b"),)) == "Requires all of the roles: a, b."
    assert role.describe((("a",), ("b",))) == "Requires one of the roles: a, b."
    assert role.describe((("a", "b"), ("c",))) == "Requires the roles (a and b) or c."
