"""URLs of the authorization demo, included under ``api/``."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import authz_views, step_up_views

router = SimpleRouter(trailing_slash=False)
router.register("tenant/resources", authz_views.ResourceViewSet, basename="resource")
router.register("tenant/projects", authz_views.ProjectViewSet, basename="project")
router.register("tenant/tasks", authz_views.TaskViewSet, basename="task")
router.register("reports", authz_views.ReportViewSet, basename="report")

urlpatterns = [
    path("admin/users", authz_views.AdminUsersView.as_view(), name="admin-users"),
    path("tenant/data", authz_views.TenantDataView.as_view(), name="tenant-data"),
    path("billing", authz_views.BillingView.as_view(), name="billing"),
    path("analytics", authz_views.AnalyticsView.as_view(), name="analytics"),
    # Step-up (RFC 9470)
    path("payments", step_up_views.PaymentView.as_view(), name="payments"),
    path("account/security", step_up_views.AccountSecurityView.as_view(), name="account-security"),
    *router.urls,
]
