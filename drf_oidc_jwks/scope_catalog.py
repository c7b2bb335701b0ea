"""RFC 9728 ``scopes_supported``: every scope the API can ask for, found in the URLconf.

The walk reads each view's ``permission_classes`` (composed ones too: ``HasScope("a") | HasRole("b")``)
and its ``required_scopes`` when a ``HasScope`` reads the view. What only code decides, a
``get_required_scopes`` hook or ``get_permissions`` choosing classes per action, cannot be read without
a request: list those scopes in ``SCOPES_SUPPORTED``. ``offline_access`` is never advertised: it asks the
authorization server for a refresh token and is no scope of this resource.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["NEVER_ADVERTISED", "scopes_in_urlconf", "scopes_supported", "view_classes"]

NEVER_ADVERTISED = frozenset({"offline_access"})


def view_classes(resolver: Any = None) -> Iterator[tuple[type, Mapping[str, Any]]]:
    """Every DRF view class routed by the URLconf, with the ``as_view()`` keyword arguments it was given."""
    from django.urls import URLResolver, get_resolver

    stack = [resolver if resolver is not None else get_resolver()]
    while stack:
        for pattern in stack.pop().url_patterns:
            if isinstance(pattern, URLResolver):
                stack.append(pattern)
                continue
            callback = getattr(pattern, "callback", None)
            cls = getattr(callback, "cls", None)  # DRF's as_view() and @api_view both set it
            if isinstance(cls, type):
                yield cls, getattr(callback, "initkwargs", None) or {}


def _from_view_attribute(value: Any) -> Iterator[str]:
    from django.core.exceptions import ImproperlyConfigured

    from .permissions import to_requirement

    values = list(value.values()) if isinstance(value, Mapping) else [value]
    for item in values:
        try:
            requirement = to_requirement(item)
        except ImproperlyConfigured:
            continue  # HasScope refuses such a view at run time, with the message that says why
        yield from (s for group in requirement for s in group)


def _from_permission(entry: Any, view: type, initkwargs: Mapping[str, Any]) -> Iterator[str]:
    from rest_framework.permissions import NOT

    from .permissions import HasScope

    if isinstance(entry, HasScope) and entry.required is not None:
        yield from (s for group in entry.required for s in group)
    elif isinstance(entry, HasScope) or (isinstance(entry, type) and issubclass(entry, HasScope)):
        value = initkwargs.get("required_scopes", getattr(view, "required_scopes", None))
        if value is not None:
            yield from _from_view_attribute(value)
    elif getattr(entry, "operator_class", None) is NOT:
        return  # ``~HasScope("x")`` wants x absent: not a scope to request
    else:
        for side in ("op1_class", "op2_class"):
            operand = getattr(entry, side, None)
            if operand is not None:
                yield from _from_permission(operand, view, initkwargs)


def scopes_in_urlconf(resolver: Any = None) -> frozenset[str]:
    """Every scope a ``HasScope`` reachable in the URLconf can require."""
    found: set[str] = set()
    for view, initkwargs in view_classes(resolver):
        for entry in initkwargs.get("permission_classes", getattr(view, "permission_classes", ())) or ():
            found.update(_from_permission(entry, view, initkwargs))
    return frozenset(found)


_lock = threading.Lock()
_memo: tuple[Any, frozenset[str]] | None = None


def scopes_supported(required_scopes: Iterable[str] = (), extra: Iterable[str] = (), resolver: Any = None) -> list[str]:
    """``scopes_supported`` for RFC 9728: ``REQUIRED_SCOPES``, the URLconf's scopes and ``SCOPES_SUPPORTED``, sorted."""
    global _memo
    from django.urls import get_resolver

    current = resolver if resolver is not None else get_resolver()
    memo = _memo
    if memo is None or memo[0] is not current:
        # get_resolver() returns one object per ROOT_URLCONF: a changed URLconf is a new walk.
        memo = (current, scopes_in_urlconf(current))
        with _lock:
            _memo = memo
    return sorted((set(required_scopes) | memo[1] | set(extra)) - NEVER_ADVERTISED)


def reset() -> None:
    """Forget the walked URLconf (tests, or a URLconf changed in place)."""
    global _memo
    with _lock:
        _memo = None
