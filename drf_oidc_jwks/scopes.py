"""``SCOPE_HIERARCHY``: a broader scope satisfies a requirement for a narrower one, transitively.

``{"admin": ["reports:write"], "reports:write": ["reports:read"]}`` lets a token holding ``admin``
pass ``HasScope("reports:read")`` (MCP authorization 2026-07-28, SEP-2350). A cycle would make
two scopes the same scope under two names, which is almost always a typo: :func:`find_cycle` feeds
the system check that rejects it, and :func:`expand` still terminates on one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["ScopeHierarchy", "compile_hierarchy", "current_hierarchy", "expand", "find_cycle", "hierarchy_problems"]


def hierarchy_problems(raw: object) -> list[str]:
    """Say what is wrong with a ``SCOPE_HIERARCHY`` value (empty when fine): its shape, then any cycle."""
    if not isinstance(raw, Mapping):
        return ['SCOPE_HIERARCHY must be a dict {"broader": ["narrower", ...]}.']
    problems = []
    for broader, narrower in raw.items():
        if not isinstance(broader, str) or not broader or " " in broader:
            problems.append(f"SCOPE_HIERARCHY key {broader!r} is not a scope (a non-empty string without spaces).")
        if isinstance(narrower, str) or not isinstance(narrower, Sequence | frozenset | set):
            problems.append(f"SCOPE_HIERARCHY[{broader!r}] must be a list of scopes.")
        elif not all(isinstance(s, str) and s and " " not in s for s in narrower):
            problems.append(f"SCOPE_HIERARCHY[{broader!r}] must hold scopes (non-empty strings without spaces).")
    if not problems:
        cycle = find_cycle(raw)
        if cycle:
            problems.append("SCOPE_HIERARCHY has a cycle: " + " -> ".join(cycle) + ".")
    return problems


def find_cycle(raw: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return one cycle of the hierarchy as a path (``["a", "b", "a"]``), or None."""
    graph = {k: list(v) for k, v in raw.items()}
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        # Iterative depth-first search: a deep hierarchy must not hit the recursion limit.
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(graph.get(start, ()))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if child in on_path:
                return [*path[path.index(child) :], child]
            if child not in done:
                path.append(child)
                on_path.add(child)
                stack.append(iter(graph.get(child, ())))
    return None


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
    """The hierarchy of the current settings (empty before ``SCOPE_HIERARCHY`` exists in them)."""
    from .conf import get_settings

    return compile_hierarchy(getattr(get_settings(), "scope_hierarchy", None))


def expand(held: Iterable[str], hierarchy: ScopeHierarchy | None = None) -> frozenset[str]:
    """Every scope ``held`` grants under ``hierarchy`` (default: the settings' ``SCOPE_HIERARCHY``)."""
    return (hierarchy if hierarchy is not None else current_hierarchy()).expand(held)
