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
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .claim_paths import CLAIM_ATTRIBUTES, PRESETS, AnyOf, ClaimPath, normalise_path, resolve_claim_paths
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


def _split(text: str, commas: bool) -> list[str]:
    # RFC 6749 3.3: scope tokens are separated by SP (U+0020) only; other whitespace is part of a token.
    if commas:
        text = text.replace(",", " ")
    return [part for part in text.split(" ") if part]


def _items(value: Any, commas: bool, any_key: bool = False) -> list[str]:
    """The strings in one claim value: split a string, the items of a list, the truthy keys of an object.

    Items are exact strings: nothing is stripped, so ``"admin "`` is not ``"admin"``. ``any_key``: every
    key of an object counts, whatever its value (organizations listed with their attributes).
    """
    if isinstance(value, str):
        return _split(value, commas)
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for item in value:
            s = _scalar_str(item)
            if s:
                out.append(s)
        return out
    if isinstance(value, Mapping):
        # {"admin": true, "editor": {...}} (Zitadel, Keycloak organizations): the keys whose values are
        # truthy, so {"admin": []}, {"admin": ""} and {"admin": {}} grant nothing.
        return [k for k, v in value.items() if isinstance(k, str) and k and (v or any_key)]
    s = _scalar_str(value)
    return [s] if s else []


_EMPTY: frozenset[str] = frozenset()


def as_set(value: Any, *, commas: bool = False) -> frozenset[str]:
    """Normalise a string (split on spaces, and commas if asked), list or object into a frozenset of strings."""
    return frozenset(_items(value, commas)) or _EMPTY


def _set_of(values: list[Any], commas: bool) -> frozenset[str]:
    if len(values) == 1:
        return as_set(values[0], commas=commas)
    out: set[str] = set()
    for value in values:
        out.update(_items(value, commas))
    return frozenset(out) if out else _EMPTY


def as_tuple(value: Any) -> tuple[str, ...]:
    """Normalise into an ordered tuple of distinct strings (strings split on commas and spaces)."""
    return tuple(dict.fromkeys(_items(value, True)))


def as_str(value: Any) -> str | None:
    """Normalise a scalar into a non-empty string, or None (a one-item list gives its item)."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    s = _scalar_str(value)
    return s if s else None


def as_bool(value: Any) -> bool:
    """True for JSON true and the string "true" in any ASCII case, nothing around it (Cognito's string booleans)."""
    return value is True or (isinstance(value, str) and len(value) == 4 and value.isascii() and value.lower() == "true")


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


def _one(name: str) -> Callable[[Claims], str | None]:
    def resolve(c: Claims) -> str | None:
        path = c.paths.get(name)
        if type(path) is str and path in c.raw:  # the common case, one top-level claim: same answer, faster
            return as_str(c.raw[path])
        return _first_str(lookup_all(c.raw, path))

    return resolve


def _many(name: str, commas: bool = False) -> Callable[[Claims], frozenset[str]]:
    def resolve(c: Claims) -> frozenset[str]:
        path = c.paths.get(name)
        if type(path) is str and path in c.raw:
            return as_set(c.raw[path], commas=commas)
        return _set_of(lookup_all(c.raw, path), commas)

    return resolve


def _sub(c: Claims) -> str | None:
    found = _one("subject")(c) if "subject" in c.paths else None
    return found if found is not None else as_str(c.raw.get("sub"))


def _audience(c: Claims) -> tuple[str, ...]:
    aud = c.raw.get("aud")
    return (aud,) if isinstance(aud, str) else as_tuple(aud)


def _organization_ids(c: Claims) -> tuple[str, ...]:
    orgs: list[str] = []
    for value in lookup_all(c.raw, c.paths.get("organization_ids")):
        orgs.extend(_items(value, True, any_key=True))
    return tuple(dict.fromkeys(orgs))


def _dpop_jkt(c: Claims) -> str | None:
    # RFC 9449 6.1: a DPoP-bound token names the thumbprint of its key in cnf.jkt.
    cnf = c.raw.get("cnf")
    return as_str(cnf.get("jkt")) if isinstance(cnf, Mapping) else None


def _amr(c: Claims) -> tuple[str, ...]:
    value = c.raw.get("amr")
    values = value if isinstance(value, (list, tuple)) else ()
    return tuple(v for v in values if isinstance(v, str))


def _timestamp(value: Any) -> datetime.datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 253402300800:
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    return None


#: How each attribute is computed from (raw, paths), on first access. Roles may be comma-separated
#: (Better Auth's admin plugin); scopes and permissions never are.
_RESOLVERS: dict[str, Callable[[Claims], Any]] = {
    "sub": _sub,
    "issuer": lambda c: as_str(c.raw.get("iss")),
    "audience": _audience,
    "roles": _many("roles", commas=True),
    "scopes": _many("scopes"),
    "permissions": _many("permissions"),
    "tenant_id": _one("tenant_id"),
    "organization_ids": _organization_ids,
    "org_role": _one("org_role"),
    "client_id": _one("client_id"),
    "is_machine": lambda c: is_machine_token(c.raw),
    "expires_at": lambda c: _timestamp(c.raw.get("exp")),
    "issued_at": lambda c: _timestamp(c.raw.get("iat")),
    "email": _one("email"),
    "email_verified": lambda c: any(as_bool(v) for v in lookup_all(c.raw, c.paths.get("email_verified"))[:1]),
    "name": _one("name"),
    "given_name": _one("given_name"),
    "family_name": _one("family_name"),
    "username": _one("username"),
    # Session and authentication context (OIDC Core 2; RFC 9470 step-up), as the token carries them.
    "sid": lambda c: as_str(c.raw.get("sid")),
    "acr": lambda c: as_str(c.raw.get("acr")),
    "amr": _amr,
    "auth_time": lambda c: _timestamp(c.raw.get("auth_time")),
    "dpop_jkt": _dpop_jkt,
}


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
    ATTRIBUTES = (*_RESOLVERS, "token_format")
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
            resolve = _RESOLVERS.get(name)
            if resolve is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            value = resolve(self)
            object.__setattr__(self, name, value)
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
