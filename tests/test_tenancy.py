"""TenantScopedMixin: every caller sees and changes only its active tenant's objects; nothing crosses tenants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from testproject.api.models import Project, Resource, Task

pytestmark = pytest.mark.django_db

RESOURCES = "/api/tenant/resources"
TASKS = "/api/tenant/tasks"
PROJECTS = "/api/tenant/projects"
HEADER = "HTTP_X_ORGANIZATION_ID"


@dataclass
class Caller:
    """Claims of a caller, the organisation header it sends, and the tenant it should act in."""

    claims: dict[str, Any] | None
    active: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    manager: bool = False  # may update and delete in its active tenant
    refusal: tuple[int, str] | None = None  # every request refused with (status, code)


CALLERS: dict[str, Caller] = {
    "anonymous": Caller(None, refusal=(401, "not_authenticated")),
    "acme_member": Caller({"tenant_id": "acme", "org_role": "member", "organization_ids": ["acme"]}, "acme"),
    "acme_guest": Caller({"tenant_id": "acme", "org_role": "guest"}, "acme"),
    "acme_no_org_role": Caller({"tenant_id": "acme"}, "acme"),
    "acme_owner": Caller({"tenant_id": "acme", "org_role": "owner"}, "acme", manager=True),
    "acme_org_admin": Caller({"tenant_id": "acme", "org_role": "admin"}, "acme", manager=True),
    "acme_global_admin": Caller({"tenant_id": "acme", "roles": ["admin"]}, "acme", manager=True),
    "globex_owner": Caller({"tenant_id": "globex", "org_role": "owner"}, "globex", manager=True),
    "admin_without_tenant": Caller({"roles": ["admin"], "org_role": "owner"}, refusal=(403, "tenant_required")),
    "orgs_but_no_active_tenant": Caller(
        {"organization_ids": ["acme", "globex"], "org_role": "owner"}, refusal=(403, "tenant_required")
    ),
    # owner of acme (its token's own organisation), member of globex, working in globex by header:
    # its org_role says nothing about globex, so it may read and create there but not manage.
    "multi_org_in_globex": Caller(
        {"tenant_id": "acme", "org_role": "owner", "organization_ids": ["acme", "globex"]},
        "globex",
        headers={HEADER: "globex"},
    ),
    "multi_org_global_admin_in_globex": Caller(
        {"tenant_id": "acme", "roles": ["admin"], "organization_ids": ["acme", "globex"]},
        "globex",
        headers={HEADER: "globex"},
        manager=True,
    ),
    "multi_org_header_naming_own_primary": Caller(
        {"tenant_id": "acme", "org_role": "owner", "organization_ids": ["acme", "globex"]},
        "acme",
        headers={HEADER: "acme"},
        manager=True,
    ),
    "header_outside_own_orgs": Caller(
        {"tenant_id": "acme", "org_role": "owner", "organization_ids": ["acme"]},
        headers={HEADER: "initech"},
        refusal=(403, "tenant_not_allowed"),
    ),
}

ACTIONS = [
    "list",
    "retrieve_own",
    "retrieve_other",
    "create",
    "create_naming_own_tenant",
    "create_naming_other_tenant",
    "update_own",
    "update_other",
    "replace_own",
    "delete_own",
    "delete_other",
    "move_own",
    "move_own_by_put",
]


@pytest.fixture
def world() -> dict[str, list[Resource]]:
    """Two resources in acme, two in globex."""
    return {
        tenant: [
            Resource.objects.create(tenant_id=tenant, created_by=f"{tenant}-creator", name=f"{tenant}-{i}")
            for i in (1, 2)
        ]
        for tenant in ("acme", "globex")
    }


def send(api: Any, issuer: Any, caller: Caller, method: str, path: str, data: Any = None) -> Any:
    extra = dict(caller.headers)
    if caller.claims is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {issuer.token(sub='caller-9', **caller.claims)}"
    return getattr(api, method)(path, data, format="json", **extra)


def snapshot() -> list[tuple[Any, ...]]:
    return sorted(Resource.objects.values_list("id", "tenant_id", "created_by", "name"))


def expected(caller: Caller, act: str) -> tuple[int, str | None]:
    """The answer the rules give: (status, code or None)."""
    if caller.refusal is not None:
        return caller.refusal
    writes = {"update_own", "replace_own", "delete_own", "update_other", "delete_other", "move_own", "move_own_by_put"}
    if act in writes and not caller.manager:
        # refused by the permission before any lookup, so another tenant's ids are not confirmed either
        return 403, "permission_denied"
    return {
        "list": (200, None),
        "retrieve_own": (200, None),
        "retrieve_other": (404, "not_found"),
        "create": (201, None),
        "create_naming_own_tenant": (201, None),
        "create_naming_other_tenant": (403, "tenant_mismatch"),
        "update_own": (200, None),
        "replace_own": (200, None),
        "update_other": (404, "not_found"),
        "delete_own": (204, None),
        "delete_other": (404, "not_found"),
        "move_own": (403, "tenant_mismatch"),
        "move_own_by_put": (403, "tenant_mismatch"),
    }[act]


@pytest.mark.parametrize("act", ACTIONS)
@pytest.mark.parametrize("name", list(CALLERS))
def test_resource_matrix(
    oidc_settings: Any, issuer: Any, api: Any, world: dict[str, list[Resource]], name: str, act: str
) -> None:
    caller = CALLERS[name]
    active = caller.active or "acme"
    other = "globex" if active == "acme" else "acme"
    own, foreign = world[active][0], world[other][0]
    before = snapshot()

    method, path, data = {
        "list": ("get", RESOURCES, None),
        "retrieve_own": ("get", f"{RESOURCES}/{own.pk}", None),
        "retrieve_other": ("get", f"{RESOURCES}/{foreign.pk}", None),
        "create": ("post", RESOURCES, {"name": "new", "created_by": "mallory"}),
        "create_naming_own_tenant": ("post", RESOURCES, {"name": "new", "tenant_id": active}),
        "create_naming_other_tenant": ("post", RESOURCES, {"name": "new", "tenant_id": other}),
        "update_own": ("patch", f"{RESOURCES}/{own.pk}", {"name": "renamed", "created_by": "mallory"}),
        "replace_own": ("put", f"{RESOURCES}/{own.pk}", {"name": "renamed", "description": "d"}),
        "update_other": ("patch", f"{RESOURCES}/{foreign.pk}", {"name": "renamed"}),
        "delete_own": ("delete", f"{RESOURCES}/{own.pk}", None),
        "delete_other": ("delete", f"{RESOURCES}/{foreign.pk}", None),
        "move_own": ("patch", f"{RESOURCES}/{own.pk}", {"tenant_id": other}),
        "move_own_by_put": ("put", f"{RESOURCES}/{own.pk}", {"name": "moved", "tenant_id": other}),
    }[act]
    response = send(api, issuer, caller, method, path, data)
    status, code = expected(caller, act)

    assert response.status_code == status, response.content
    if code is not None:
        assert response.data["detail"].code == code
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'

    # What the database holds afterwards: only the allowed change, only in the active tenant.
    if status >= 400:
        assert snapshot() == before
    elif act == "list":
        assert [r["id"] for r in response.json()] == [r.pk for r in world[active]]
        assert {r["tenant_id"] for r in response.json()} == {active}
    elif act == "retrieve_own":
        assert response.json()["id"] == own.pk
    elif act.startswith("create"):
        created = Resource.objects.get(pk=response.json()["id"])
        assert (created.tenant_id, created.created_by) == (active, "caller-9")
        assert snapshot() == sorted([*before, (created.pk, active, "caller-9", "new")])
    elif act in ("update_own", "replace_own"):
        own.refresh_from_db()
        assert (own.tenant_id, own.created_by, own.name) == (active, f"{active}-creator", "renamed")
    elif act == "delete_own":
        assert not Resource.objects.filter(pk=own.pk).exists()
        assert len(snapshot()) == len(before) - 1
    else:
        raise AssertionError(f"unexpected success for {act}")


def test_another_tenants_object_is_answered_exactly_like_a_missing_one(
    oidc_settings: Any, issuer: Any, api: Any, world: dict[str, list[Resource]]
) -> None:
    caller = CALLERS["acme_owner"]
    missing = max(r.pk for rs in world.values() for r in rs) + 1000
    for method in ("get", "patch", "delete"):
        foreign = send(api, issuer, caller, method, f"{RESOURCES}/{world['globex'][0].pk}", {"name": "x"})
        absent = send(api, issuer, caller, method, f"{RESOURCES}/{missing}", {"name": "x"})
        assert foreign.status_code == absent.status_code == 404
        assert foreign.content == absent.content


def test_a_non_numeric_id_is_a_plain_404(oidc_settings: Any, issuer: Any, api: Any) -> None:
    response = send(api, issuer, CALLERS["acme_owner"], "get", f"{RESOURCES}/not-a-number")
    assert response.status_code == 404


def test_creator_is_kept_when_someone_else_updates(
    oidc_settings: Any, issuer: Any, api: Any, world: dict[str, list[Resource]]
) -> None:
    own = world["acme"][0]
    token = issuer.token(sub="bob", tenant_id="acme", org_role="owner")
    response = api.patch(
        f"{RESOURCES}/{own.pk}",
        {"name": "bob's", "created_by": "bob"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200
    own.refresh_from_db()
    assert own.created_by == "acme-creator"


def test_a_numeric_tenant_claim_scopes_like_its_string(oidc_settings: Any, issuer: Any, api: Any) -> None:
    Resource.objects.create(tenant_id="42", created_by="x", name="forty-two")
    Resource.objects.create(tenant_id="43", created_by="x", name="forty-three")
    response = api.get(RESOURCES, HTTP_AUTHORIZATION=f"Bearer {issuer.token(tenant_id=42)}")
    assert response.status_code == 200
    assert [r["name"] for r in response.json()] == ["forty-two"]


def test_a_blank_organization_header_falls_back_to_the_tokens_tenant(
    oidc_settings: Any, issuer: Any, api: Any, world: dict[str, list[Resource]]
) -> None:
    token = issuer.token(tenant_id="acme", organization_ids=["acme", "globex"])
    response = api.get(RESOURCES, HTTP_AUTHORIZATION=f"Bearer {token}", **{HEADER: "  "})
    assert response.status_code == 200
    assert {r["tenant_id"] for r in response.json()} == {"acme"}


def test_the_organization_header_is_ignored_where_the_view_does_not_turn_it_on(
    oidc_settings: Any, issuer: Any, api: Any
) -> None:
    Project.objects.create(tenant_id="acme", name="acme-p")
    Project.objects.create(tenant_id="globex", name="globex-p")
    token = issuer.token(tenant_id="acme", organization_ids=["acme", "globex"])
    response = api.get(PROJECTS, HTTP_AUTHORIZATION=f"Bearer {token}", **{HEADER: "globex"})
    assert response.status_code == 200
    assert [p["name"] for p in response.json()] == ["acme-p"]


def test_the_organization_header_selects_a_tenant_only_when_there_is_no_primary(
    oidc_settings: Any, issuer: Any, api: Any, world: dict[str, list[Resource]]
) -> None:
    token = issuer.token(organization_ids=["acme", "globex"])
    response = api.get(RESOURCES, HTTP_AUTHORIZATION=f"Bearer {token}", **{HEADER: "globex"})
    assert response.status_code == 200
    assert {r["tenant_id"] for r in response.json()} == {"globex"}


def test_a_resource_list_runs_one_query_for_a_stateless_caller(
    oidc_settings: Any, issuer: Any, api: Any, world: dict[str, list[Resource]], django_assert_num_queries: Any
) -> None:
    oidc_settings(SYNC_USERS=False)
    token = issuer.token(tenant_id="acme", org_role="member")
    api.get(RESOURCES, HTTP_AUTHORIZATION=f"Bearer {token}")  # warm the JWKS cache
    with django_assert_num_queries(1):  # the tenant-filtered SELECT; the checks themselves add none
        assert api.get(RESOURCES, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


# --------------------------------------------------------------------------------------------
# /api/tenant/data
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "headers", "status", "body"),
    [
        (
            {"tenant_id": "acme", "org_role": "owner", "organization_ids": ["acme", "globex"]},
            {},
            200,
            {"tenant_id": "acme", "org_role": "owner", "organizations": ["acme", "globex"]},
        ),
        (
            {"tenant_id": "acme", "org_role": "owner", "organization_ids": ["acme", "globex"]},
            {HEADER: "globex"},
            200,
            {"tenant_id": "globex", "org_role": "owner", "organizations": ["acme", "globex"]},
        ),
        ({"tenant_id": "acme", "organization_ids": ["acme"]}, {HEADER: "globex"}, 403, "tenant_not_allowed"),
        ({"org_role": "owner"}, {}, 403, "tenant_required"),
        (None, {}, 401, "not_authenticated"),
    ],
)
def test_tenant_data(
    oidc_settings: Any, issuer: Any, api: Any, claims: Any, headers: Any, status: int, body: Any
) -> None:
    extra = dict(headers)
    if claims is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {issuer.token(**claims)}"
    response = api.get("/api/tenant/data", **extra)
    assert response.status_code == status
    if status == 200:
        assert response.json() == body
    else:
        assert response.data["detail"].code == body


def test_a_refused_organization_header_names_the_header_but_not_the_value(
    oidc_settings: Any, issuer: Any, api: Any
) -> None:
    token = issuer.token(tenant_id="acme", organization_ids=["acme"])
    response = api.get(RESOURCES, HTTP_AUTHORIZATION=f"Bearer {token}", **{HEADER: "initech-secret"})
    assert response.status_code == 403
    assert response.json() == {
        "detail": "The organization selected by X-Organization-Id is not one of the caller's organizations.",
        "code": "tenant_not_allowed",
    }


# --------------------------------------------------------------------------------------------
# Related lookups: tasks reach their tenant through project__tenant_id.
# --------------------------------------------------------------------------------------------


@pytest.fixture
def projects() -> dict[str, Project]:
    acme = Project.objects.create(tenant_id="acme", name="acme-p")
    acme2 = Project.objects.create(tenant_id="acme", name="acme-p2")
    globex = Project.objects.create(tenant_id="globex", name="globex-p")
    Task.objects.create(project=acme, created_by="x", title="acme-t")
    Task.objects.create(project=globex, created_by="y", title="globex-t")
    return {"acme": acme, "acme2": acme2, "globex": globex}


def acme(api: Any, issuer: Any, method: str, path: str, data: Any = None, sub: str = "ann") -> Any:
    token = issuer.token(sub=sub, tenant_id="acme", org_role="member")
    return getattr(api, method)(path, data, format="json", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_related_lookup_lists_only_the_tenants_tasks(oidc_settings: Any, issuer: Any, api: Any, projects: Any) -> None:
    response = acme(api, issuer, "get", TASKS)
    assert response.status_code == 200
    assert [t["title"] for t in response.json()] == ["acme-t"]


def test_related_lookup_hides_another_tenants_task(oidc_settings: Any, issuer: Any, api: Any, projects: Any) -> None:
    foreign = Task.objects.get(title="globex-t")
    for method in ("get", "patch", "delete"):
        response = acme(api, issuer, method, f"{TASKS}/{foreign.pk}", {"title": "mine"})
        assert response.status_code == 404
        assert response.data["detail"].code == "not_found"
    foreign.refresh_from_db()
    assert foreign.title == "globex-t"


def test_related_lookup_creates_in_an_own_project_and_stamps_the_creator(
    oidc_settings: Any, issuer: Any, api: Any, projects: Any
) -> None:
    response = acme(api, issuer, "post", TASKS, {"project": projects["acme"].pk, "title": "new", "created_by": "eve"})
    assert response.status_code == 201
    task = Task.objects.get(pk=response.json()["id"])
    assert (task.project_id, task.created_by) == (projects["acme"].pk, "ann")


def test_related_lookup_refuses_another_tenants_project_like_a_missing_one(
    oidc_settings: Any, issuer: Any, api: Any, projects: Any
) -> None:
    count = Task.objects.count()
    foreign = acme(api, issuer, "post", TASKS, {"project": projects["globex"].pk, "title": "sneak"})
    assert foreign.status_code == 400
    assert foreign.data["project"][0].code == "does_not_exist"
    assert foreign.json() == {"project": [f'Invalid pk "{projects["globex"].pk}" - object does not exist.']}
    missing_pk = projects["globex"].pk + 1000
    missing = acme(api, issuer, "post", TASKS, {"project": missing_pk, "title": "sneak"})
    assert missing.status_code == 400
    assert missing.json() == {"project": [f'Invalid pk "{missing_pk}" - object does not exist.']}
    assert Task.objects.count() == count


def test_related_lookup_cannot_move_a_task_to_another_tenants_project(
    oidc_settings: Any, issuer: Any, api: Any, projects: Any
) -> None:
    own = Task.objects.get(title="acme-t")
    response = acme(api, issuer, "patch", f"{TASKS}/{own.pk}", {"project": projects["globex"].pk})
    assert response.status_code == 400
    assert response.data["project"][0].code == "does_not_exist"
    own.refresh_from_db()
    assert own.project_id == projects["acme"].pk


def test_related_lookup_moves_a_task_within_the_tenant_and_keeps_its_creator(
    oidc_settings: Any, issuer: Any, api: Any, projects: Any
) -> None:
    own = Task.objects.get(title="acme-t")
    response = acme(api, issuer, "patch", f"{TASKS}/{own.pk}", {"project": projects["acme2"].pk, "done": True})
    assert response.status_code == 200
    own.refresh_from_db()
    assert (own.project_id, own.done, own.created_by) == (projects["acme2"].pk, True, "x")


def test_projects_are_stamped_with_tenant_and_creator(oidc_settings: Any, issuer: Any, api: Any) -> None:
    response = acme(api, issuer, "post", PROJECTS, {"name": "fresh", "tenant_id": "acme"}, sub="zoe")
    assert response.status_code == 201
    assert response.json()["tenant_id"] == "acme"
    assert Project.objects.filter(name="fresh", tenant_id="acme", created_by="zoe").count() == 1
