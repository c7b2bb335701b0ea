"""The demo API of the reference guides, protected by drf_oidc_jwks.permissions and TenantScopedMixin."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_oidc_jwks.claims import Claims
from drf_oidc_jwks.permissions import HasOrgRole, HasPermission, HasRole, HasScope, HasTenant, any_of
from drf_oidc_jwks.tenancy import TenantScopedMixin, resolve_tenant

from .models import Project, Resource, Task


def _claims(request: Request) -> Claims:
    claims = request.auth
    assert isinstance(claims, Claims)  # the permission classes let nothing else through
    return claims


class AdminUsersView(APIView):
    """``/api/admin/users``: the admin role only."""

    permission_classes = [HasRole("admin")]

    def get(self, request: Request) -> Response:
        return Response({"message": "You are an admin", "admin_id": _claims(request).sub})


class TenantDataView(APIView):
    """``/api/tenant/data``: any caller with an active organisation (``X-Organization-Id`` may pick another)."""

    permission_classes = [HasTenant]
    tenant_header = "X-Organization-Id"

    def get(self, request: Request) -> Response:
        claims = _claims(request)
        return Response(
            {
                "tenant_id": resolve_tenant(request, self.tenant_header),
                "org_role": claims.org_role,
                "organizations": list(claims.organization_ids),
            }
        )


class ResourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Resource
        fields = ["id", "tenant_id", "created_by", "name", "description", "created_at"]
        read_only_fields = ["tenant_id", "created_by", "created_at"]


#: Any member of the organisation (HasTenant checks membership) reads and creates;
#: its owners and admins also change and delete.
_MANAGERS = any_of("owner", "admin")


class ResourceViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """``/api/tenant/resources``: full CRUD inside the caller's organisation.

    A global ``admin`` role may do everything an organisation manager may, but only in its own tenant.
    """

    queryset = Resource.objects.all()
    serializer_class = ResourceSerializer
    created_by_field = "created_by"
    tenant_header = "X-Organization-Id"
    permission_classes = [HasTenant, HasRole("admin") | HasOrgRole]
    required_org_roles = {
        "list": [],
        "retrieve": [],
        "create": [],
        "update": _MANAGERS,
        "partial_update": _MANAGERS,
        "destroy": _MANAGERS,
    }


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "tenant_id", "created_by", "name"]
        read_only_fields = ["tenant_id", "created_by"]


class ProjectViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """``/api/tenant/projects``: projects of the caller's organisation."""

    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    created_by_field = "created_by"
    permission_classes = [HasTenant]


class TaskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ["id", "project", "created_by", "title", "done"]
        read_only_fields = ["created_by"]


class TaskViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """``/api/tenant/tasks``: tasks reach their tenant through their project (a related lookup)."""

    queryset = Task.objects.select_related("project")
    serializer_class = TaskSerializer
    tenant_field = "project__tenant_id"
    created_by_field = "created_by"
    permission_classes = [HasTenant]


class ReportViewSet(viewsets.ViewSet):
    """``/api/reports``: scopes per action, django-oauth-toolkit style."""

    permission_classes = [HasScope]
    required_scopes = {
        "list": ["reports:read"],
        "create": ["reports:write"],
        "export": ["reports:read", "reports:export"],
    }

    def list(self, request: Request) -> Response:
        return Response({"reports": ["q1", "q2"]})

    def create(self, request: Request) -> Response:
        return Response({"created": True}, status=201)

    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> Response:
        return Response({"export": "q1,q2"})


class BillingView(APIView):
    """``/api/billing``: an Auth0-style RBAC permission."""

    permission_classes = [HasPermission("read:billing")]

    def get(self, request: Request) -> Response:
        return Response({"plan": "team"})


class AnalyticsView(APIView):
    """``/api/analytics``: two scopes, both required."""

    permission_classes = [HasScope.all("reports:read", "analytics:read")]

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response({"visits": 42})
