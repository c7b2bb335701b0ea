"""SCOPE_HIERARCHY: a broader scope satisfies a narrower requirement, transitively; cycles are reported."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import get_resolver, include, path
from hypothesis import given
from hypothesis import strategies as st
from rest_framework import routers, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from drf_oidc_jwks.permissions import HasRole, HasScope, any_of
from drf_oidc_jwks.scope_catalog import scopes_in_urlconf, scopes_supported
from drf_oidc_jwks.scopes import (
    ScopeHierarchy,
    compile_hierarchy,
    current_hierarchy,
    expand,
    find_cycle,
    hierarchy_problems,
)

pytestmark = pytest.mark.django_db

HIERARCHY = {"admin": ["reports:write", "billing"], "reports:write": ["reports:read"], "billing": ["billing:read"]}


def test_a_scope_implies_what_it_names_and_what_those_name() -> None:
    h = ScopeHierarchy(HIERARCHY)
    assert h.expand({"admin"}) == {"admin", "reports:write", "reports:read", "billing", "billing:read"}
    assert h.expand({"reports:write"}) == {"reports:write", "reports:read"}
    assert h.expand({"reports:read"}) == {"reports:read"}
    assert h.expand(set()) == frozenset()


def test_a_narrower_scope_never_implies_a_broader_one() -> None:
    h = ScopeHierarchy(HIERARCHY)
    assert not h.satisfies({"reports:read"}, [("reports:write",)])
    assert not h.satisfies({"billing:read"}, [("admin",)])


def test_satisfies_reads_a_requirement_in_disjunctive_normal_form() -> None:
    h = ScopeHierarchy(HIERARCHY)
    assert h.satisfies({"admin"}, [("reports:read", "billing:read")])
    assert h.satisfies({"reports:write"}, [("billing",), ("reports:read",)])
    assert not h.satisfies({"reports:write"}, [("reports:read", "billing:read")])
    assert not h.satisfies({"admin"}, [])
    assert h.satisfies(set(), [()])


def test_expand_without_a_hierarchy_returns_the_scopes_unchanged() -> None:
    assert ScopeHierarchy({}).expand({"a", "b"}) == {"a", "b"}
    assert not ScopeHierarchy({})
    assert compile_hierarchy(None).expand({"a"}) == {"a"}


@pytest.mark.parametrize(
    ("raw", "cycle"),
    [
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"x": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"a": ["b", "c"], "b": ["c"], "c": []}, None),
        ({"a": ["b"], "c": ["b"]}, None),
    ],
)
def test_find_cycle_returns_the_cycle_as_a_path(raw: Any, cycle: Any) -> None:
    assert find_cycle(raw) == cycle


def test_a_deep_chain_has_no_recursion_limit() -> None:
    raw = {f"s{i}": [f"s{i + 1}"] for i in range(5000)}
    assert find_cycle(raw) is None
    assert "s5000" in ScopeHierarchy(raw).expand({"s0"})
    raw["s5000"] = ["s0"]
    cycle = find_cycle(raw)
    assert cycle is not None and cycle[0] == cycle[-1]


def test_expand_terminates_on_a_cycle_and_treats_its_members_alike() -> None:
    h = ScopeHierarchy({"a": ["b"], "b": ["a"]})
    assert h.expand({"a"}) == h.expand({"b"}) == {"a", "b"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (["admin"], "must be a dict"),
        ({"admin": "reports:read"}, "must be a list"),
        ({"admin": [""]}, "must hold scopes"),
        ({"admin": ["a b"]}, "must hold scopes"),
        ({"": ["a"]}, "is not a scope"),
        ({"a": ["b"], "b": ["a"]}, "cycle: a -> b -> a"),
    ],
)
def test_hierarchy_problems_say_what_is_wrong(raw: Any, fragment: str) -> None:
    problems = hierarchy_problems(raw)
    assert problems and any(fragment in p for p in problems), problems


def test_a_good_hierarchy_has_no_problems() -> None:
    assert hierarchy_problems(HIERARCHY) == []
    assert hierarchy_problems({}) == []


@given(st.dictionaries(st.sampled_from("abcdef"), st.lists(st.sampled_from("abcdef"), max_size=3), max_size=6))
def test_the_closure_is_transitive_and_contains_the_held_scopes(raw: dict[str, list[str]]) -> None:
    h = ScopeHierarchy(raw)
    for scope in "abcdef":
        granted = h.expand({scope})
        assert scope in granted
        for implied in raw.get(scope, ()):
            assert h.expand({implied}) <= granted


# --------------------------------------------------------------------------------------------
# HasScope and the settings: SCOPE_HIERARCHY is a key of the settings table.


@pytest.fixture
def hierarchy(oidc_settings: Any) -> None:
    oidc_settings(SCOPE_HIERARCHY=HIERARCHY)


factory = APIRequestFactory()


def call(permission: Any, issuer: Any, scope: str) -> Any:
    def get(self: APIView, request: Any) -> Response:
        return Response({"ok": True})

    view: Any = type("Scoped", (APIView,), {"permission_classes": [permission], "get": get}).as_view()
    return view(factory.get("/scoped", HTTP_AUTHORIZATION=f"Bearer {issuer.token(scope=scope)}"))


@pytest.mark.parametrize(
    ("permission", "scope", "status"),
    [
        (HasScope("reports:read"), "admin", 200),
        (HasScope("reports:read"), "reports:write", 200),
        (HasScope("reports:read"), "billing", 403),
        (HasScope("admin"), "reports:write", 403),
        (HasScope.all("reports:read", "billing:read"), "admin", 200),
        (HasScope.all("reports:read", "billing:read"), "reports:write billing", 200),
        (HasScope.all("reports:read", "billing:read"), "reports:write", 403),
    ],
)
def test_has_scope_accepts_a_broader_scope(
    hierarchy: None, issuer: Any, permission: Any, scope: str, status: int
) -> None:
    assert call(permission, issuer, scope).status_code == status


def test_without_a_hierarchy_scopes_are_compared_exactly(oidc_settings: Any, issuer: Any) -> None:
    assert current_hierarchy().closure == {}
    assert call(HasScope("reports:read"), issuer, "admin").status_code == 403


def test_the_refusal_names_the_required_scope_not_the_broader_one(hierarchy: None, issuer: Any) -> None:
    response = call(HasScope("reports:write"), issuer, "reports:read")
    assert response.status_code == 403
    assert 'scope="reports:write"' in response["WWW-Authenticate"]


def test_the_compiled_hierarchy_is_reused_while_the_settings_are(hierarchy: None) -> None:
    assert current_hierarchy() is current_hierarchy()
    assert expand({"billing"}) == {"billing", "billing:read"}


# --------------------------------------------------------------------------------------------
# RFC 9728 scopes_supported: every HasScope reachable in the URLconf (this module is the URLconf).


class Composed(APIView):
    permission_classes = [IsAuthenticated & (HasScope("files:read") | HasRole("admin")), ~HasScope("banned")]


class ByAction(viewsets.ViewSet):
    permission_classes = [HasScope]
    required_scopes = {
        "list": "notes:read",
        "create": ["notes:write", "notes:audit"],
        "destroy": any_of("notes:admin", "root"),
    }

    def list(self, request: Any) -> Response:
        return Response([])


class Misconfigured(APIView):
    permission_classes = [HasScope]
    required_scopes = {"get": [[]]}


@api_view(["GET"])
@permission_classes([HasScope.all("fn:read", "offline_access")])
def function_view(request: Any) -> Response:
    return Response({})


router = routers.SimpleRouter()
router.register("notes", ByAction, basename="notes")
nested = [path("fn", function_view), path("configured", Composed.as_view(permission_classes=[HasScope("kw:only")]))]
urlpatterns = [
    path("composed", Composed.as_view()),
    path("bad", Misconfigured.as_view()),
    path("v1/", include(nested)),
    path("", include(router.urls)),
]

URLCONF = get_resolver("tests.test_scopes")


def test_every_has_scope_in_the_urlconf_is_found_composed_nested_and_per_action() -> None:
    assert scopes_in_urlconf(URLCONF) == {
        "files:read",
        "notes:read",
        "notes:write",
        "notes:audit",
        "notes:admin",
        "root",
        "fn:read",
        "offline_access",
        "kw:only",
    }


def test_scopes_supported_adds_required_and_declared_scopes_and_never_offline_access() -> None:
    supported = scopes_supported(["mcp"], ["extra:scope", "offline_access"], URLCONF)
    assert supported == sorted(supported)
    assert {"mcp", "extra:scope", "files:read", "kw:only"} <= set(supported)
    assert "offline_access" not in supported and "banned" not in supported


def test_the_projects_own_urlconf_advertises_its_report_scopes() -> None:
    found = scopes_in_urlconf()
    assert {"reports:read", "reports:write", "reports:export", "analytics:read"} <= found


def test_implied_by_names_every_broader_scope() -> None:
    h = ScopeHierarchy(HIERARCHY)
    assert h.implied_by("reports:read") == {"reports:write", "admin"}
    assert h.implied_by("admin") == frozenset()


def test_required_scopes_are_met_by_a_broader_scope_through_the_hierarchy(
    issuer: Any, oidc_settings: Any, api: Any
) -> None:
    oidc_settings(REQUIRED_SCOPES=["reports:read"], SCOPE_HIERARCHY={"reports:write": ["reports:read"]})
    api.credentials(HTTP_AUTHORIZATION="Bearer " + issuer.token(scope="reports:write"))
    assert api.get("/api/me").status_code == 200
    api.credentials(HTTP_AUTHORIZATION="Bearer " + issuer.token(scope="other"))
    refused = api.get("/api/me")
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")


def test_a_cyclic_hierarchy_is_refused_at_first_use_naming_the_cycle(settings: Any, issuer: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from drf_oidc_jwks.conf import get_settings

    settings.DRF_OIDC_JWKS = issuer.settings(SCOPE_HIERARCHY={"a": ["b"], "b": ["a"]})
    with pytest.raises(ImproperlyConfigured, match=r"E016.*a -> b -> a"):
        get_settings()
