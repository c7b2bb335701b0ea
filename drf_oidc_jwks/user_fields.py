"""Claims onto user fields: ``USER_FIELDS``, the admin flags from roles, group names, and the fingerprint of it all.

Values are fitted to the fields (a claim that does not fit becomes empty, never a database error); the
fingerprint says whether anything is to be written, and is computed once per memoised token.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import models

from .claims import CLAIM_ATTRIBUTES, Claims
from .conf import PROTECTED_FIELDS, Settings


def user_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """Return the concrete field ``name`` of the user model; ImproperlyConfigured when claims cannot write it."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        raise ImproperlyConfigured(f"DRF_OIDC_JWKS: the user model has no field {name!r} (USER_FIELDS).") from None
    if not isinstance(field, models.Field) or not field.concrete or field.many_to_many or field.primary_key:
        raise ImproperlyConfigured(f"DRF_OIDC_JWKS: {name!r} cannot be written from claims (USER_FIELDS).")
    return field


def _coerce(field: models.Field[Any, Any], value: Any) -> Any:
    """Fit a claim value to a user field; a value that does not fit becomes empty, never a database error."""
    if isinstance(field, models.BooleanField):
        return value is True or (isinstance(value, str) and value.lower() == "true")
    if isinstance(field, (models.CharField, models.TextField)):
        if isinstance(value, (frozenset, set)):
            value = " ".join(sorted(value))
        elif isinstance(value, (list, tuple)):
            value = " ".join(v for v in value if isinstance(v, str))
        elif isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None if field.null else ""
        # PostgreSQL text cannot hold NUL (DataError, a 500): drop it (tests/test_fuzz.py seed corpus).
        value = value.replace("\x00", "")
        # A too-long claim must not become a database error (PostgreSQL refuses, SQLite would not).
        return value[: field.max_length] if field.max_length else value
    if value is None or isinstance(value, (dict, list, tuple)):
        return None if field.null else field.get_default()
    try:
        return field.to_python(value)
    except (ValidationError, TypeError, ValueError, OverflowError):
        return None if field.null else field.get_default()


def _claim_value(claims: Claims, source: Any) -> Any:
    if isinstance(source, str) and source in CLAIM_ATTRIBUTES:
        return getattr(claims, "sub" if source == "subject" else source)
    return claims.claim(source)


def mapped_values(claims: Claims, s: Settings) -> dict[str, Any]:
    """Return the user field values the claims map to (``USER_FIELDS``, ``STAFF_ROLES``, ``SUPERUSER_ROLES``)."""
    model = get_user_model()
    values: dict[str, Any] = {}
    for name, source in s.user_fields.items():
        if name in PROTECTED_FIELDS:
            raise ImproperlyConfigured(
                f"DRF_OIDC_JWKS: USER_FIELDS may not write {name!r}; "
                "use STAFF_ROLES / SUPERUSER_ROLES for the admin flags, is_active and passwords stay local."
            )
        values[name] = _coerce(user_field(model, name), _claim_value(claims, source))
    if s.staff_roles:
        user_field(model, "is_staff")
        values["is_staff"] = bool(claims.roles & s.staff_roles)
    if s.superuser_roles:
        user_field(model, "is_superuser")
        values["is_superuser"] = bool(claims.roles & s.superuser_roles)
    return values


def group_names(claims: Claims, s: Settings) -> list[str] | None:
    """Return the names of the groups the user should be in (``SYNC_GROUPS``), or None to leave groups alone."""
    if not s.sync_groups:
        return None
    from django.contrib.auth.models import Group

    limit = Group._meta.get_field("name").max_length or 150  # type: ignore[union-attr]
    return sorted(r for r in claims.roles if len(r) <= limit and "\x00" not in r)


def fingerprint_of(values: dict[str, Any], groups: list[str] | None) -> str:
    """Return the hash of mapped field values and group names; equal hashes mean nothing to write."""
    data = {"fields": values, "groups": groups}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def usernames(claims: Claims, values: dict[str, Any], field: models.Field[Any, Any]) -> Iterator[str]:
    """Return candidate usernames: the preferred one, then one made unique by the identity, then random ones."""
    base = values.get(field.name) or claims.username or claims.email or claims.sub or "user"
    base = str(base).replace("\x00", "")  # PostgreSQL text cannot hold NUL
    limit = field.max_length or 150
    yield base[:limit]
    # Deterministic for an identity, so concurrent first requests of one subject pick the same name
    # (and collide on the identity), while another subject with the same preferred name gets its own.
    digest = hashlib.sha256(f"{claims.issuer}\x00{claims.sub}".encode()).hexdigest()[:10]
    yield f"{base[: limit - 11]}.{digest}"
    for _ in range(3):
        yield f"{base[: limit - 13]}.{secrets.token_hex(6)}"


def set_groups(user: Any, names: list[str] | None) -> None:
    """Make ``names`` the groups of ``user`` (None: leave its groups alone)."""
    if names is None or not hasattr(user, "groups"):
        return
    from django.contrib.auth.models import Group

    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in names])


class ClaimsMemo:
    """Values computed once per ``Claims`` object (memoised tokens reuse theirs), without touching the Claims.

    Keyed by identity, not equality: two equal payloads are still two tokens. An entry lives as long
    as its Claims object and belongs to one ``owner`` (the user sync of one settings object).
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Claims], object, str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, claims: Claims, owner: object, compute: Callable[[], str]) -> str:
        """Return the value memoised for ``claims`` and ``owner``, computing and keeping it on a miss."""
        key = id(claims)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is claims and entry[1] is owner:
            return entry[2]
        value = compute()
        entries = self._entries

        def drop(ref: weakref.ref[Claims]) -> None:
            current = entries.get(key)
            if current is not None and current[0] is ref:
                del entries[key]

        try:
            ref = weakref.ref(claims, drop)
        except TypeError:
            return value  # an object that cannot be weakly referenced is computed every time
        entries[key] = (ref, owner, value)
        return value
