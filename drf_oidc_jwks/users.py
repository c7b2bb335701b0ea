"""``request.user`` from verified claims: a lazily synced Django user, a DB-free ``TokenUser``, or a service principal.

With ``SYNC_USERS`` (the default) ``request.user`` is a :class:`SyncedUser`: a lazy object that
answers ``is_authenticated`` at once and reads or writes the database only when something uses the
user. :class:`UserSync` holds the steps (``lookup``, ``map_fields``, ``create``, ``update``,
``check_active``); ``USER_SYNC_CLASS`` names a subclass that changes one. A locally deactivated user
is refused on every request, from the cached state of its identity (:mod:`drf_oidc_jwks.user_state`)
or one SELECT; a subject that has a local user is that user whatever the token's shape.
See docs/users.md for the trade-offs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils.module_loading import import_string

from .claims import Claims
from .conf import PROTECTED_FIELDS, Settings, get_settings
from .exceptions import MalformedToken, MissingClaim, UserInactive
from .signals import user_synced
from .user_fields import ClaimsMemo, fingerprint_of, group_names, set_groups, user_field, usernames
from .user_fields import mapped_values as field_values
from .user_state import (
    ACTIVE,
    INACTIVE,
    NEW,
    forget_identity,
    forget_user,
    get_state,
    private_copy,
    reset_local_states,
    set_state,
    sync_write,
)
from .user_types import ServicePrincipal, SyncedUser, TokenUser
from .userinfo import userinfo

__all__ = [
    "PROTECTED_FIELDS",
    "ServicePrincipal",
    "SyncedUser",
    "TokenUser",
    "UserSync",
    "fingerprint",
    "forget_identity",
    "forget_user",
    "get_user",
    "get_user_sync",
    "load_user",
    "mapped_values",
    "reset_local_states",
    "resolve_user",
    "userinfo",
]

logger = logging.getLogger("drf_oidc_jwks")

_UNKNOWN: Any = object()
_MAX_ID = 255  # OIDCIdentity.issuer / .subject
DEFAULT_USER_SYNC_CLASS = "drf_oidc_jwks.users.UserSync"


# ---------------------------------------------------------------------------
# The user sync and its steps


def _mappable(claims: Claims) -> bool:
    sub, iss = claims.sub, claims.issuer
    return bool(sub and iss) and len(sub or "") <= _MAX_ID and len(iss or "") <= _MAX_ID and "\x00" not in (sub or "")


def _check_identity(claims: Claims) -> None:
    if not claims.sub or not claims.issuer:
        raise MissingClaim("no subject to map a user to", description="The token lacks the 'sub' claim.")
    if len(claims.sub) > _MAX_ID or len(claims.issuer) > _MAX_ID:
        # OIDC Core caps sub at 255 characters; a longer one must not become a database error.
        raise MalformedToken("sub or iss longer than 255 characters")
    if "\x00" in claims.sub:
        # OIDC Core: sub is ASCII, and PostgreSQL text cannot hold NUL (a DataError, a 500).
        raise MalformedToken("sub holds a NUL character")


_T = TypeVar("_T")
_LOCK_RETRY_SECONDS = 3.0


def _retry_when_locked(operation: Callable[[], _T]) -> _T:
    """Run ``operation``, retrying briefly while SQLite reports a lock instead of waiting for it.

    SQLite answers some contention with an immediate ``OperationalError`` ("database is locked":
    shared-cache databases, deferred transactions upgrading) rather than its busy timeout; concurrent
    first requests must still get their user, not a 500. Every retried step is atomic or a read.
    """
    deadline = time.monotonic() + _LOCK_RETRY_SECONDS
    delay = 0.002
    while True:
        try:
            return operation()
        except OperationalError as exc:
            if connection.vendor != "sqlite" or "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


_fingerprints = ClaimsMemo()


class UserSync:
    """How verified claims become the Django user of (issuer, sub); subclass it and name it in ``USER_SYNC_CLASS``.

    The steps are :meth:`lookup`, :meth:`map_fields`, :meth:`create`, :meth:`update` and
    :meth:`check_active`; :meth:`resolve` and :meth:`load` run them.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # -- the steps ------------------------------------------------------------------------

    def lookup(self, claims: Claims) -> Any:
        """Return the ``OIDCIdentity`` of (issuer, sub) with its user joined, or None."""
        from .models import OIDCIdentity

        try:
            return OIDCIdentity.objects.select_related("user").get(issuer=claims.issuer, subject=claims.sub)
        except OIDCIdentity.DoesNotExist:
            return None

    def map_fields(self, claims: Claims) -> dict[str, Any]:
        """Return the user field values the claims map to (``USER_FIELDS``, ``STAFF_ROLES``, ``SUPERUSER_ROLES``)."""
        return field_values(claims, self.settings)

    def create(self, claims: Claims, values: dict[str, Any], fingerprint: str) -> tuple[Any, bool]:
        """Create the identity (and user, or link one); return (identity, created). Safe against concurrent firsts."""
        from .models import OIDCIdentity

        model = get_user_model()
        username_field = user_field(model, model.USERNAME_FIELD)
        link = self.linkable_user(claims)
        groups = group_names(claims, self.settings)
        for username in usernames(claims, values, username_field):
            try:
                with transaction.atomic():
                    fields = {k: v for k, v in values.items() if k != username_field.name}
                    if link is not None:
                        user = link
                        changed = [k for k, v in fields.items() if getattr(user, k) != v]
                        for k in changed:
                            setattr(user, k, values[k])
                        if changed:
                            user.save(update_fields=changed)
                    else:
                        user = model(**{username_field.name: username}, **fields)
                        user.set_unusable_password()
                        user.save()
                    identity = OIDCIdentity(
                        issuer=claims.issuer or "",  # never empty here: _check_identity ran
                        subject=claims.sub or "",
                        user=user,
                        fingerprint=fingerprint,
                        claims_issued_at=claims.issued_at,
                    )
                    # The identity of a brand-new user concerns no other process; a link is announced.
                    with sync_write(identity) if link is None else nullcontext():
                        identity.save(force_insert=True)
                    set_groups(user, groups)
            except IntegrityError:
                existing = self.lookup(claims)
                if existing is not None:
                    logger.debug("identity created by a concurrent request (identity id %s)", existing.pk)
                    return existing, False
                link = None
                continue  # the username is taken: try the next candidate
            logger.info("user created for a new identity (identity id %s, linked=%s)", identity.pk, link is not None)
            return identity, True
        raise IntegrityError("no free username for a new identity")

    def update(self, identity: Any, claims: Claims, values: dict[str, Any], fingerprint: str) -> bool:
        """Write the changed mapped fields onto the identity's user; return whether anything was written."""
        stored = identity.claims_issued_at
        if stored is not None and claims.issued_at is not None and claims.issued_at < stored:
            return False  # an older, still valid token must not roll back what a newer one wrote
        user = identity.user
        model = get_user_model()
        changed = [k for k, v in values.items() if k != model.USERNAME_FIELD and getattr(user, k) != v]
        try:
            with transaction.atomic():
                for k in changed:
                    setattr(user, k, values[k])
                if changed:
                    with sync_write(user):  # no lookup to forget the state the sync rewrites right after
                        user.save(update_fields=changed)
                set_groups(user, group_names(claims, self.settings))
                identity.fingerprint = fingerprint
                identity.claims_issued_at = claims.issued_at
                identity.save(update_fields=["fingerprint", "claims_issued_at", "updated_at"])
        except IntegrityError:
            # e.g. a unique e-mail field another user already holds: keep the user as it is.
            logger.warning("user fields not updated from claims: a unique value is taken (identity id %s)", identity.pk)
            user.refresh_from_db()
            return False
        return True

    def check_active(self, user: Any) -> None:
        """Raise :class:`~drf_oidc_jwks.exceptions.UserInactive` when the local user may not sign in."""
        if not user.is_active:
            raise UserInactive("is_active is False")

    # -- helpers a subclass may also override ------------------------------------------------

    def linkable_user(self, claims: Claims) -> Any:
        """Return the existing local user to attach a new identity to (only under ``LINK_BY_VERIFIED_EMAIL``)."""
        if not (self.settings.link_by_verified_email and claims.email_verified and claims.email):
            return None
        if "\x00" in claims.email:
            return None  # PostgreSQL text cannot hold NUL: such an address matches no one (and must not 500)
        from .models import OIDCIdentity

        model = get_user_model()
        email_field = model.get_email_field_name()
        matches = list(model._default_manager.filter(**{f"{email_field}__iexact": claims.email})[:2])
        if len(matches) != 1:
            return None  # none, or ambiguous: never guess
        user = matches[0]
        if getattr(user, "is_superuser", False):
            return None  # an e-mail claim never takes over a local superuser
        if OIDCIdentity.objects.filter(user=user, issuer=claims.issuer).exists():
            return None  # already linked to another account of this issuer
        return user

    def enrich(self, claims: Claims, values: dict[str, Any], token: str | None) -> dict[str, Any]:
        """Fill user fields the token leaves empty from the issuer's userinfo, when ``USERINFO`` is on."""
        s = self.settings
        issuer = s.issuer_for(claims.issuer)
        if issuer is None or not issuer.userinfo or s.userinfo_cache_ttl < 0:
            return values
        info = userinfo(claims, issuer, s, token)
        if not info:
            return values
        # The token wins where it says something; userinfo only fills what it leaves empty.
        merged = self.map_fields(Claims({**info, **claims.raw}, claims.paths))
        return {k: v if v not in (None, "") else merged.get(k, v) for k, v in values.items()}

    def fingerprint(self, claims: Claims) -> str:
        """Return the hash of everything the claims write onto the user, once per (memoised) Claims object."""
        return _fingerprints.get(
            claims, self, lambda: fingerprint_of(self.map_fields(claims), group_names(claims, self.settings))
        )

    # -- running them -------------------------------------------------------------------------

    def load(self, claims: Claims, identity: Any = _UNKNOWN, token: str | None = None) -> Any:
        """Return the Django user of (issuer, sub), created or updated as the claims say; UserInactive when refused.

        ``identity`` is the row already selected (None: known not to exist); ``token`` is the bearer, for userinfo.
        """
        return _retry_when_locked(lambda: self._load(claims, identity, token))

    def _load(self, claims: Claims, identity: Any, token: str | None) -> Any:
        s = self.settings
        iss, sub = claims.issuer or "", claims.sub or ""
        if identity is _UNKNOWN:
            identity = self.lookup(claims)
        if identity is None and claims.is_machine:
            set_state(s, iss, sub, NEW)  # the local user went away: a machine token never makes one
            return ServicePrincipal(claims)
        values = self.map_fields(claims)
        fp = fingerprint_of(values, group_names(claims, s))
        if identity is None or identity.fingerprint != fp:
            values = self.enrich(claims, values, token)  # only when something is to be written
        created = written = False
        if identity is None:
            identity, created = self.create(claims, values, fp)
        if not created and identity.fingerprint != fp:
            written = self.update(identity, claims, values, fp)
        user = identity.user
        refusal: UserInactive | None = None
        try:
            self.check_active(user)
        except UserInactive as exc:
            refusal = exc
        # The user itself is cached with its state, so the steady state reads no row even when the
        # view uses request.user; any save of the user or identity forgets it (user_state).
        set_state(s, iss, sub, INACTIVE if refusal else (ACTIVE, identity.fingerprint, user))
        if created or written:
            user_synced.send(sender=type(identity), user=user, identity=identity, created=created, claims=claims)
        if refusal is not None:
            raise refusal
        return user

    def resolve(self, claims: Claims, token: str | None = None) -> Any:
        """Refuse a deactivated local user; return the lazy ``request.user`` of (issuer, sub).

        A machine token whose subject has no local user is a :class:`ServicePrincipal`; one that has
        a local user is that user, so changing the token's shape never escapes the user's state.
        """
        s = self.settings
        if claims.is_machine and not _mappable(claims):
            return ServicePrincipal(claims)  # no identity can exist for such a subject
        _check_identity(claims)
        iss, sub = claims.issuer or "", claims.sub or ""
        state = get_state(s, iss, sub)
        if state == INACTIVE:
            raise UserInactive("is_active is False (cached)")
        if state == NEW and claims.is_machine:
            return ServicePrincipal(claims)
        if isinstance(state, tuple):
            if state[1] == self.fingerprint(claims):
                cached = state[2]  # up to date: no query even when the view uses it
                return SyncedUser(claims, lambda: private_copy(cached))  # this request's own copy
            return SyncedUser(claims, lambda: self.load(claims, token=token))
        if state in (ACTIVE, NEW):
            return SyncedUser(claims, lambda: self.load(claims, token=token))
        identity = _retry_when_locked(lambda: self.lookup(claims))
        if identity is None:
            return self._first_sight(claims, token)
        try:
            self.check_active(identity.user)
        except UserInactive:
            set_state(s, iss, sub, INACTIVE)
            raise
        if identity.fingerprint == self.fingerprint(claims):
            # The SELECT preloaded the user and nothing is to be written: cache it, hand it over loaded.
            user = identity.user
            set_state(s, iss, sub, (ACTIVE, identity.fingerprint, user))
            return SyncedUser(claims, lambda: user, loaded=True)  # this request's own object
        set_state(s, iss, sub, ACTIVE)
        return SyncedUser(claims, lambda: self.load(claims, identity, token))

    def _first_sight(self, claims: Claims, token: str | None) -> Any:
        iss, sub = claims.issuer or "", claims.sub or ""
        if claims.is_machine:
            set_state(self.settings, iss, sub, NEW)  # remembered: the steady state of a machine token reads nothing
            return ServicePrincipal(claims)
        if self.settings.link_by_verified_email and claims.email_verified and claims.email:
            # Linking may attach this identity to an existing, possibly inactive, user: decide now.
            user = self.load(claims, None, token)
            return SyncedUser(claims, lambda: user, loaded=True)
        set_state(self.settings, iss, sub, NEW)
        return SyncedUser(claims, lambda: self.load(claims, None, token))


# ---------------------------------------------------------------------------
# Entry points


_current_sync: dict[str, UserSync] = {}


def user_sync_class_path(s: Settings) -> str:
    """Return ``USER_SYNC_CLASS``, the dotted path of the :class:`UserSync` to use (the built-in by default)."""
    return s.user_sync_class


def import_user_sync_class(path: str) -> type[UserSync]:
    """Import the user sync class at ``path``; ImproperlyConfigured naming ``USER_SYNC_CLASS`` when it is not one."""
    if path == DEFAULT_USER_SYNC_CLASS:
        return UserSync
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"DRF_OIDC_JWKS: USER_SYNC_CLASS {path!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, UserSync)):
        raise ImproperlyConfigured(f"DRF_OIDC_JWKS: USER_SYNC_CLASS {path!r} is not a subclass of UserSync.")
    return cls


def get_user_sync(s: Settings | None = None) -> UserSync:
    """Return the user sync for the settings (one instance per settings object)."""
    s = s or get_settings()
    sync = _current_sync.get("sync")
    if sync is None or sync.settings is not s:
        sync = import_user_sync_class(user_sync_class_path(s))(s)
        _current_sync["sync"] = sync
    return sync


def mapped_values(claims: Claims, s: Settings | None = None) -> dict[str, Any]:
    """Return the user field values the claims map to, as the user sync maps them."""
    return get_user_sync(s).map_fields(claims)


def fingerprint(claims: Claims, s: Settings | None = None) -> str:
    """Return the hash of everything the claims write onto the user; equal hashes mean nothing to write."""
    return get_user_sync(s).fingerprint(claims)


def load_user(claims: Claims, identity: Any = _UNKNOWN, token: str | None = None) -> Any:
    """Return the Django user of (issuer, sub), created or updated as the claims say; TokenError when inactive."""
    return get_user_sync().load(claims, identity, token)


def resolve_user(claims: Claims, s: Settings | None = None, token: str | None = None) -> Any:
    """Refuse a locally deactivated user, and return the lazy ``request.user`` of (issuer, sub)."""
    return get_user_sync(s).resolve(claims, token)


def get_user(claims: Claims, token: str | None = None) -> Any:
    """Return the user for verified claims: a service principal, a ``TokenUser`` or a synced user.

    ``token`` is the bearer the claims came from, presented to the issuer's userinfo when ``USERINFO`` is on.
    """
    s = get_settings()
    if not s.sync_users:
        # Client credentials: no person behind the token, so no user row (docs/users.md).
        return ServicePrincipal(claims) if claims.is_machine else TokenUser(claims)
    return get_user_sync(s).resolve(claims, token)
