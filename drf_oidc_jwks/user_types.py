"""What ``request.user`` can be: a DB-free ``TokenUser``, a ``ServicePrincipal``, or a lazy ``SyncedUser``.

Importable from :mod:`drf_oidc_jwks.users` as well; :class:`~drf_oidc_jwks.users.UserSync` makes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from django.utils.functional import SimpleLazyObject, empty

from .claims import Claims
from .exceptions import TokenError

_T = TypeVar("_T")


class _FromClaims(Generic[_T]):
    """A user field read from ``claims`` on first use, then kept on the instance (assignable, as a plain field)."""

    def __init__(self, read: Callable[[Claims], _T]) -> None:
        self.read = read

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _FromClaims[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...
    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self  # looked up on the class (documentation tools, introspection)
        value = obj.__dict__[self.name] = self.read(obj.claims)
        return value


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
        # The other fields are read from the claims on first use: most views never ask for them.
        self.claims = claims

    pk = _FromClaims(lambda c: c.sub)
    id = _FromClaims(lambda c: c.sub)
    issuer = _FromClaims(lambda c: c.issuer)
    username = _FromClaims(lambda c: c.username or c.email or c.sub or "")
    email = _FromClaims(lambda c: c.email or "")
    first_name = _FromClaims(lambda c: c.given_name or "")
    last_name = _FromClaims(lambda c: c.family_name or "")

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

    client_id = _FromClaims(lambda c: c.client_id or c.sub)
    username = _FromClaims(lambda c: c.client_id or c.sub or "")
    email = _FromClaims(lambda c: "")

    def __str__(self) -> str:
        return f"ServicePrincipal {self.username}"


class _Loading:
    """What a :class:`SyncedUser` shares with its loader: whether the user is loaded, who answers a refusal."""

    __slots__ = ("loaded", "refuse")

    def __init__(self, loaded: bool) -> None:
        self.loaded = loaded
        self.refuse: Callable[[TokenError], Exception] | None = None


_get = object.__getattribute__


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

        # What SimpleLazyObject.__init__ sets, without its trips through __getattribute__/__setattr__:
        # request.user is read on every request, and this is its hot path.
        _get(self, "__dict__").update(_setupfunc=setup, _wrapped=empty, claims=claims, _loading=state)

    def __getattribute__(self, name: str) -> Any:
        # LazyObject's rules, decided by name rather than by probing every value for a marker and
        # going through __getattr__ on an AttributeError: the same answers at a fraction of the cost.
        # Its proxy methods are masked (the wrapped object answers); names the lazy object itself has
        # are its own; every other name is the user's (LazyObject.__setattr__ never stores one here).
        masked, own = _names(type(self))
        if name in own:
            if name in masked:
                raise AttributeError(name)
            return _get(self, name)
        values = _get(self, "__dict__")
        wrapped = values["_wrapped"]
        if wrapped is empty:
            self._setup()
            wrapped = values["_wrapped"]
        return getattr(wrapped, name)

    def _setup(self) -> None:
        values = _get(self, "__dict__")
        values["_wrapped"] = values["_setupfunc"]()

    def __bool__(self) -> bool:
        return True

    @property
    def is_loaded(self) -> bool:
        """Whether the user has been read from the database yet."""
        return bool(_get(self, "_loading").loaded)

    def on_refused(self, handler: Callable[[TokenError], Exception]) -> None:
        """Raise ``handler(exc)`` when loading the user refuses it (``JWKSAuthentication`` passes its 401)."""
        _get(self, "_loading").refuse = handler


_INSTANCE_NAMES = frozenset({"__dict__", "_setupfunc", "_wrapped", "claims", "_loading"})
_names_by_class: dict[type, tuple[frozenset[str], frozenset[str]]] = {}


def _names(cls: type) -> tuple[frozenset[str], frozenset[str]]:
    """Return (masked, own) attribute names of a lazy user class: LazyObject's proxy methods, and all it has."""
    found = _names_by_class.get(cls)
    if found is None:
        resolved: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            resolved.update(vars(klass))
        # Masked: one of LazyObject's proxy methods, hidden so the wrapped object answers (Django 4.1+).
        masked = frozenset(name for name, value in resolved.items() if getattr(value, "_mask_wrapped", True) is False)
        found = _names_by_class[cls] = (masked, frozenset(dir(cls)) | _INSTANCE_NAMES)
    return found
