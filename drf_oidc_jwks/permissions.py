"""Permission classes deciding from ``request.auth`` alone (no database): roles, org roles, scopes, permissions,
tenant, and the strength of the login (``HasAuthLevel``, RFC 9470 step-up).

Three ways to state a requirement::

    permission_classes = [HasRole("admin", "editor")]        # any one of them
    permission_classes = [HasScope.all("reports:read", "reports:export")]   # every one of them
    permission_classes = [HasScope]                           # from the view, per action:
    required_scopes = {"list": ["reports:read"], "create": ["reports:write"]}

A caller without a verified token is answered 401, an authenticated caller lacking the
requirement 403 naming what is required (and, for scopes, an RFC 6750 ``insufficient_scope``
challenge). The classes compose with DRF's ``&``, ``|`` and ``~`` as plain booleans; a refused
composition is DRF's generic 403 (see docs/authorization.md for why).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.permissions import BasePermission, SingleOperandHolder

from .claims import Claims
from .exceptions import REGISTRY, InsufficientUserAuthentication
from .scopes import current_hierarchy
from .tenancy import TenantNotAllowed, TenantRequired, resolve_tenant, selected_organization

if TYPE_CHECKING:
    # rest_framework.views reads DRF settings at import time; this module must import before Django is set up.
    from rest_framework.request import Request
    from rest_framework.views import APIView

__all__ = [
    "HasRole",
    "HasOrgRole",
    "HasScope",
    "HasPermission",
    "HasTenant",
    "HasAuthLevel",
    "Requirement",
    "any_of",
    "all_of",
    "to_requirement",
]

#: A requirement in disjunctive normal form: it holds when every value of any one group is held.
#: ``(("a",), ("b",))`` is "a or b"; ``(("a", "b"),)`` is "a and b"; ``((),)`` always holds; ``()`` never does.
Requirement = tuple[tuple[str, ...], ...]

ViewValue = str | Iterable[str] | Iterable[Iterable[str]]

_P = TypeVar("_P", bound="_TokenPermission")
_C = TypeVar("_C", bound="_ClaimSetPermission")


def any_of(*values: str) -> list[list[str]]:
    """A view-attribute value met by any one of ``values``: ``{"destroy": any_of("owner", "admin")}``."""
    if not values:
        raise ValueError("any_of() needs at least one value: an empty alternative would never pass")
    return [[v] for v in values]


def all_of(*values: str) -> list[str]:
    """A view-attribute value met by holding every one of ``values`` (the same as a plain list)."""
    return list(values)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _is_strings(value: object) -> bool:
    return isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) and v for v in value)


def to_requirement(value: ViewValue) -> Requirement:
    """Normalise a view-attribute value: a string; a list of strings (all of them); a list of lists (any group).

    A list means *all of* as in django-oauth-toolkit's ``required_scopes``; should a reader take it for
    *any of*, the mistake fails closed (refuses too much), never open.
    """
    if isinstance(value, str) and value:
        return ((value,),)
    if _is_strings(value):
        return (_unique(sorted(value) if isinstance(value, (set, frozenset)) else value),)  # type: ignore[arg-type]
    # Each group must name something: an empty group would be an alternative that always passes.
    if isinstance(value, (list, tuple)) and value and all(_is_strings(group) and group for group in value):
        return tuple(_unique(sorted(g) if isinstance(g, (set, frozenset)) else g) for g in value)
    raise ImproperlyConfigured(
        f"A required value must be a string, a list of strings (all of them) or a list of lists "
        f"(any one group, see any_of()); got {value!r}."
    )


def _join(values: Sequence[str]) -> str:
    return ", ".join(values)


class _TokenPermission(SingleOperandHolder, BasePermission):
    """Shared machinery: a fresh copy per request, claims-only decisions, and a precise refusal.

    ``permission_classes`` holds permission classes or operator holders (callables DRF calls once
    per request for the permission object, composable with ``&``/``|``/``~``). A configured
    ``HasRole("admin")`` is such a holder, so it subclasses DRF's, which also keeps
    ``permission_classes = [HasRole("admin")]`` valid for djangorestframework-stubs under mypy.

    DRF reads ``message`` from a permission only when it is the top-level entry of
    ``permission_classes`` that refused, right before raising its own PermissionDenied. Raising the
    precise exception there gives the 401, the stable code and the ``insufficient_scope`` challenge
    with no view mixin, while operands of ``&``/``|``/``~`` stay plain booleans (an exception from
    ``has_permission`` would break ``HasScope("a") | HasRole("admin")``).
    """

    #: Shown when nothing was refused yet (introspection); a refusal raises its own exception.
    default_message: ClassVar[str] = "You do not have permission to perform this action."
    code: ClassVar[str] = "permission_denied"

    _denial: exceptions.APIException | None = None

    def __init__(self) -> None:
        """Configure the requirement (subclasses); DRF's holder attributes are not used."""

    def __call__(self: _P) -> _P:
        """Return a fresh copy: DRF instantiates each entry of ``permission_classes`` once per request."""
        clone = copy.copy(self)
        clone._denial = None
        return clone

    def _message(self) -> str:
        # Before any refusal (e.g. read while composing) this is an ordinary string; only a refused check raises,
        # and its caller is about to refuse the request anyway. (Wrapped, not decorated: mutmut skips decorated.)
        denial = self._denial
        if denial is not None:
            raise denial
        return self.default_message

    message = property(_message)

    def has_permission(self, request: Request, view: APIView) -> bool:
        claims = request.auth
        if not isinstance(claims, Claims):
            # No verified token (anonymous, or another authentication class): 401 with the
            # Bearer challenge, so the client knows a token is what is missing.
            self._denial = exceptions.NotAuthenticated()
            return False
        self._denial = self.check(request, view, claims)
        return self._denial is None

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        # The same answer as for the request: the claims do not depend on the object, and
        # answering True here would make ``~HasRole(...)`` refuse every object.
        return self.has_permission(request, view)

    def check(self, request: Request, view: APIView, claims: Claims) -> exceptions.APIException | None:
        """Return None to allow, or the exception refusing the request."""
        raise NotImplementedError


class _ClaimSetPermission(_TokenPermission):
    """Requirement on a set of values of the token: given to the constructor, or read from the view."""

    #: ``Claims`` attribute holding the caller's values.
    claim: ClassVar[str] = ""
    #: View attribute read when the class is used without values (``required_<thing>``).
    view_attribute: ClassVar[str] = ""
    noun: ClassVar[str] = ""
    plural: ClassVar[str] = ""

    required: Requirement | None

    def __init__(self, *values: str, match: Literal["any", "all"] = "any") -> None:
        """Require any one of ``values`` (``match="all"``: every one); no values: read the view's attribute."""
        for value in values:
            if not isinstance(value, str) or not value:
                raise TypeError(f"{type(self).__name__}() takes non-empty strings, got {value!r}")
        if match not in ("any", "all"):
            raise ValueError(f'match must be "any" or "all", got {match!r}')
        if not values:
            self.required = None
        elif match == "any":
            self.required = tuple((v,) for v in _unique(values))
        else:
            self.required = (_unique(values),)

    @classmethod
    def any(cls: type[_C], *values: str) -> _C:
        """Require any one of ``values`` (the same as the constructor)."""
        if not values:
            raise TypeError(f"{cls.__name__}.any() needs at least one value")
        return cls(*values, match="any")

    @classmethod
    def all(cls: type[_C], *values: str) -> _C:
        """Require every one of ``values``."""
        if not values:
            raise TypeError(f"{cls.__name__}.all() needs at least one value")
        return cls(*values, match="all")

    def __repr__(self) -> str:
        if self.required is None:
            return f"{type(self).__name__}(<view.{self.view_attribute}>)"
        if len(self.required) == 1 and len(self.required[0]) > 1:
            return f"{type(self).__name__}.all({', '.join(map(repr, self.required[0]))})"
        return f"{type(self).__name__}({', '.join(repr(g[0]) for g in self.required)})"

    def held(self, request: Request, view: APIView, claims: Claims) -> frozenset[str]:
        """Return the caller's values."""
        value: frozenset[str] = getattr(claims, self.claim)
        return value

    def get_required(self, request: Request, view: APIView) -> Requirement:
        """Return the requirement for this request: the constructor's values, else the view's."""
        if self.required is not None:
            return self.required
        hook = getattr(self, f"get_{self.view_attribute}")
        requirement: Requirement = hook(request, view)
        return requirement

    def requirement_from_view(self, request: Request, view: APIView) -> Requirement:
        """Read ``view.get_required_<thing>(request)`` or ``view.required_<thing>``, per action when a dict."""
        hook = getattr(view, f"get_{self.view_attribute}", None)
        if callable(hook):
            value = hook(request)
        else:
            value = getattr(view, self.view_attribute, None)
            if value is None:
                raise ImproperlyConfigured(
                    f"{type(self).__name__} without values reads {type(view).__name__}.{self.view_attribute} "
                    f"(or get_{self.view_attribute}(request)), which is not set."
                )
        if isinstance(value, Mapping):
            action = getattr(view, "action", None)
            method = (request.method or "").lower()
            keys = [action, method, method.upper()]
            if method == "head":
                keys += ["get", "GET"]  # Django answers HEAD with the GET handler; so does the requirement
            for key in (*keys, "*"):
                if key is not None and key in value:
                    value = value[key]
                    break
            else:
                return ()  # an action with no entry is refused: forgetting one must not open it
        return to_requirement(value)

    def check(self, request: Request, view: APIView, claims: Claims) -> exceptions.APIException | None:
        required = self.get_required(request, view)
        held = self.held(request, view, claims)
        if any(held.issuperset(group) for group in required):
            return None
        return self.refuse(required)

    def describe(self, required: Requirement) -> str:
        """Say what is required (never what the token holds)."""
        if not required:
            return f"No {self.noun} grants this action."
        if len(required) == 1:
            (group,) = required
            if not group:
                return "Permission denied."
            if len(group) == 1:
                return f"Requires {self.noun}: {group[0]}."
            return f"Requires all of the {self.plural}: {_join(group)}."
        if all(len(g) == 1 for g in required):
            return f"Requires one of the {self.plural}: {_join([g[0] for g in required])}."
        alternatives = " or ".join("(" + " and ".join(g) + ")" if len(g) > 1 else g[0] for g in required)
        return f"Requires the {self.plural} {alternatives}."

    def refuse(self, required: Requirement) -> exceptions.APIException:
        """Build the 403 for an unmet requirement."""
        spec = REGISTRY.get(self.code)
        cls = spec.cls if spec is not None and issubclass(spec.cls, exceptions.PermissionDenied) else None
        if cls is None:
            return exceptions.PermissionDenied(self.describe(required), self.code)
        return cls(self.describe(required))


class HasRole(_ClaimSetPermission):
    """Pass when the caller holds any of the roles (``Claims.roles``); ``HasRole.all(...)`` for every one."""

    claim = "roles"
    view_attribute = "required_roles"
    noun, plural = "role", "roles"
    code = "role_required"

    def get_required_roles(self, request: Request, view: APIView) -> Requirement:
        """Hook: the roles this request needs when the class is used without values (default: from the view)."""
        return self.requirement_from_view(request, view)


class HasOrgRole(_ClaimSetPermission):
    """Pass when the caller's role in the active organisation (``Claims.org_role``) is one of these."""

    claim = "org_role"
    view_attribute = "required_org_roles"
    noun, plural = "organization role", "organization roles"
    code = "org_role_required"

    def held(self, request: Request, view: APIView, claims: Claims) -> frozenset[str]:
        if claims.org_role is None:
            return frozenset()
        selected = selected_organization(request, getattr(view, "tenant_header", None))
        # ``org_role`` is the caller's role in the token's own organisation (``tenant_id``); in
        # another organisation chosen by header the token says nothing about their role there.
        if selected is not None and selected != claims.tenant_id:
            return frozenset()
        return frozenset((claims.org_role,))

    def get_required_org_roles(self, request: Request, view: APIView) -> Requirement:
        """Hook: the organisation roles this request needs when used without values (default: from the view)."""
        return self.requirement_from_view(request, view)


class HasScope(_ClaimSetPermission):
    """Pass when the token holds any of the scopes (``Claims.scopes``); 403 with an ``insufficient_scope`` challenge."""

    claim = "scopes"
    view_attribute = "required_scopes"
    noun, plural = "scope", "scopes"
    code = "insufficient_scope"

    def held(self, request: Request, view: APIView, claims: Claims) -> frozenset[str]:
        """The token's scopes and every scope they imply under ``SCOPE_HIERARCHY``."""
        return current_hierarchy().expand(claims.scopes)

    def get_required_scopes(self, request: Request, view: APIView) -> Requirement:
        """Hook: the scopes this request needs when used without values (default: from the view)."""
        return self.requirement_from_view(request, view)

    def refuse(self, required: Requirement) -> exceptions.APIException:
        if not required:
            # An action with no entry: no scope would help, so no challenge.
            return exceptions.PermissionDenied(self.describe(required), self.code)
        from .refusals import insufficient_scope

        # RFC 6750 ``scope``: every scope named by the requirement; asking for all of them suffices.
        scopes = _unique(s for group in required for s in group)
        return insufficient_scope(scopes, self.describe(required))


class HasPermission(_ClaimSetPermission):
    """Pass when the token holds any of the permissions (Auth0 RBAC ``permissions``, ``Claims.permissions``)."""

    claim = "permissions"
    view_attribute = "required_permissions"
    noun, plural = "permission", "permissions"
    code = "permission_required"

    def get_required_permissions(self, request: Request, view: APIView) -> Requirement:
        """Hook: the permissions this request needs when used without values (default: from the view)."""
        return self.requirement_from_view(request, view)


class HasTenant(_TokenPermission):
    """Pass when the caller has an active tenant: the token's ``tenant_id``, or the organisation the view's
    ``tenant_header`` selects among ``organization_ids``."""

    code = "tenant_required"

    def __repr__(self) -> str:
        return "HasTenant()"

    def check(self, request: Request, view: APIView, claims: Claims) -> exceptions.APIException | None:
        try:
            resolve_tenant(request, getattr(view, "tenant_header", None))
        except (TenantRequired, TenantNotAllowed) as exc:
            return exc
        return None


class HasAuthLevel(_TokenPermission):
    """Step-up (RFC 9470): pass when the token's ``acr`` is one of ``acr_values`` and, with ``max_age``,
    its ``auth_time`` is at most ``max_age`` seconds old; otherwise 401 ``insufficient_user_authentication``."""

    code = "insufficient_user_authentication"

    def __init__(self, *acr_values: str, max_age: int | None = None, clock: Callable[[], float] = time.time) -> None:
        """Require one of ``acr_values`` (any, when none given) and a login at most ``max_age`` seconds old."""
        for value in acr_values:
            if not isinstance(value, str) or not value or " " in value:
                raise TypeError(f"HasAuthLevel() takes acr values (non-empty strings without spaces), got {value!r}")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0):
            raise TypeError(f"HasAuthLevel(max_age=...) takes whole seconds >= 0, got {max_age!r}")
        if not acr_values and max_age is None:
            raise TypeError("HasAuthLevel() needs acr values, max_age, or both")
        self.acr_values, self.max_age, self.clock = _unique(acr_values), max_age, clock

    def __repr__(self) -> str:
        args = [repr(v) for v in self.acr_values] + ([f"max_age={self.max_age}"] if self.max_age is not None else [])
        return f"HasAuthLevel({', '.join(args)})"

    def get_required_level(self, request: Request, view: APIView) -> HasAuthLevel:
        """Return the level this request must meet: ``self``, or another ``HasAuthLevel`` (the schema reads it too)."""
        return self

    def check(self, request: Request, view: APIView, claims: Claims) -> exceptions.APIException | None:
        level, acr, auth_time = self.get_required_level(request, view), claims.get("acr"), claims.get("auth_time")
        if level.acr_values and not (isinstance(acr, str) and acr in level.acr_values):
            return level.refuse("A different authentication level is required.")
        if level.max_age is not None:
            if isinstance(auth_time, bool) or not isinstance(auth_time, (int, float)):
                return level.refuse("The time of authentication is required.")
            if self.clock() - auth_time > level.max_age:
                return level.refuse("A more recent authentication is required.")
        return None

    def refuse(self, description: str) -> exceptions.APIException:
        """Build the 401 whose challenge names what a new login must achieve."""
        from .challenges import metadata_url, step_up_challenge
        from .conf import get_settings

        s = get_settings()
        metadata = metadata_url(s.resource) if s.resource else None
        challenge = step_up_challenge(s.realm, self.acr_values, self.max_age, description, metadata)
        return InsufficientUserAuthentication(challenge, description)
