"""The ``Claims`` value object on ``request.auth``; ``CLAIMS`` paths and ``PROVIDER`` presets.

A claim path says where in the verified payload an attribute is read from:

* a string is first looked up as one top-level claim name, so names holding dots,
  colons or slashes work as they are (``"cognito:groups"``,
  ``"https://example.com/roles"``); only when no such claim exists is it split on
  dots to walk nested objects (``"realm_access.roles"``);
* a list or tuple of strings is an explicit walk, one segment per level, for
  segments that themselves hold dots (``["resource_access", "my.client", "roles"]``);
* ``None`` turns the attribute off.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import Any, Union

ClaimPath = Union[str, tuple[str, ...], None]

#: Attributes of ``Claims`` that ``CLAIMS`` can map.
CLAIM_ATTRIBUTES = (
    "subject",
    "roles",
    "scopes",
    "permissions",
    "tenant_id",
    "organization_ids",
    "org_role",
    "email",
    "email_verified",
    "name",
    "given_name",
    "family_name",
    "username",
)

_GENERIC: dict[str, ClaimPath] = {
    "subject": "sub",
    "roles": "roles",
    "scopes": "scope",
    "permissions": "permissions",
    "tenant_id": "tenant_id",
    "organization_ids": "organization_ids",
    "org_role": "org_role",
    "email": "email",
    "email_verified": "email_verified",
    "name": "name",
    "given_name": "given_name",
    "family_name": "family_name",
    "username": "preferred_username",
}

#: Where each provider puts what ``Claims`` exposes; ``CLAIMS`` overrides key by key.
PRESETS: dict[str, dict[str, ClaimPath]] = {
    "generic": _GENERIC,
    "better-auth": {**_GENERIC, "roles": "role", "username": "name"},
    # Auth0: RBAC permissions are a list; roles only exist through a namespaced
    # claim added by an Action, so users map that one themselves.
    "auth0": {**_GENERIC, "roles": None, "tenant_id": "org_id", "organization_ids": None, "org_role": None},
    "okta": {**_GENERIC, "roles": "groups", "scopes": "scp", "tenant_id": None, "username": "sub"},
    "keycloak": {**_GENERIC, "roles": "realm_access.roles", "tenant_id": None},
    # Entra: sub is pairwise (differs per application); oid is the stable user id.
    "entra": {**_GENERIC, "subject": "oid", "scopes": "scp", "tenant_id": "tid", "username": "preferred_username"},
    "cognito": {**_GENERIC, "roles": "cognito:groups", "tenant_id": None, "username": "username"},
}


def _normalise_path(path: Any) -> ClaimPath:
    if path is None or isinstance(path, str):
        return path
    return tuple(str(p) for p in path)


def resolve_claim_paths(provider: str, overrides: Mapping[str, Any]) -> dict[str, ClaimPath]:
    """Return the preset of ``provider`` with ``overrides`` applied key by key."""
    paths = dict(PRESETS.get(provider, _GENERIC))
    for key, value in overrides.items():
        paths[key] = _normalise_path(value)
    return paths


_MISSING = object()


def lookup(payload: Mapping[str, Any], path: ClaimPath) -> Any:
    """Return the value at ``path`` in ``payload``, or None when absent."""
    if path is None:
        return None
    if isinstance(path, str):
        if path in payload:
            return payload[path]
        if "." not in path:
            return None
        segments: tuple[str, ...] = tuple(path.split("."))
    else:
        segments = path
    node: Any = payload
    for segment in segments:
        if not isinstance(node, Mapping):
            return None
        node = node.get(segment, _MISSING)
        if node is _MISSING:
            return None
    return node


def _split(value: str, commas: bool) -> list[str]:
    if commas:
        value = value.replace(",", " ")
    return value.split()


def as_set(value: Any, *, commas: bool = False) -> frozenset[str]:
    """Normalise a string, space-separated string, list or object into a frozenset of strings."""
    if isinstance(value, str):
        return frozenset(_split(value, commas))
    if isinstance(value, (list, tuple)):
        return frozenset(v for v in value if isinstance(v, str) and v)
    if isinstance(value, Mapping):
        # {"admin": true, "editor": true} style: the keys whose values are truthy
        return frozenset(k for k, v in value.items() if isinstance(k, str) and k and v)
    return frozenset()


def as_tuple(value: Any) -> tuple[str, ...]:
    """Normalise into an ordered tuple of distinct strings."""
    if isinstance(value, str):
        items: list[str] = _split(value, True)
    elif isinstance(value, (list, tuple)):
        items = [v if isinstance(v, str) else str(v) for v in value if isinstance(v, (str, int)) and not isinstance(v, bool)]
    else:
        return ()
    return tuple(dict.fromkeys(i for i in items if i))


def as_str(value: Any) -> str | None:
    """Normalise a scalar into a non-empty string, or None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def as_bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class Claims(Mapping[str, Any]):
    """The verified token payload, with normalised attributes read through ``CLAIMS``.

    ``claims["any_claim"]`` and ``claims.get("any_claim")`` read the raw payload.
    """

    __slots__ = (
        "raw",
        "header",
        "paths",
        "sub",
        "issuer",
        "audience",
        "roles",
        "scopes",
        "permissions",
        "tenant_id",
        "organization_ids",
        "org_role",
        "expires_at",
        "email",
        "email_verified",
        "name",
        "given_name",
        "family_name",
        "username",
    )

    def __init__(
        self,
        payload: Mapping[str, Any],
        paths: Mapping[str, ClaimPath] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> None:
        paths = paths if paths is not None else _GENERIC
        self.raw: Mapping[str, Any] = payload
        self.header: Mapping[str, Any] = header or {}
        self.paths = paths
        self.sub: str | None = as_str(lookup(payload, paths.get("subject", "sub"))) or as_str(payload.get("sub"))
        self.issuer: str | None = as_str(payload.get("iss"))
        aud = payload.get("aud")
        self.audience: tuple[str, ...] = (aud,) if isinstance(aud, str) else as_tuple(aud)
        self.roles: frozenset[str] = as_set(lookup(payload, paths.get("roles")), commas=True)
        self.scopes: frozenset[str] = as_set(lookup(payload, paths.get("scopes")))
        self.permissions: frozenset[str] = as_set(lookup(payload, paths.get("permissions")))
        self.tenant_id: str | None = as_str(lookup(payload, paths.get("tenant_id")))
        self.organization_ids: tuple[str, ...] = as_tuple(lookup(payload, paths.get("organization_ids")))
        self.org_role: str | None = as_str(lookup(payload, paths.get("org_role")))
        exp = payload.get("exp")
        self.expires_at: datetime.datetime | None = (
            datetime.datetime.fromtimestamp(exp, tz=datetime.timezone.utc)
            if isinstance(exp, (int, float)) and not isinstance(exp, bool) and 0 <= exp < 253402300800
            else None
        )
        self.email: str | None = as_str(lookup(payload, paths.get("email")))
        self.email_verified: bool = as_bool(lookup(payload, paths.get("email_verified")))
        self.name: str | None = as_str(lookup(payload, paths.get("name")))
        self.given_name: str | None = as_str(lookup(payload, paths.get("given_name")))
        self.family_name: str | None = as_str(lookup(payload, paths.get("family_name")))
        self.username: str | None = as_str(lookup(payload, paths.get("username")))

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def claim(self, path: ClaimPath) -> Any:
        """Return the value at a claim path (see the module docstring), or None."""
        return lookup(self.raw, _normalise_path(path))

    def __repr__(self) -> str:
        return f"<Claims iss={self.issuer!r} sub={self.sub!r}>"
