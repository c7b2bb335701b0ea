"""What ``request.user`` can be: a DB-free ``TokenUser``, a ``ServicePrincipal``, or a lazy ``SyncedUser``.

Importable from :mod:`drf_oidc_jwks.users` as well; :class:`~drf_oidc_jwks.users.UserSync` makes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.functional import SimpleLazyObject

from .claims import Claims
from .exceptions import TokenError


class TokenUser:
    """A user made from the token alone, with no database access (``SYNC_USERS: False``).

    ``pk``/``id`` are the token's subject; ``is_authenticated`` is True.
    """

    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    is_authenticated = True
    #: True for a :class:`ServicePrincipal` (a client acting for itself).
    is_service = False

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.pk = self.id = claims.sub
        self.issuer = claims.issuer
        self.username = claims.username or claims.email or claims.sub or ""
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

    def get_short_name(self) -> str:
        return self.first_name or self.username

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


class ServicePrincipal(TokenUser):
    """A client acting for itself (client-credentials token): authenticated, never a person-user row.

    ``pk``/``id`` are the token's subject; ``username`` is the client id.
    """

    is_service = True

    def __init__(self, claims: Claims) -> None:
        super().__init__(claims)
        self.client_id = claims.client_id or claims.sub
        self.username = self.client_id or ""
        self.email = ""

    def __str__(self) -> str:
        return f"ServicePrincipal {self.username}"


class _Loading:
    """What a :class:`SyncedUser` shares with its loader: whether the user is loaded, who answers a refusal."""

    __slots__ = ("loaded", "refuse")

    def __init__(self, loaded: bool) -> None:
        self.loaded = loaded
        self.refuse: Callable[[TokenError], Exception] | None = None


class SyncedUser(SimpleLazyObject):  # type: ignore[type-arg]
    """``request.user`` with ``SYNC_USERS``: the Django user of (issuer, sub), loaded on first real use.

    ``is_authenticated``, ``is_anonymous``, truth and ``claims`` need no database; any other
    attribute calls ``load`` (which may create or update the user).
    """

    is_authenticated = True
    is_anonymous = False
    _loading: _Loading

    def __init__(self, claims: Claims, load: Callable[[], Any], *, loaded: bool = False) -> None:
        state = _Loading(loaded)

        def setup() -> Any:
            try:
                user = load()
            except TokenError as exc:
                # Loaded inside a view, after authentication: the authentication class answers.
                if state.refuse is None:
                    raise
                raise state.refuse(exc) from None
            state.loaded = True
            return user

        super().__init__(setup)
        self.__dict__["claims"] = claims
        self.__dict__["_loading"] = state

    def __bool__(self) -> bool:
        return True

    @property
    def is_loaded(self) -> bool:
        """Whether the user has been read from the database yet."""
        return self._loading.loaded

    def on_refused(self, handler: Callable[[TokenError], Exception]) -> None:
        """Raise ``handler(exc)`` when loading the user refuses it (``JWKSAuthentication`` passes its 401)."""
        self._loading.refuse = handler
