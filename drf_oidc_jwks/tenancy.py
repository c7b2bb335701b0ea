"""``TenantScopedMixin``: querysets filtered to the caller's tenant; tenant and creator stamped from the token.

The rules, all decided from ``request.auth`` (a verified :class:`~drf_oidc_jwks.claims.Claims`):

* the *active tenant* is the token's ``tenant_id``; when the view sets ``tenant_header``
  (e.g. ``"X-Organization-Id"``) and the request carries it, the header selects one of the
  token's ``organization_ids`` instead, never one outside them (403 ``tenant_not_allowed``);
* a caller with no active tenant gets 403 ``tenant_required``; one with no verified token 401;
* ``get_queryset`` is filtered by ``tenant_field`` (``"tenant_id"``, or a related lookup such as
  ``"project__tenant_id"``), so another tenant's object is a plain 404 (no existence leak);
* writes stamp the tenant (and ``created_by_field`` from ``sub``) from the token; a request body
  naming another tenant is refused (403 ``tenant_mismatch``), so nothing moves across tenants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rest_framework import exceptions

from .claims import Claims
from .exceptions import TenantMismatch, TenantNotAllowed, TenantRequired

if TYPE_CHECKING:
    # Type-only: rest_framework.generics and .serializers read DRF settings at import time.
    from django.db.models import QuerySet
    from rest_framework.generics import GenericAPIView
    from rest_framework.request import Request
    from rest_framework.serializers import BaseSerializer

    _Base = GenericAPIView[Any]
else:
    _Base = object

__all__ = [
    "TenantScopedMixin",
    "TenantRequired",
    "TenantNotAllowed",
    "TenantMismatch",
    "resolve_tenant",
    "selected_organization",
]


def selected_organization(request: Request, header: str | None) -> str | None:
    """Return the organisation the request selects through ``header`` (None when off, absent or blank)."""
    if not header:
        return None
    value = request.headers.get(header)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def resolve_tenant(request: Request, header: str | None = None) -> str:
    """Return the caller's active tenant; raise 401 without a verified token, 403 without a tenant of theirs."""
    claims = request.auth
    if not isinstance(claims, Claims):
        raise exceptions.NotAuthenticated()
    selected = selected_organization(request, header)
    if selected is None:
        if claims.tenant_id is None:
            raise TenantRequired()
        return claims.tenant_id
    # The header only chooses among organisations the IdP vouched for; anything else would
    # let a caller read another tenant's data by typing its id.
    if selected == claims.tenant_id or selected in claims.organization_ids:
        return selected
    raise TenantNotAllowed(f"The organization selected by {header} is not one of the caller's organizations.")


_MISSING: Any = object()


def _objects(data: Any) -> list[Mapping[str, Any]]:
    """The objects a write carries: its one mapping, or every mapping of a bulk (``many=True``) list."""
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, (list, tuple)):
        # A bulk write: each item is checked, or one item could carry another tenant's value.
        return [item for item in data if isinstance(item, Mapping)]
    return []


class TenantScopedMixin(_Base):
    """Scope a generic view or viewset to the caller's tenant (see the module docstring for the rules).

    Put it before the DRF base: ``class ResourceViewSet(TenantScopedMixin, viewsets.ModelViewSet)``.
    """

    #: Lookup from the model to the tenant id: a field (``"tenant_id"``) or a related path (``"project__tenant_id"``).
    tenant_field: str = "tenant_id"
    #: Model field stamped with the token's ``sub`` on create and kept unchanged on update; None turns it off.
    created_by_field: str | None = None
    #: Request header selecting one of the token's ``organization_ids`` as the active tenant; None (default) = off.
    tenant_header: str | None = None

    _active_tenant: str | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Resolve once, after authentication and permissions, so every action (list, create,
        # a custom @action) answers 401/403 the same way before any handler runs.
        self.get_tenant_id()

    def get_tenant_id(self) -> str:
        """Return the active tenant of this request (401/403 when there is none)."""
        if self._active_tenant is None:
            self._active_tenant = resolve_tenant(self.request, self.tenant_header)
        return self._active_tenant

    def get_queryset(self) -> QuerySet[Any]:
        """Return the view's queryset filtered to the active tenant."""
        queryset: QuerySet[Any] = super().get_queryset()
        scoped: QuerySet[Any] = queryset.filter(**{self.tenant_field: self.get_tenant_id()})
        return scoped

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        serializer.save(**self.get_write_values(serializer, creating=True))

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        serializer.save(**self.get_write_values(serializer, creating=False))

    def get_write_values(self, serializer: BaseSerializer[Any], *, creating: bool) -> dict[str, Any]:
        """Check the tenant of a validated write and return the values stamped over the serializer's."""
        tenant = self.get_tenant_id()
        head, _, rest = self.tenant_field.partition("__")
        values: dict[str, Any] = {}
        if rest:
            self.check_related_tenant(serializer, head, rest, tenant)
        else:
            self.check_body_tenant(serializer, head, tenant)
            values[head] = tenant
        if self.created_by_field:
            claims = self.request.auth
            # The creator is who the token says on create, and never changes afterwards
            # (resolve_tenant() in initial() already refused a request without Claims).
            values[self.created_by_field] = (
                (claims.sub if isinstance(claims, Claims) else None)
                if creating
                else getattr(serializer.instance, self.created_by_field)
            )
        return values

    def check_body_tenant(self, serializer: BaseSerializer[Any], field: str, tenant: str) -> None:
        """Refuse a write whose body (any item of a bulk write) names another tenant (403 ``tenant_mismatch``)."""
        validated = getattr(serializer, "validated_data", None)
        for item in (*_objects(self.request.data), *_objects(validated)):
            value = item.get(field, _MISSING)
            if value is not _MISSING and str(value) != tenant:
                raise TenantMismatch()

    def check_related_tenant(self, serializer: BaseSerializer[Any], head: str, rest: str, tenant: str) -> None:
        """Refuse a write linking an object (any of a bulk write) to another tenant's (400, as for a missing pk)."""
        for item in _objects(getattr(serializer, "validated_data", None)):
            related = item.get(head, _MISSING)
            if related is _MISSING:
                continue  # not part of this write: the object keeps its (in-tenant) relation
            if related is None:
                raise exceptions.ValidationError({head: ["This field may not be null."]}, code="null")
            value: Any = related
            for part in rest.split("__"):
                value = getattr(value, part, None)
                if value is None:
                    break
            if value is None or str(value) != tenant:
                # The same answer as for a pk that does not exist: another tenant's ids stay unconfirmed.
                raise exceptions.ValidationError(
                    {head: [f'Invalid pk "{related.pk}" - object does not exist.']}, code="does_not_exist"
                )
