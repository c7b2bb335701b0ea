"""The ``Claims`` value object on ``request.auth`` (immutable, attributes computed on first access).

A claim path says where in the verified payload an attribute is read from:

* a string is first looked up as one top-level claim name, so names holding dots,
  colons or slashes work as they are (``"cognito:groups"``,
  ``"https://example.com/roles"``); only when no such claim exists do its dots
  separate levels (``"realm_access.roles"``), and at each level the longest name
  present wins, so ``"resource_access.my.client.roles"`` and
  ``"https://example.com/profile.plan"`` reach names that hold dots;
* a list or tuple of strings is an explicit walk, one segment per level, with no
  guessing (``["resource_access", "my.client", "roles"]``);
* a list holding at least one list is several paths (each a string or a list of
  segments): set attributes take the union of all of them, single values the first
  present (``[["realm_access", "roles"], ["resource_access", "my-api", "roles"]]``);
* ``None`` turns the attribute off.

See docs/claims.md.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .claim_paths import CLAIM_ATTRIBUTES, PRESETS, AnyOf, ClaimPath, normalise_path, resolve_claim_paths
from .claim_values import (
    IDENTITY,
    RESOLVED,
    as_bool,
    as_set,
    as_str,
    as_tuple,
    attribute_table,
    is_machine_token,
    lookup,
    lookup_all,
)
from .frozen import FrozenDict, FrozenList, freeze

__all__ = [
    "CLAIM_ATTRIBUTES",
    "PRESETS",
    "AnyOf",
    "ClaimPath",
    "Claims",
    "FrozenDict",
    "FrozenList",
    "as_bool",
    "as_set",
    "as_str",
    "as_tuple",
    "freeze",
    "is_machine_token",
    "lookup",
    "lookup_all",
    "normalise_path",
    "resolve_claim_paths",
]

_RESOLVED = frozenset(RESOLVED)
_IDENTITY = frozenset(IDENTITY)


class _Referable:
    # Claims can be weakly referenced (the user sync keys what it derives by the Claims object), while
    # Claims.__slots__ stays the list of its attributes (oidc_decode prints them).
    __slots__ = ("__weakref__",)


class Claims(_Referable, Mapping[str, Any]):
    """The verified token payload, with normalised attributes read through ``CLAIMS``; immutable.

    ``claims["any_claim"]`` and ``claims.get("any_claim")`` read the raw payload (deep read-only).
    """

    #: The normalised attributes, each computed on first access and kept (the object never changes).
    #: (``token_format`` is given at construction rather than read from the payload.)
    ATTRIBUTES = (*RESOLVED, "token_format")
    __slots__ = ("raw", "header", "paths", *ATTRIBUTES)

    raw: Mapping[str, Any]
    header: Mapping[str, Any]
    paths: Mapping[str, ClaimPath]
    sub: str | None
    issuer: str | None
    audience: tuple[str, ...]
    roles: frozenset[str]
    scopes: frozenset[str]
    permissions: frozenset[str]
    tenant_id: str | None
    organization_ids: tuple[str, ...]
    org_role: str | None
    client_id: str | None
    is_machine: bool
    expires_at: datetime.datetime | None
    issued_at: datetime.datetime | None
    email: str | None
    email_verified: bool
    name: str | None
    given_name: str | None
    family_name: str | None
    username: str | None
    sid: str | None
    acr: str | None
    amr: tuple[str, ...]
    auth_time: datetime.datetime | None
    #: The RFC 7638 thumbprint the token is bound to (``cnf.jkt``); None for a bearer token.
    dpop_jkt: str | None
    #: ``"jwt"`` for a verified JWT, ``"opaque"`` for an introspection answer.
    token_format: str

    def __init__(
        self,
        payload: Mapping[str, Any],
        paths: Mapping[str, ClaimPath] | None = None,
        header: Mapping[str, Any] | None = None,
        *,
        token_format: str = "jwt",  # noqa: S107 (a format name, not a secret)
    ) -> None:
        """Wrap a verified payload, deep-frozen (a copy: later changes to ``payload`` do not show through)."""
        setter = object.__setattr__
        setter(self, "token_format", token_format)
        setter(self, "raw", payload if type(payload) is FrozenDict else freeze(dict(payload)))
        setter(self, "header", header if type(header) is FrozenDict else freeze(dict(header or {})))
        setter(self, "paths", paths if paths is not None else PRESETS["generic"])

    if not TYPE_CHECKING:  # for mypy, a misspelt attribute stays an error

        def __getattr__(self, name: str) -> Any:
            # Only reached while the slot is empty: compute once, then the slot answers directly.
            if name not in _RESOLVED:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            table, raw, setter = attribute_table(self.paths), self.raw, object.__setattr__
            if name not in _IDENTITY:
                value = table[name](raw)
                setter(self, name, value)
                return value
            # request.user reads these together: one miss fills them all (each still computed once).
            for member in IDENTITY:
                found = table[member](raw)
                setter(self, member, found)
                if member == name:
                    value = found
            return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Claims are read-only: {name!r} cannot be set (the object is shared by requests)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Claims are read-only: {name!r} cannot be deleted")

    # By identity, so a Claims object can key a WeakKeyDictionary (what the user sync derives from one
    # token); equality stays the Mapping's (same payload), which identity hashing never contradicts
    # for dict lookups that find the very object.
    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        # Identity first: a WeakKeyDictionary lookup compares the very object with itself, and the
        # Mapping default would copy both payloads into dicts to find that out.
        if other is self:
            return True
        if isinstance(other, Claims):
            return self.raw == other.raw
        return self.raw == other if isinstance(other, Mapping) else NotImplemented

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.raw, dict(self.paths), self.header, self.token_format))

    def __copy__(self) -> Claims:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Claims:
        return self

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def claim(self, path: Any) -> Any:
        """Return the value at a claim path (see the module docstring), or None."""
        return lookup(self.raw, normalise_path(path))

    def __repr__(self) -> str:
        return f"<Claims iss={self.issuer!r} sub={self.sub!r}>"


def _rebuild(raw: Any, paths: Any, header: Any, token_format: str) -> Claims:
    return Claims(raw, paths, header, token_format=token_format)
