"""``request.user`` from verified claims: a lazily synced Django user, a DB-free ``TokenUser``, or a service principal.

With ``SYNC_USERS`` (the default) ``request.user`` is a :class:`SyncedUser`: a lazy
object that answers ``is_authenticated`` at once and reads or writes the database
only when something uses the user. The identity is (issuer, sub), kept in
:class:`~drf_oidc_jwks.models.OIDCIdentity`; the user row is written only when
the fingerprint of the mapped claims changed.

Refusing a locally deactivated user must not wait for the user to be used, so
authentication checks ``is_active`` every time: from a small state entry in
Django's cache (``USER_CACHE_TTL`` seconds, forgotten as soon as the user or the
identity is saved or deleted) or, on a miss, with one SELECT that also preloads
the user. See docs/users.md for the trade-offs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.utils.functional import SimpleLazyObject

from .claims import CLAIM_ATTRIBUTES, Claims
from .conf import PROTECTED_FIELDS, IssuerSettings, Settings, get_settings, register_reset, url_allowed
from .exceptions import InvalidToken, KeySourceError, MalformedToken, MissingClaim, TokenError, UserInactive
from .jwks import get_client
from .signals import user_synced

logger = logging.getLogger("drf_oidc_jwks")

_ACTIVE, _INACTIVE, _NEW = "active", "inactive", "new"
_UNKNOWN: Any = object()
_MAX_ID = 255  # OIDCIdentity.issuer / .subject


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


# ---------------------------------------------------------------------------
# The cached active state of an identity


def _state_key(issuer: str, subject: str) -> str:
    # Hashed: bounded, and safe for memcached's key rules whatever the subject holds.
    digest = hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()[:40]
    return f"drf_oidc_jwks:user:{digest}"


# In front of the shared cache, each process keeps what it read for ``USER_LOCAL_CACHE_TTL`` seconds:
# the shared read is a network round trip on every request otherwise. A save in this process forgets
# the local entry at once; a save in another process reaches this one within that many seconds.
_local_states: dict[str, tuple[float, Any]] = {}
_LOCAL_MAX = 10_000


def reset_local_states() -> None:
    """Forget this process's copies of user states (settings changed, or tests)."""
    _local_states.clear()


register_reset("users.local_states", reset_local_states)


def _private_copy(value: Any) -> Any:
    # The process keeps its own copy of a cached user, and each request copies it again on first use
    # (SyncedUser): a view mutating request.user must not change what the next request sees.
    if isinstance(value, tuple):
        return (value[0], value[1], copy.copy(value[2]))
    return value


def _state_get(s: Settings, key: str) -> str | tuple[str, str, Any] | None:
    """The cached state: ``"inactive"``, ``"new"``, or ``("active", fingerprint, user)``."""
    if s.user_cache_ttl <= 0:
        return None
    if s.user_local_cache_ttl > 0:
        local = _local_states.get(key)
        if local is not None and local[0] > time.monotonic():
            return local[1]  # type: ignore[no-any-return]
    try:
        value = caches[s.user_cache_alias].get(key)
    except Exception:  # noqa: BLE001 - a broken cache means asking the database, never a 500
        logger.warning("user state cache unavailable; reading the database")
        return None
    if isinstance(value, tuple) and len(value) == 3 and value[0] == _ACTIVE:
        _remember_locally(s, key, value)  # freshly unpickled: nobody else holds it
        return value
    if isinstance(value, str):
        _remember_locally(s, key, value)
        return value
    return None


def _remember_locally(s: Settings, key: str, state: Any) -> None:
    if s.user_local_cache_ttl <= 0:
        return
    while len(_local_states) >= _LOCAL_MAX:
        try:
            _local_states.pop(next(iter(_local_states)))
        except (KeyError, StopIteration, RuntimeError):
            break
    _local_states[key] = (time.monotonic() + min(s.user_local_cache_ttl, s.user_cache_ttl), state)


def _state_set(s: Settings, key: str, state: str | tuple[str, str, Any]) -> None:
    if s.user_cache_ttl <= 0:
        return
    _remember_locally(s, key, _private_copy(state))
    try:
        caches[s.user_cache_alias].set(key, state, timeout=s.user_cache_ttl)
    except Exception:  # noqa: BLE001
        logger.warning("user state cache unavailable; not caching")


def forget_identity(issuer: str, subject: str) -> None:
    """Drop the cached state of (issuer, subject), now and again when the current transaction commits."""
    try:
        s = get_settings()
    except ImproperlyConfigured:
        return
    if s.user_cache_ttl <= 0:
        return
    key = _state_key(issuer, subject)

    def delete() -> None:
        _local_states.pop(key, None)
        try:
            caches[s.user_cache_alias].delete(key)
        except Exception:  # noqa: BLE001
            logger.warning("user state cache unavailable; could not forget a user's state")

    delete()
    # A request that read the row before this transaction commits may cache the old state;
    # deleting again after the commit closes that window.
    transaction.on_commit(delete)


def forget_user(user: Any) -> None:
    """Drop the cached state of every identity of ``user`` (after a bulk ``update()`` that sent no signal)."""
    from .models import OIDCIdentity

    for issuer, subject in OIDCIdentity.objects.filter(user_id=user.pk).values_list("issuer", "subject"):
        forget_identity(issuer, subject)


# ---------------------------------------------------------------------------
# Mapping claims onto the user


def _user_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
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


def mapped_values(claims: Claims, s: Settings | None = None) -> dict[str, Any]:
    """Return the user field values the claims map to (``USER_FIELDS``, ``STAFF_ROLES``, ``SUPERUSER_ROLES``)."""
    s = s or get_settings()
    model = get_user_model()
    values: dict[str, Any] = {}
    for name, source in s.user_fields.items():
        if name in PROTECTED_FIELDS:
            raise ImproperlyConfigured(
                f"DRF_OIDC_JWKS: USER_FIELDS may not write {name!r}; "
                "use STAFF_ROLES / SUPERUSER_ROLES for the admin flags, is_active and passwords stay local."
            )
        values[name] = _coerce(_user_field(model, name), _claim_value(claims, source))
    if s.staff_roles:
        _user_field(model, "is_staff")
        values["is_staff"] = bool(claims.roles & s.staff_roles)
    if s.superuser_roles:
        _user_field(model, "is_superuser")
        values["is_superuser"] = bool(claims.roles & s.superuser_roles)
    return values


def _group_names(claims: Claims, s: Settings) -> list[str] | None:
    if not s.sync_groups:
        return None
    from django.contrib.auth.models import Group

    limit = Group._meta.get_field("name").max_length or 150  # type: ignore[union-attr]
    return sorted(r for r in claims.roles if len(r) <= limit and "\x00" not in r)


def _fingerprint(values: dict[str, Any], groups: list[str] | None) -> str:
    data = {"fields": values, "groups": groups}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(claims: Claims, s: Settings | None = None) -> str:
    """Return the hash of everything the claims write onto the user; equal hashes mean nothing to write."""
    s = s or get_settings()
    cached = claims._derived.get("fingerprint")
    if cached is not None and cached[0] is s:
        return str(cached[1])
    fp = _fingerprint(mapped_values(claims, s), _group_names(claims, s))
    claims._derived["fingerprint"] = (s, fp)
    return fp


def _set_groups(user: Any, names: list[str] | None) -> None:
    if names is None or not hasattr(user, "groups"):
        return
    from django.contrib.auth.models import Group

    groups = [Group.objects.get_or_create(name=name)[0] for name in names]
    user.groups.set(groups)


# ---------------------------------------------------------------------------
# Loading, creating and updating


def _select(claims: Claims) -> Any:
    from .models import OIDCIdentity

    try:
        return OIDCIdentity.objects.select_related("user").get(issuer=claims.issuer, subject=claims.sub)
    except OIDCIdentity.DoesNotExist:
        return None


def _usernames(claims: Claims, values: dict[str, Any], field: models.Field[Any, Any]) -> Iterator[str]:
    """Candidate usernames: the preferred one, then one made unique by the identity, then random ones."""
    name = field.name
    base = values.get(name) or claims.username or claims.email or claims.sub or "user"
    base = str(base).replace("\x00", "")  # PostgreSQL text cannot hold NUL
    limit = field.max_length or 150
    yield base[:limit]
    # Deterministic for an identity, so concurrent first requests of one subject pick the same name
    # (and collide on the identity), while another subject with the same preferred name gets its own.
    digest = hashlib.sha256(f"{claims.issuer}\x00{claims.sub}".encode()).hexdigest()[:10]
    yield f"{base[: limit - 11]}.{digest}"
    for _ in range(3):
        yield f"{base[: limit - 13]}.{secrets.token_hex(6)}"


def _linkable_user(claims: Claims, s: Settings) -> Any:
    """The existing local user to attach a new identity to, only under LINK_BY_VERIFIED_EMAIL."""
    if not (s.link_by_verified_email and claims.email_verified and claims.email):
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


def _create(claims: Claims, s: Settings, values: dict[str, Any], fp: str) -> tuple[Any, bool]:
    """Create the identity (and user); return (identity, created). Safe against concurrent first requests."""
    from .models import OIDCIdentity

    model = get_user_model()
    username_field = _user_field(model, model.USERNAME_FIELD)
    link = _linkable_user(claims, s)
    groups = _group_names(claims, s)
    candidates = _usernames(claims, values, username_field)
    for username in candidates:
        try:
            with transaction.atomic():
                if link is not None:
                    user = link
                    changed = [k for k, v in values.items() if k != username_field.name and getattr(user, k) != v]
                    for k in changed:
                        setattr(user, k, values[k])
                    if changed:
                        user.save(update_fields=changed)
                else:
                    fields = {k: v for k, v in values.items() if k != username_field.name}
                    user = model(**{username_field.name: username}, **fields)
                    user.set_unusable_password()
                    user.save()
                identity = OIDCIdentity.objects.create(
                    issuer=claims.issuer,
                    subject=claims.sub,
                    user=user,
                    fingerprint=fp,
                    claims_issued_at=claims.issued_at,
                )
                _set_groups(user, groups)
        except IntegrityError:
            existing = _select(claims)
            if existing is not None:
                logger.debug("identity created by a concurrent request (identity id %s)", existing.pk)
                return existing, False
            link = None
            continue  # the username is taken: try the next candidate
        logger.info("user created for a new identity (identity id %s, linked=%s)", identity.pk, link is not None)
        return identity, True
    raise IntegrityError("no free username for a new identity")


def _update(identity: Any, claims: Claims, s: Settings, values: dict[str, Any], fp: str) -> bool:
    """Write changed mapped fields; return whether anything was written."""
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
                user._drf_oidc_jwks_syncing = True  # models._user_changed: no lookup to forget what we rewrite
                try:
                    user.save(update_fields=changed)
                finally:
                    del user._drf_oidc_jwks_syncing
            _set_groups(user, _group_names(claims, s))
            identity.fingerprint = fp
            identity.claims_issued_at = claims.issued_at
            identity.save(update_fields=["fingerprint", "claims_issued_at", "updated_at"])
    except IntegrityError:
        # e.g. a unique e-mail field another user already holds: keep the user as it is.
        logger.warning("user fields not updated from claims: a unique value is taken (identity id %s)", identity.pk)
        user.refresh_from_db()
        return False
    return True


_T = TypeVar("_T")
_LOCK_RETRY_SECONDS = 3.0


def _retry_when_locked(operation: Callable[[], _T]) -> _T:
    """Run ``operation``, retrying briefly while SQLite reports a lock instead of waiting for it.

    SQLite answers some contention with an immediate ``OperationalError`` ("database is locked",
    "database table is locked": shared-cache databases, deferred transactions upgrading) rather
    than its busy timeout; concurrent first requests must still get their user, not a 500.
    Every retried step is a whole atomic block or a read, so running it again is safe.
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


def load_user(claims: Claims, identity: Any = _UNKNOWN) -> Any:
    """Return the Django user of (issuer, sub), created or updated as the claims say; TokenError when inactive.

    ``identity`` is the row already selected (None: known not to exist), to save a query.
    """
    return _retry_when_locked(lambda: _load_user(claims, identity))


def _load_user(claims: Claims, identity: Any) -> Any:
    s = get_settings()
    if identity is _UNKNOWN:
        identity = _select(claims)
    values = mapped_values(claims, s)
    fp = _fingerprint(values, _group_names(claims, s))
    if identity is None or identity.fingerprint != fp:
        values = _enrich(claims, s, values)  # only when something is to be written
    created = written = False
    if identity is None:
        identity, created = _create(claims, s, values, fp)
    if not created and identity.fingerprint != fp:
        written = _update(identity, claims, s, values, fp)
    user = identity.user
    # The user itself is cached with its state, so the steady state reads no row even when the
    # view uses request.user; any save of the user or identity forgets it (models.py).
    state = (_ACTIVE, identity.fingerprint, user) if user.is_active else _INACTIVE
    _state_set(s, _state_key(claims.issuer or "", claims.sub or ""), state)
    if created or written:
        user_synced.send(sender=type(identity), user=user, identity=identity, created=created, claims=claims)
    if not user.is_active:
        raise UserInactive("is_active is False")
    return user


class SyncedUser(SimpleLazyObject):  # type: ignore[type-arg]
    """``request.user`` with ``SYNC_USERS``: the Django user of (issuer, sub), loaded on first real use.

    ``is_authenticated``, ``is_anonymous``, truth and ``claims`` need no database; any other
    attribute loads (creating or updating) the user.
    """

    is_authenticated = True
    is_anonymous = False

    def __init__(self, claims: Claims, identity: Any = _UNKNOWN, cached: Any = None) -> None:
        def setup() -> Any:
            if cached is not None:
                return copy.copy(cached)  # from the user cache: this request's own copy, no query
            try:
                return load_user(claims, identity)
            except TokenError as exc:
                # Loaded inside a view, after authentication: answer as authentication would.
                raise InvalidToken(exc.description, exc.code) from None

        super().__init__(setup)
        self.__dict__["claims"] = claims

    def __bool__(self) -> bool:
        return True

    @property
    def is_loaded(self) -> bool:
        """Whether the user has been read from the database yet."""
        from django.utils.functional import empty

        return self._wrapped is not empty


def resolve_user(claims: Claims, s: Settings | None = None) -> SyncedUser:
    """Refuse a locally deactivated user, and return the lazy ``request.user`` of (issuer, sub)."""
    s = s or get_settings()
    if not claims.sub or not claims.issuer:
        raise MissingClaim("no subject to map a user to", description="The token lacks the 'sub' claim.")
    if len(claims.sub) > _MAX_ID or len(claims.issuer) > _MAX_ID:
        # OIDC Core caps sub at 255 characters; a longer one must not become a database error.
        raise MalformedToken("sub or iss longer than 255 characters")
    if "\x00" in claims.sub:
        # OIDC Core: sub is ASCII, and PostgreSQL text cannot hold NUL (a DataError, a 500).
        raise MalformedToken("sub holds a NUL character")
    key = _state_key(claims.issuer, claims.sub)
    state = _state_get(s, key)
    if state == _INACTIVE:
        raise UserInactive("is_active is False (cached)")
    if isinstance(state, tuple):
        if state[1] == fingerprint(claims, s):
            return SyncedUser(claims, cached=state[2])  # up to date: no query even when the view uses it
        return SyncedUser(claims)
    if state in (_ACTIVE, _NEW):
        return SyncedUser(claims)
    identity = _retry_when_locked(lambda: _select(claims))
    if identity is None:
        if s.link_by_verified_email and claims.email_verified and claims.email:
            # Linking may attach this identity to an existing, possibly inactive, user: decide now.
            user = load_user(claims, None)
            lazy = SyncedUser(claims)
            lazy._wrapped = user
            return lazy
        _state_set(s, key, _NEW)
        return SyncedUser(claims, None)
    if not identity.user.is_active:
        _state_set(s, key, _INACTIVE)
        raise UserInactive("is_active is False")
    if identity.fingerprint == fingerprint(claims, s):
        # The SELECT preloaded the user and nothing is to be written: cache it, hand it over loaded.
        _state_set(s, key, (_ACTIVE, identity.fingerprint, identity.user))
        lazy = SyncedUser(claims, identity)
        lazy._wrapped = identity.user  # this request's own object (the cache holds copies)
        return lazy
    _state_set(s, key, _ACTIVE)
    return SyncedUser(claims, identity)


def get_user(claims: Claims) -> Any:
    """Return the user for verified claims: a service principal, a ``TokenUser`` or a synced user."""
    if claims.is_machine:
        # Client credentials: no person behind the token, so no user row (docs/users.md).
        return ServicePrincipal(claims)
    s = get_settings()
    if not s.sync_users:
        return TokenUser(claims)
    return resolve_user(claims, s)


# ---------------------------------------------------------------------------
# Userinfo enrichment (per-issuer ``USERINFO``)


def _userinfo_url(issuer: IssuerSettings, s: Settings) -> str | None:
    if issuer.userinfo_url:
        return issuer.userinfo_url
    try:
        doc = get_client(issuer).discovery()
    except KeySourceError as exc:
        logger.warning("userinfo: discovery failed: %s", exc.reason)
        return None
    url = doc.get("userinfo_endpoint")
    return url if isinstance(url, str) and url_allowed(url, s.allow_insecure_http) else None


def userinfo(claims: Claims, issuer: IssuerSettings, s: Settings) -> dict[str, Any] | None:
    """Return the issuer's userinfo for the presented token, cached per subject; None when it cannot be had.

    Never raises: enrichment is best effort and must not refuse an otherwise valid token.
    """
    key = "drf_oidc_jwks:userinfo:" + _state_key(claims.issuer or "", claims.sub or "").rsplit(":", 1)[1]
    cache = caches[s.user_cache_alias]
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001
        cached = None
    if isinstance(cached, dict):
        return cached
    token = claims._derived.get("bearer")
    url = _userinfo_url(issuer, s) if token else None
    if not url:
        return None
    from .jwks import http_fetch

    try:
        result = http_fetch(
            url,
            timeout=s.http_timeout,
            max_bytes=s.jwks_max_bytes,
            allow_insecure_http=s.allow_insecure_http,
            headers={"Authorization": f"Bearer {token}"},
        )
    except KeySourceError as exc:
        logger.warning("userinfo request failed: %s", exc.reason)
        return None
    info = result.document
    if not isinstance(info, dict) or info.get("sub") != claims.sub:
        # OIDC Core 5.3.4: a response for another subject must not be used.
        logger.warning("userinfo response ignored: not an object for the token's subject")
        return None
    try:
        cache.set(key, info, timeout=max(1, int(s.userinfo_cache_ttl)))
    except Exception:  # noqa: BLE001
        logger.warning("userinfo cache unavailable; not caching")
    return info


def _enrich(claims: Claims, s: Settings, values: dict[str, Any]) -> dict[str, Any]:
    """Fill user fields the token leaves empty from the issuer's userinfo, when ``USERINFO`` is on."""
    issuer = s.issuer_for(claims.issuer)
    if issuer is None or not issuer.userinfo or s.userinfo_cache_ttl < 0:
        return values
    info = userinfo(claims, issuer, s)
    if not info:
        return values
    # The token wins where it says something; userinfo only fills what it leaves empty.
    merged = mapped_values(Claims({**info, **claims.raw}, claims.paths), s)
    return {k: v if v not in (None, "") else merged.get(k, v) for k, v in values.items()}
