"""The examples of docs/authorization.md: each ``[start:name]``/``[end:name]`` section is copied verbatim
into the page (tests/test_permissions.py checks they agree) and exercised by the test suite.

The models are the demo project's (testproject/api/models.py).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# --8<-- [start:imports]
from drf_oidc_jwks.permissions import (
    HasAuthLevel,
    HasOrgRole,
    HasPermission,
    HasRole,
    HasScope,
    HasTenant,
    Requirement,
    any_of,
    to_requirement,
)
from drf_oidc_jwks.tenancy import TenantScopedMixin
from testproject.api.models import Resource, Task  # your models

# --8<-- [end:imports]


# --8<-- [start:one-class]
class AdminUsersView(APIView):
    permission_classes = [HasRole("admin")]  # the admin role; "admin" or "editor": HasRole("admin", "editor")

    def get(self, request: Request) -> Response:
        return Response({"admin_id": request.auth.sub})


class BillingView(APIView):
    permission_classes = [HasPermission("read:billing")]  # Auth0 RBAC "permissions"

    def get(self, request: Request) -> Response:
        return Response({"plan": "team"})


class OrganizationSettingsView(APIView):
    permission_classes = [HasTenant, HasOrgRole("owner", "admin")]  # an owner or admin of their organization

    def get(self, request: Request) -> Response:
        return Response({"tenant_id": request.auth.tenant_id})


# --8<-- [end:one-class]


# --8<-- [start:all-of]
class ExportView(APIView):
    # Every one of the scopes; HasScope("a", "b") (or HasScope.any("a", "b")) needs only one.
    permission_classes = [HasScope.all("reports:read", "reports:export")]

    def get(self, request: Request) -> Response:
        return Response({"export": "..."})


# --8<-- [end:all-of]


# --8<-- [start:composition]
class ReportView(APIView):
    # Admins, or any token granted reports:read.
    permission_classes = [HasRole("admin") | HasScope("reports:read")]

    def get(self, request: Request) -> Response:
        return Response({"reports": []})


class CommentView(APIView):
    # Separate entries all have to pass, and each refusal stays precise (401, or 403 naming the role).
    # Negation is plain boolean: ~HasRole("suspended") alone would let anonymous callers in.
    permission_classes = [IsAuthenticated, ~HasRole("suspended")]

    def post(self, request: Request) -> Response:
        return Response({"posted": True}, status=201)


# --8<-- [end:composition]


# --8<-- [start:view-attributes]
class InvoiceViewSet(viewsets.ViewSet):
    permission_classes = [HasScope]  # no values: read required_scopes, per action
    required_scopes = {
        "list": ["invoices:read"],  # a list: all of them (as in django-oauth-toolkit)
        "create": ["invoices:read", "invoices:write"],
        "destroy": any_of("invoices:admin", "billing:admin"),  # any one of them
        # no "retrieve" entry: retrieve is refused for everyone (forgetting an action never opens it)
    }

    def list(self, request: Request) -> Response:
        return Response([])

    def create(self, request: Request) -> Response:
        return Response({}, status=201)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response({})

    def destroy(self, request: Request, pk: str) -> Response:
        return Response(status=204)


# --8<-- [end:view-attributes]


# --8<-- [start:hooks]
class ArchiveView(APIView):
    permission_classes = [HasScope]

    def get_required_scopes(self, request: Request) -> list[str]:
        # The view's hook wins over required_scopes; it can depend on anything in the request.
        return ["archive:read"] if request.method == "GET" else ["archive:write"]

    def get(self, request: Request) -> Response:
        return Response({"archive": []})

    def post(self, request: Request) -> Response:
        return Response({}, status=201)


class IsTenantAdmin(HasRole):
    """A permission subclass overriding the hook: the role is named after the caller's tenant."""

    def get_required_roles(self, request: Request, view: Any) -> Requirement:
        return to_requirement(f"{request.auth.tenant_id}:admin")


class TenantAdminView(APIView):
    permission_classes = [HasTenant, IsTenantAdmin]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


# --8<-- [end:hooks]


# --8<-- [start:tenancy]
class ResourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Resource
        fields = ["id", "tenant_id", "created_by", "name"]
        read_only_fields = ["tenant_id", "created_by"]


class ResourceViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    queryset = Resource.objects.all()  # filtered to the caller's tenant by the mixin
    serializer_class = ResourceSerializer
    tenant_field = "tenant_id"  # the default
    created_by_field = "created_by"  # stamped with the token's sub on create
    tenant_header = "X-Organization-Id"  # lets a caller pick one of its organization_ids
    permission_classes = [HasTenant, HasRole("admin") | HasOrgRole]
    required_org_roles = {
        "list": [],  # any member of the organization
        "retrieve": [],
        "create": [],
        "update": any_of("owner", "admin"),
        "partial_update": any_of("owner", "admin"),
        "destroy": any_of("owner", "admin"),
    }


# --8<-- [end:tenancy]


# --8<-- [start:related]
class TaskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ["id", "project", "title", "created_by"]
        read_only_fields = ["created_by"]


class TaskViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    queryset = Task.objects.all()
    serializer_class = TaskSerializer
    tenant_field = "project__tenant_id"  # a Task reaches its tenant through its project
    created_by_field = "created_by"
    permission_classes = [HasTenant]


# --8<-- [end:related]


# --8<-- [start:scope-hierarchy]
# settings.py: DRF_OIDC_JWKS = {..., "SCOPE_HIERARCHY": SCOPE_HIERARCHY}
SCOPE_HIERARCHY = {
    "files:admin": ["files:write"],  # files:admin implies files:write, and so files:read
    "files:write": ["files:read"],
}


class FileView(APIView):
    permission_classes = [HasScope]
    required_scopes = {"get": "files:read", "put": "files:write"}

    def get(self, request: Request) -> Response:
        return Response({"files": []})

    def put(self, request: Request) -> Response:
        return Response({"saved": True})


# --8<-- [end:scope-hierarchy]


# --8<-- [start:step-up]
class PaymentView(APIView):
    # A multi-factor login ("mfa" or "phr") of at most five minutes ago, and the payments scope. Separate
    # entries: each refuses with its own answer (401 step-up challenge, 403 insufficient_scope).
    permission_classes = [HasAuthLevel("mfa", "phr", max_age=300), HasScope("payments:write")]

    def post(self, request: Request) -> Response:
        return Response({"paid": True, "acr": request.auth.acr}, status=201)


# --8<-- [end:step-up]
