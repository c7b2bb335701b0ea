"""SCOPE_HIERARCHY's public helpers: an explicit hierarchy wins over the settings', and a compiled one's truth.

Written against surviving mutants of drf_oidc_jwks/scopes.py (docs/security.md, "Mutation testing").
"""

from __future__ import annotations

from typing import Any

from drf_oidc_jwks.scopes import ScopeHierarchy, compile_hierarchy, current_hierarchy, expand


def test_a_hierarchy_with_an_entry_is_true_and_an_empty_one_false() -> None:
    assert bool(ScopeHierarchy({"admin": ["reports:read"]})) is True
    assert bool(ScopeHierarchy({})) is False


def test_expand_uses_the_hierarchy_it_is_given_rather_than_the_settings(oidc_settings: Any) -> None:
    oidc_settings(SCOPE_HIERARCHY={"admin": ["from:settings"]})
    given = ScopeHierarchy({"admin": ["from:argument"]})
    assert expand({"admin"}, given) == {"admin", "from:argument"}
    assert expand({"admin"}) == {"admin", "from:settings"}
    assert current_hierarchy().expand({"admin"}) == {"admin", "from:settings"}


def test_without_a_hierarchy_in_the_settings_expand_returns_the_scopes_held(oidc_settings: Any) -> None:
    assert current_hierarchy() is compile_hierarchy(None)
    assert not current_hierarchy()
    assert expand({"admin", "reports:read"}) == {"admin", "reports:read"}
