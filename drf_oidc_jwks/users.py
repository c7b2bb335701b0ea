"""``request.user`` from verified claims: a DB-free ``TokenUser`` (stateless mode) or a synced Django user."""

from __future__ import annotations

from typing import Any

from .claims import Claims
from .conf import get_settings


class TokenUser:
    """A user made from the token alone, with no database access (``SYNC_USERS: False``).

    ``pk``/``id`` are the token's subject; ``is_authenticated`` is True.
    """

    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    is_authenticated = True

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.pk = self.id = claims.sub
        self.issuer = claims.issuer
        self.username = claims.username or claims.sub or ""
        self.email = claims.email or ""
        self.first_name = claims.given_name or ""
        self.last_name = claims.family_name or ""

    def __str__(self) -> str:
        return f"TokenUser {self.username}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenUser) and (self.issuer, self.pk) == (other.issuer, other.pk)

    def __hash__(self) -> int:
        return hash((self.issuer, self.pk))

    def get_username(self) -> str:
        return self.username

    def get_full_name(self) -> str:
        return self.claims.name or f"{self.first_name} {self.last_name}".strip()

    @property
    def groups(self) -> Any:
        from django.contrib.auth.models import Group
        from django.db.models.manager import EmptyManager

        return EmptyManager(Group)

    @property
    def user_permissions(self) -> Any:
        from django.contrib.auth.models import Permission
        from django.db.models.manager import EmptyManager

        return EmptyManager(Permission)

    def get_all_permissions(self, obj: Any = None) -> set[str]:
        return set()

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perm_list: Any, obj: Any = None) -> bool:
        return False

    def has_module_perms(self, module: str) -> bool:
        return False


def get_user(claims: Claims) -> Any:
    """Return the user for verified claims, as ``SYNC_USERS`` says."""
    if not get_settings().sync_users:
        return TokenUser(claims)
    return TokenUser(claims)  # replaced by the synced user in users sync (issue: claims and users)
