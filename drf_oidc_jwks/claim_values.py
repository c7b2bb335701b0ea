"""How ``Claims`` values are read: claim paths walked in a payload, values normalised, attributes resolved.

Pure functions of the verified payload (and of the ``CLAIMS`` paths): :mod:`drf_oidc_jwks.claims` wraps
them in the immutable ``Claims`` object. :func:`attribute_table` turns one paths mapping into one function
per attribute, built once per mapping (the settings' ``CLAIMS``), so a token's first request does not
re-inspect every path; the common path, one top-level claim name, reads one dict entry.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .claim_paths import AnyOf, ClaimPath

__all__ = [
    "IDENTITY",
    "RESOLVED",
    "as_bool",
    "as_set",
    "as_str",
    "as_tuple",
    "attribute_table",
    "is_machine_token",
    "lookup",
    "lookup_all",
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
    if type(value) is str:  # the common case, first
        return value or None
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


Resolver = Callable[[Mapping[str, Any]], Any]


def _is_name(path: Any) -> bool:
    return type(path) is str and "." not in path


def _one(path: ClaimPath) -> Callable[[Mapping[str, Any]], str | None]:
    """A single string value: the first present of the path(s), normalised."""
    if _is_name(path):
        name = str(path)
        return lambda raw: as_str(raw.get(name))
    if isinstance(path, AnyOf) and all(_is_name(p) for p in path):
        names = tuple(str(p) for p in path)

        def first(raw: Mapping[str, Any]) -> str | None:
            for name in names:
                value = raw.get(name)
                if value is not None:
                    found = as_str(value)
                    if found is not None:
                        return found
            return None

        return first
    return lambda raw: _first_str(lookup_all(raw, path))


def _many(path: ClaimPath, commas: bool = False) -> Callable[[Mapping[str, Any]], frozenset[str]]:
    """A set: the union of the path(s), normalised."""
    if _is_name(path):
        name = str(path)
        return lambda raw: as_set(raw.get(name), commas=commas)
    return lambda raw: _set_of(lookup_all(raw, path), commas)


def _sub(paths: Mapping[str, ClaimPath]) -> Callable[[Mapping[str, Any]], str | None]:
    if paths.get("subject", "sub") == "sub":
        return lambda raw: as_str(raw.get("sub"))
    subject = _one(paths["subject"])

    def sub(raw: Mapping[str, Any]) -> str | None:
        found = subject(raw)
        return found if found is not None else as_str(raw.get("sub"))

    return sub


def _audience(raw: Mapping[str, Any]) -> tuple[str, ...]:
    aud = raw.get("aud")
    return (aud,) if isinstance(aud, str) else as_tuple(aud)


def _organization_ids(path: ClaimPath) -> Callable[[Mapping[str, Any]], tuple[str, ...]]:
    def organization_ids(raw: Mapping[str, Any]) -> tuple[str, ...]:
        orgs: list[str] = []
        for value in lookup_all(raw, path):
            orgs.extend(_items(value, True, any_key=True))
        return tuple(dict.fromkeys(orgs))

    return organization_ids


def _dpop_jkt(raw: Mapping[str, Any]) -> str | None:
    # RFC 9449 6.1: a DPoP-bound token names the thumbprint of its key in cnf.jkt.
    cnf = raw.get("cnf")
    return as_str(cnf.get("jkt")) if isinstance(cnf, Mapping) else None


def _amr(raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get("amr")
    values = value if isinstance(value, (list, tuple)) else ()
    return tuple(v for v in values if isinstance(v, str))


def _timestamp(value: Any) -> datetime.datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 253402300800:
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    return None


def _build(paths: Mapping[str, ClaimPath]) -> dict[str, Resolver]:
    """How each attribute is computed from the raw payload under ``paths``. Roles may be comma-separated
    (Better Auth's admin plugin); scopes and permissions never are."""
    at = paths.get
    email_verified = at("email_verified")
    return {
        "sub": _sub(paths),
        "issuer": lambda raw: as_str(raw.get("iss")),
        "audience": _audience,
        "roles": _many(at("roles"), commas=True),
        "scopes": _many(at("scopes")),
        "permissions": _many(at("permissions")),
        "tenant_id": _one(at("tenant_id")),
        "organization_ids": _organization_ids(at("organization_ids")),
        "org_role": _one(at("org_role")),
        "client_id": _one(at("client_id")),
        "is_machine": is_machine_token,
        "expires_at": lambda raw: _timestamp(raw.get("exp")),
        "issued_at": lambda raw: _timestamp(raw.get("iat")),
        "email": _one(at("email")),
        "email_verified": lambda raw: any(as_bool(v) for v in lookup_all(raw, email_verified)[:1]),
        "name": _one(at("name")),
        "given_name": _one(at("given_name")),
        "family_name": _one(at("family_name")),
        "username": _one(at("username")),
        # Session and authentication context (OIDC Core 2; RFC 9470 step-up), as the token carries them.
        "sid": lambda raw: as_str(raw.get("sid")),
        "acr": lambda raw: as_str(raw.get("acr")),
        "amr": _amr,
        "auth_time": lambda raw: _timestamp(raw.get("auth_time")),
        "dpop_jkt": _dpop_jkt,
    }


#: The attributes resolved from a payload, in the order ``Claims.ATTRIBUTES`` lists them.
RESOLVED: tuple[str, ...] = tuple(_build({}))
#: Read together by every request (``request.user`` is made of them): the first access to one computes all,
#: one lookup instead of one per attribute. Each is still computed once and kept.
IDENTITY = ("sub", "issuer", "username", "email", "given_name", "family_name", "name", "is_machine")

_tables: dict[int, tuple[Mapping[str, ClaimPath], dict[str, Resolver]]] = {}
_tables_lock = threading.Lock()
#: Paths mappings are few (one per configured issuer); past this many the tables start over.
_TABLES_MAX = 64


def attribute_table(paths: Mapping[str, ClaimPath]) -> dict[str, Resolver]:
    """One resolver per attribute for ``paths``, built once per mapping object (held, so its id stays its own)."""
    held = _tables.get(id(paths))
    if held is not None and held[0] is paths:
        return held[1]
    table = _build(paths)
    with _tables_lock:
        if len(_tables) >= _TABLES_MAX:
            _tables.clear()
        _tables[id(paths)] = (paths, table)
    return table
