"""TenantScopedMixin beyond the demo API: URL arguments, renamed and nullable fields, bulk writes, deeper paths.

Each test here was written against a surviving mutant of drf_oidc_jwks/tenancy.py (docs/security.md,
"Mutation testing"); the views are ordinary DRF views served from this module's URLconf.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import path, re_path
from rest_framework import generics, serializers, status, versioning
from rest_framework.request import Request
from rest_framework.response import Response

from drf_oidc_jwks.tenancy import TenantScopedMixin
from testproject.api.models import Project, Resource, Task

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_mutation_kills_tenancy")]


class PositionalVersioning(versioning.BaseVersioning):
    """A versioning scheme reading the first positional URL argument (an unnamed regex group)."""

    def determine_version(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        return args[0] if args else None


class VersionedResources(TenantScopedMixin, generics.ListAPIView):  # type: ignore[type-arg]
    """Lists the tenant's resources and says which API version DRF determined from the URL."""

    queryset = Resource.objects.all()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        names = [r.name for r in self.get_queryset()]
        return Response({"version": request.version, "names": names})


class ByKeyword(VersionedResources):
    versioning_class = versioning.URLPathVersioning


class ByPosition(VersionedResources):
    versioning_class = PositionalVersioning


class OrgResourceSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """The tenant column is writable under another name (``org``), so only validated_data names it."""

    org = serializers.CharField(source="tenant_id", required=False)

    class Meta:
        model = Resource
        fields = ["id", "org", "name"]


class OrgResources(TenantScopedMixin, generics.CreateAPIView):  # type: ignore[type-arg]
    queryset = Resource.objects.all()
    serializer_class = OrgResourceSerializer


class BulkResourceSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Resource
        fields = ["id", "tenant_id", "created_by", "name"]
        read_only_fields = ["tenant_id", "created_by"]


class BulkMixin:
    """A bulk create: a JSON list creates one object per item (``many=True``)."""

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        data = kwargs.get("data")
        if isinstance(data, list):
            kwargs["many"] = True
        return super().get_serializer(*args, **kwargs)  # type: ignore[misc]


class BulkResources(BulkMixin, TenantScopedMixin, generics.CreateAPIView):  # type: ignore[type-arg]
    queryset = Resource.objects.all()
    serializer_class = BulkResourceSerializer
    created_by_field = "created_by"


class BulkTaskSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Task
        fields = ["id", "project", "created_by", "title"]
        read_only_fields = ["created_by"]


class BulkTasks(BulkMixin, TenantScopedMixin, generics.CreateAPIView):  # type: ignore[type-arg]
    queryset = Task.objects.all()
    serializer_class = BulkTaskSerializer
    tenant_field = "project__tenant_id"
    created_by_field = "created_by"


class NullableProjectTaskSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """The serializer lets ``project`` be null (say, to detach later); the mixin must still refuse it."""

    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.all(), allow_null=True)

    class Meta:
        model = Task
        fields = ["id", "project", "title", "done"]


class NullableProjectTasks(TenantScopedMixin, generics.RetrieveUpdateAPIView):  # type: ignore[type-arg]
    queryset = Task.objects.select_related("project")
    serializer_class = NullableProjectTaskSerializer
    tenant_field = "project__tenant_id"


class CommentSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A comment on a task: it reaches its tenant two relations away (``task__project__tenant_id``)."""

    task = serializers.PrimaryKeyRelatedField(queryset=Task.objects.select_related("project"))
    text = serializers.CharField()

    def create(self, validated_data: dict[str, Any]) -> Any:
        return SimpleNamespace(**validated_data)


class Comments(TenantScopedMixin, generics.CreateAPIView):  # type: ignore[type-arg]
    serializer_class = CommentSerializer
    tenant_field = "task__project__tenant_id"


class MisroutedComments(Comments):
    """A path through an attribute tasks do not have: every write must be refused, never allowed."""

    tenant_field = "task__board__tenant_id"


urlpatterns = [
    path("k/<str:version>/resources", ByKeyword.as_view()),
    re_path(r"^p/(v\d+)/resources$", ByPosition.as_view()),
    path("org-resources", OrgResources.as_view()),
    path("bulk-resources", BulkResources.as_view()),
    path("bulk-tasks", BulkTasks.as_view()),
    path("nullable-tasks/<int:pk>", NullableProjectTasks.as_view()),
    path("comments", Comments.as_view()),
    path("misrouted-comments", MisroutedComments.as_view()),
]


def send(api: Any, issuer: Any, method: str, url: str, data: Any = None, tenant: str = "acme") -> Any:
    token = issuer.token(sub="ann", tenant_id=tenant)
    return getattr(api, method)(url, data, format="json", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def world() -> dict[str, Any]:
    Resource.objects.create(tenant_id="acme", created_by="x", name="acme-r")
    Resource.objects.create(tenant_id="globex", created_by="y", name="globex-r")
    acme = Project.objects.create(tenant_id="acme", name="a")
    globex = Project.objects.create(tenant_id="globex", name="g")
    return {
        "acme": acme,
        "globex": globex,
        "acme_task": Task.objects.create(project=acme, created_by="x", title="acme-t"),
        "globex_task": Task.objects.create(project=globex, created_by="y", title="globex-t"),
    }


def test_the_url_keyword_arguments_reach_drf_versioning(oidc_settings: Any, issuer: Any, api: Any, world: Any) -> None:
    response = send(api, issuer, "get", "/k/v2/resources")
    assert response.status_code == 200
    assert response.json() == {"version": "v2", "names": ["acme-r"]}


def test_the_url_positional_arguments_reach_drf_versioning(
    oidc_settings: Any, issuer: Any, api: Any, world: Any
) -> None:
    response = send(api, issuer, "get", "/p/v3/resources")
    assert response.status_code == 200
    assert response.json() == {"version": "v3", "names": ["acme-r"]}


def test_a_tenant_named_under_another_field_name_is_checked_after_validation(
    oidc_settings: Any, issuer: Any, api: Any
) -> None:
    refused = send(api, issuer, "post", "/org-resources", {"name": "sneak", "org": "globex"})
    assert refused.status_code == 403
    assert refused.data["detail"].code == "tenant_mismatch"
    assert not Resource.objects.filter(name="sneak").exists()
    allowed = send(api, issuer, "post", "/org-resources", {"name": "mine", "org": "acme"})
    assert allowed.status_code == 201
    assert Resource.objects.get(name="mine").tenant_id == "acme"


def test_a_bulk_create_stamps_every_item_with_the_tenant_and_the_creator(
    oidc_settings: Any, issuer: Any, api: Any
) -> None:
    response = send(api, issuer, "post", "/bulk-resources", [{"name": "one"}, {"name": "two", "tenant_id": "acme"}])
    assert response.status_code == 201, response.content
    rows = sorted(Resource.objects.values_list("name", "tenant_id", "created_by"))
    assert rows == [("one", "acme", "ann"), ("two", "acme", "ann")]


def test_a_bulk_create_naming_another_tenant_in_any_item_is_refused(oidc_settings: Any, issuer: Any, api: Any) -> None:
    response = send(api, issuer, "post", "/bulk-resources", [{"name": "one"}, {"name": "two", "tenant_id": "globex"}])
    assert response.status_code == 403
    assert response.data["detail"].code == "tenant_mismatch"
    assert not Resource.objects.exists()


def test_a_bulk_create_in_own_projects_is_allowed(oidc_settings: Any, issuer: Any, api: Any, world: Any) -> None:
    items = [{"project": world["acme"].pk, "title": "t1"}, {"project": world["acme"].pk, "title": "t2"}]
    response = send(api, issuer, "post", "/bulk-tasks", items)
    assert response.status_code == 201, response.content
    assert sorted(Task.objects.filter(title__in=["t1", "t2"]).values_list("title", "project_id", "created_by")) == [
        ("t1", world["acme"].pk, "ann"),
        ("t2", world["acme"].pk, "ann"),
    ]


def test_a_bulk_create_linking_any_item_to_another_tenants_project_is_refused(
    oidc_settings: Any, issuer: Any, api: Any, world: Any
) -> None:
    count = Task.objects.count()
    items = [{"project": world["acme"].pk, "title": "ok"}, {"project": world["globex"].pk, "title": "sneak"}]
    response = send(api, issuer, "post", "/bulk-tasks", items)
    assert response.status_code == 400
    assert response.json() == {"project": [f'Invalid pk "{world["globex"].pk}" - object does not exist.']}
    assert Task.objects.count() == count


def test_an_update_not_touching_the_relation_keeps_it(oidc_settings: Any, issuer: Any, api: Any, world: Any) -> None:
    task = world["acme_task"]
    response = send(api, issuer, "patch", f"/nullable-tasks/{task.pk}", {"done": True})
    assert response.status_code == 200, response.content
    task.refresh_from_db()
    assert (task.done, task.project_id) == (True, world["acme"].pk)


def test_a_null_relation_is_refused_with_the_null_code(oidc_settings: Any, issuer: Any, api: Any, world: Any) -> None:
    task = world["acme_task"]
    response = send(api, issuer, "patch", f"/nullable-tasks/{task.pk}", {"project": None})
    assert response.status_code == 400
    assert response.json() == {"project": ["This field may not be null."]}
    assert response.data["project"][0].code == "null"
    task.refresh_from_db()
    assert task.project_id == world["acme"].pk


def test_a_tenant_two_relations_away_is_checked(oidc_settings: Any, issuer: Any, api: Any, world: Any) -> None:
    own = send(api, issuer, "post", "/comments", {"task": world["acme_task"].pk, "text": "hi"})
    assert own.status_code == 201, own.content
    assert own.json() == {"task": world["acme_task"].pk, "text": "hi"}
    foreign = send(api, issuer, "post", "/comments", {"task": world["globex_task"].pk, "text": "hi"})
    assert foreign.status_code == 400
    assert foreign.json() == {"task": [f'Invalid pk "{world["globex_task"].pk}" - object does not exist.']}


def test_a_related_path_that_reaches_nothing_refuses_the_write(
    oidc_settings: Any, issuer: Any, api: Any, world: Any
) -> None:
    response = send(api, issuer, "post", "/misrouted-comments", {"task": world["acme_task"].pk, "text": "hi"})
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.data["task"][0].code == "does_not_exist"
