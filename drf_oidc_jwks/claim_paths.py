"""Claim paths and provider presets: where each ``Claims`` attribute is read from (``CLAIMS``, ``PROVIDER``).

A dependency-free module: the settings (conf.py) parse ``CLAIMS`` with it, and claims.py walks the paths.
The path grammar is described in claims.py's module docstring and docs/claims.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

#: A normalised claim path: a name/dotted string, a tuple of segments, several paths, or None.
ClaimPath = Union[str, tuple[str, ...], "AnyOf", None]


class AnyOf(tuple[str | tuple[str, ...], ...]):
    """Several claim paths: set attributes merge all of them, single values take the first present."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"AnyOf{tuple.__repr__(self)}"


#: Attributes of ``Claims`` that ``CLAIMS`` can map.
CLAIM_ATTRIBUTES = (
    "subject",
    "roles",
    "scopes",
    "permissions",
    "tenant_id",
    "organization_ids",
    "org_role",
    "client_id",
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
    # RFC 9068 access tokens name the client in client_id; OIDC ID tokens in azp.
    "client_id": AnyOf(("client_id", "azp")),
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
    # Better Auth (JWT + organization plugins): "role" is one string, several roles comma-separated
    # ("admin,user") as its admin plugin stores them; tenant claims are added by definePayload.
    "better-auth": {**_GENERIC, "roles": "role", "username": AnyOf(("username", "preferred_username"))},
    # Auth0: RBAC permissions are a list and scope a space-separated string; roles only exist
    # through a namespaced claim added by an Action (https://your.domain/roles), so users map that
    # themselves. Organizations put the active one in org_id.
    "auth0": {
        **_GENERIC,
        "roles": None,
        "tenant_id": "org_id",
        "organization_ids": None,
        "org_role": None,
        "client_id": "azp",
        "username": AnyOf(("preferred_username", "nickname")),
    },
    # Okta: scp is a list, groups needs a groups claim on the authorization server, cid is the
    # client. sub is the user's login, which an admin can rename; uid is the immutable user id, so
    # it keys the user (client-credentials tokens have no uid: their sub is the cid).
    "okta": {
        **_GENERIC,
        "subject": AnyOf(("uid", "sub")),
        "roles": "groups",
        "scopes": "scp",
        "tenant_id": None,
        "organization_ids": None,
        "org_role": None,
        "client_id": "cid",
        "username": AnyOf(("preferred_username", "sub")),
    },
    # Keycloak: realm roles nested in realm_access; client roles under resource_access.<client>.roles
    # (map them with CLAIMS); Keycloak 26 organizations in "organization" (a list, or an object
    # keyed by alias when attributes are included).
    "keycloak": {
        **_GENERIC,
        "roles": "realm_access.roles",
        "tenant_id": None,
        "organization_ids": "organization",
        "org_role": None,
        "client_id": AnyOf(("client_id", "azp")),
    },
    # Entra ID v2: sub is pairwise (differs per application); oid is the stable user id. tid is the
    # directory (tenant). scp is a space-separated string; app roles are a list in "roles".
    "entra": {
        **_GENERIC,
        "subject": "oid",
        "scopes": "scp",
        "tenant_id": "tid",
        "organization_ids": None,
        "org_role": None,
        "client_id": AnyOf(("azp", "appid")),
        "username": AnyOf(("preferred_username", "upn", "unique_name")),
    },
    # Cognito: groups in cognito:groups; access tokens carry client_id and username, ID tokens
    # aud (the client id) and cognito:username.
    "cognito": {
        **_GENERIC,
        "roles": "cognito:groups",
        "tenant_id": None,
        "organization_ids": None,
        "org_role": None,
        "client_id": AnyOf(("client_id", "aud")),
        "username": AnyOf(("username", "cognito:username")),
    },
}

#: The ``TENANT_CLAIM`` a ``{tenant}`` issuer of this ``PROVIDER`` gets when none is set: Entra's ``tid``
#: is the tenant its ``iss`` names, in v1 and v2 tokens alike (Microsoft's multi-tenant validation).
TENANT_CLAIMS: dict[str, str] = {"entra": "tid"}


def _one_path(path: Any) -> str | tuple[str, ...]:
    if isinstance(path, str):
        return path
    return tuple(str(p) for p in path)


def normalise_path(path: Any) -> ClaimPath:
    """Turn a ``CLAIMS`` value (string, list of segments, list of paths, None) into a ``ClaimPath``."""
    if path is None or isinstance(path, (str, AnyOf)):
        return path
    if isinstance(path, Sequence):
        items = list(path)
        if any(isinstance(item, (list, tuple)) for item in items):
            return AnyOf(_one_path(item) for item in items)
        return tuple(str(p) for p in items)
    raise TypeError(f"a claim path is a string, a list or None, not {type(path).__name__}")


def resolve_claim_paths(provider: str, overrides: Mapping[str, Any]) -> dict[str, ClaimPath]:
    """Return the preset of ``provider`` with ``overrides`` applied key by key."""
    paths = dict(PRESETS.get(provider, _GENERIC))
    for key, value in overrides.items():
        paths[key] = normalise_path(value)
    return paths
