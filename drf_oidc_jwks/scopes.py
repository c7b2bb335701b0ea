"""``SCOPE_HIERARCHY``: a broader scope satisfies a requirement for a narrower one, transitively.

``{"admin": ["reports:write"], "reports:write": ["reports:read"]}`` lets a token holding ``admin``
pass ``HasScope("reports:read")`` (MCP authorization 2026-07-28, SEP-2350). A cycle would make
two scopes the same scope under two names, which is almost always a typo: :func:`find_cycle` feeds
the system check that rejects it, and :func:`expand` still terminates on one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from .settings_keys import find_cycle, hierarchy_problems

__all__ = ["ScopeHierarchy", "compile_hierarchy", "current_hierarchy", "expand", "find_cycle", "hierarchy_problems"]


class ScopeHierarchy:
    """A compiled hierarchy: each scope mapped to every scope it implies (itself included)."""

    __slots__ = ("closure",)

    def __init__(self, raw: Mapping[str, Iterable[str]]) -> None:
        graph = {k: tuple(v) for k, v in raw.items()}
        closure: dict[str, frozenset[str]] = {}
        for scope in graph:
            seen = {scope}
            todo = list(graph[scope])
            while todo:
                item = todo.pop()
                if item not in seen:
                    seen.add(item)
                    todo.extend(graph.get(item, ()))
            closure[scope] = frozenset(seen)
        self.closure: Mapping[str, frozenset[str]] = closure

    def expand(self, held: Iterable[str]) -> frozenset[str]:
        """Every scope ``held`` grants: the scopes themselves and all they imply."""
        held = frozenset(held)
        if not self.closure or held.isdisjoint(self.closure):
            return held
        out = set(held)
        for scope in held:
            implied = self.closure.get(scope)
            if implied is not None:
                out |= implied
        return frozenset(out)

    def implied_by(self, scope: str) -> frozenset[str]:
        """Every other scope that grants ``scope`` (for documentation: "also satisfied by")."""
        return frozenset(broader for broader, implied in self.closure.items() if scope in implied and broader != scope)

    def satisfies(self, held: Iterable[str], required: Iterable[Iterable[str]]) -> bool:
        """Say whether ``held`` meets a requirement in disjunctive normal form (any group, all of its scopes)."""
        granted = self.expand(held)
        return any(granted.issuperset(group) for group in required)

    def __bool__(self) -> bool:
        return bool(self.closure)


_EMPTY = ScopeHierarchy({})
_lock = threading.Lock()
_compiled: tuple[Any, ScopeHierarchy] = (None, _EMPTY)


def compile_hierarchy(raw: Mapping[str, Iterable[str]] | None) -> ScopeHierarchy:
    """Compile ``raw``, memoised by identity: the settings object keeps one mapping until settings change."""
    global _compiled
    if not raw:
        return _EMPTY
    source, hierarchy = _compiled
    if source is raw:
        return hierarchy
    hierarchy = ScopeHierarchy(raw)
    with _lock:
        _compiled = (raw, hierarchy)
    return hierarchy


def current_hierarchy() -> ScopeHierarchy:
    """The hierarchy of the current settings' ``SCOPE_HIERARCHY`` (empty when it is not set)."""
    from .conf import get_settings

    return compile_hierarchy(get_settings().scope_hierarchy)


def expand(held: Iterable[str], hierarchy: ScopeHierarchy | None = None) -> frozenset[str]:
    """Every scope ``held`` grants under ``hierarchy`` (default: the settings' ``SCOPE_HIERARCHY``)."""
    return (hierarchy if hierarchy is not None else current_hierarchy()).expand(held)
