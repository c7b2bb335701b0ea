"""The ``Claims`` value object on ``request.auth``; ``CLAIMS`` paths and ``PROVIDER`` presets.

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
from typing import Any

from .claim_paths import CLAIM_ATTRIBUTES, PRESETS, AnyOf, ClaimPath, normalise_path, resolve_claim_paths

__all__ = [
    "CLAIM_ATTRIBUTES",
    "PRESETS",
    "AnyOf",
    "ClaimPath",
    "Claims",
    "as_bool",
    "as_set",
    "as_str",
    "as_tuple",
    "is_machine_token",
    "lookup",
    "lookup_all",
    "normalise_path",
    "resolve_claim_paths",
]

_MISSING = object()


def _walk_dotted(node: Any, parts: list[str]) -> Any:
    """Walk ``parts`` (a dotted path split on dots); at each level the longest name present wins."""
    if not parts:
        return node
    if not isinstance(node, Mapping):
        return _MISSING
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in node:
            found = _walk_dotted(node[name], parts[end:])
            if found is not _MISSING:
                return found
    return _MISSING


def _lookup_one(payload: Mapping[str, Any], path: str | tuple[str, ...]) -> Any:
    if isinstance(path, str):
        if path in payload:
            return payload[path]
        if "." not in path:
            return None
        found = _walk_dotted(payload, path.split("."))
        return None if found is _MISSING else found
    node: Any = payload
    for segment in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(segment, _MISSING)
        if node is _MISSING:
            return None
    return node


def lookup(payload: Mapping[str, Any], path: ClaimPath) -> Any:
    """Return the value at ``path`` in ``payload`` (the first present one for ``AnyOf``), or None."""
    if path is None:
        return None
    if isinstance(path, AnyOf):
        for one in path:
            value = _lookup_one(payload, one)
            if value is not None:
                return value
        return None
    return _lookup_one(payload, path)


def lookup_all(payload: Mapping[str, Any], path: ClaimPath) -> list[Any]:
    """Return every value present at ``path`` (one per path of an ``AnyOf``)."""
    if path is None:
        return []
    paths = path if isinstance(path, AnyOf) else (path,)
    return [v for v in (_lookup_one(payload, p) for p in paths) if v is not None]


def _scalar_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _items(value: Any, separators: str) -> list[str]:
    """The strings in one claim value: split a string, flatten a list, keys of an object."""
    if isinstance(value, str):
        text: str = value
        for sep in separators:
            text = text.replace(sep, " ")
        return text.split()
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for item in value:
            s = _scalar_str(item)
            if s is not None and s.strip():
                out.append(s.strip())
        return out
    if isinstance(value, Mapping):
        # {"admin": true, "editor": {...}} (Zitadel, Keycloak organizations): the keys whose values are truthy
        keys: list[str] = [k for k, v in value.items() if isinstance(k, str) and k.strip() and v not in (None, False)]
        return keys
    s = _scalar_str(value)
    return [s] if s else []


def as_set(value: Any, *, commas: bool = False) -> frozenset[str]:
    """Normalise a string, space-separated string, list or object into a frozenset of strings."""
    return frozenset(_items(value, "," if commas else ""))


def _set_of(values: list[Any], commas: bool) -> frozenset[str]:
    out: set[str] = set()
    for value in values:
        out.update(_items(value, "," if commas else ""))
    return frozenset(out)


def as_tuple(value: Any) -> tuple[str, ...]:
    """Normalise into an ordered tuple of distinct strings (strings split on commas and spaces)."""
    return tuple(dict.fromkeys(_items(value, ",")))


def as_str(value: Any) -> str | None:
    """Normalise a scalar into a non-empty string, or None (a one-item list gives its item)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    s = _scalar_str(value)
    return s if s else None


def as_bool(value: Any) -> bool:
    """True for JSON true and the string "true" (Cognito sends some booleans as strings)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _first_str(values: list[Any]) -> str | None:
    for value in values:
        s = as_str(value)
        if s is not None:
            return s
    return None


def is_machine_token(payload: Mapping[str, Any]) -> bool:
    """Say whether a verified payload was issued to a client for itself (client credentials), not to a person."""
    if payload.get("gty") == "client-credentials":  # Auth0
        return True
    if payload.get("idtyp") == "app":  # Entra, with the idtyp optional claim
        return True
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub:
        return False
    # Okta (cid), Cognito and RFC 9068 servers (client_id), oidc-provider: the subject is the client itself.
    for name in ("client_id", "cid", "azp", "appid"):
        if payload.get(name) == sub:
            return True
    azp = payload.get("azp")
    if isinstance(azp, str) and azp:
        if sub == f"{azp}@clients":  # Auth0 without gty
            return True
        username = payload.get("preferred_username")
        # Keycloak names a client's service account user service-account-<client id> (lower-cased).
        if isinstance(username, str) and username.lower() == f"service-account-{azp}".lower():
            return True
    # Entra app-only tokens: the subject is the service principal's own object id, and no delegated scopes.
    return payload.get("oid") == sub and "scp" not in payload


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
        "client_id",
        "is_machine",
        "expires_at",
        "issued_at",
        "email",
        "email_verified",
        "name",
        "given_name",
        "family_name",
        "username",
        "_derived",
    )

    def __init__(
        self,
        payload: Mapping[str, Any],
        paths: Mapping[str, ClaimPath] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> None:
        paths = paths if paths is not None else PRESETS["generic"]
        #: Values computed from the claims and kept with them (e.g. the user-sync fingerprint): a memoised
        #: token's Claims object is reused across requests, so they are computed once per token.
        self._derived: dict[str, Any] = {}
        self.raw: Mapping[str, Any] = payload
        self.header: Mapping[str, Any] = header or {}
        self.paths = paths

        def one(name: str) -> str | None:
            return _first_str(lookup_all(payload, paths.get(name)))

        def many(name: str, commas: bool = False) -> frozenset[str]:
            return _set_of(lookup_all(payload, paths.get(name)), commas)

        self.sub: str | None = one("subject") if "subject" in paths else as_str(payload.get("sub"))
        if self.sub is None:
            self.sub = as_str(payload.get("sub"))
        self.issuer: str | None = as_str(payload.get("iss"))
        aud = payload.get("aud")
        self.audience: tuple[str, ...] = (aud,) if isinstance(aud, str) else as_tuple(aud)
        # Roles may be comma-separated (Better Auth's admin plugin); scopes and permissions never are.
        self.roles: frozenset[str] = many("roles", commas=True)
        self.scopes: frozenset[str] = many("scopes")
        self.permissions: frozenset[str] = many("permissions")
        self.tenant_id: str | None = one("tenant_id")
        orgs: list[str] = []
        for value in lookup_all(payload, paths.get("organization_ids")):
            orgs.extend(_items(value, ","))
        self.organization_ids: tuple[str, ...] = tuple(dict.fromkeys(orgs))
        self.org_role: str | None = one("org_role")
        self.client_id: str | None = one("client_id")
        self.is_machine: bool = is_machine_token(payload)
        self.expires_at: datetime.datetime | None = _timestamp(payload.get("exp"))
        self.issued_at: datetime.datetime | None = _timestamp(payload.get("iat"))
        self.email: str | None = one("email")
        self.email_verified: bool = any(as_bool(v) for v in lookup_all(payload, paths.get("email_verified"))[:1])
        self.name: str | None = one("name")
        self.given_name: str | None = one("given_name")
        self.family_name: str | None = one("family_name")
        self.username: str | None = one("username")

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


def _timestamp(value: Any) -> datetime.datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 253402300800:
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    return None
