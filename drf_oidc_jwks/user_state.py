"""The cached state of each identity (issuer, sub): per process and in the shared cache, and what forgets it.

Authentication refuses a locally deactivated user on every request, so the state of an identity
(:data:`INACTIVE`, :data:`NEW` for "no identity yet", :data:`ACTIVE`, or ``(ACTIVE, fingerprint, user)``
once the user was loaded) is kept in ``USER_CACHE_ALIAS`` for ``USER_CACHE_TTL`` seconds, with a
per-process copy in front for ``USER_LOCAL_CACHE_TTL`` seconds. Saving or deleting a user or an
identity forgets it (:func:`connect_receivers`).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction
from django.db.models.signals import post_delete, post_save

from .conf import Settings, get_settings, register_reset

logger = logging.getLogger("drf_oidc_jwks")

ACTIVE, INACTIVE, NEW = "active", "inactive", "new"
#: ``"inactive"``, ``"new"``, ``"active"``, or ``("active", fingerprint, user)``.
State = str | tuple[str, str, Any]


def identity_digest(issuer: str, subject: str) -> str:
    """Return a short hash of (issuer, subject): bounded, and safe for memcached's key rules whatever it holds."""
    return hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()[:40]


def state_key(issuer: str, subject: str) -> str:
    """Return the shared-cache key of the state of (issuer, subject)."""
    return f"drf_oidc_jwks:user:{identity_digest(issuer, subject)}"


# In front of the shared cache, each process keeps what it read for ``USER_LOCAL_CACHE_TTL`` seconds:
# the shared read is a network round trip on every request otherwise. A save in this process forgets
# the local entry at once; a save in another process reaches this one within that many seconds.
_local_states: dict[str, tuple[float, State]] = {}
_LOCAL_MAX = 10_000


def reset_local_states() -> None:
    """Forget this process's copies of user states (settings changed, or tests)."""
    _local_states.clear()


register_reset("users.local_states", reset_local_states)


def _private_copy(value: State) -> State:
    # The process keeps its own copy of a cached user, and each request copies it again on first use
    # (SyncedUser): a view mutating request.user must not change what the next request sees.
    if isinstance(value, tuple):
        return (value[0], value[1], copy.copy(value[2]))
    return value


def get_state(s: Settings, key: str) -> State | None:
    """Return the cached state under ``key``, or None when nothing (usable) is cached."""
    if s.user_cache_ttl <= 0:
        return None
    if s.user_local_cache_ttl > 0:
        local = _local_states.get(key)
        if local is not None and local[0] > time.monotonic():
            return local[1]
    try:
        value = caches[s.user_cache_alias].get(key)
    except Exception:  # noqa: BLE001 - a broken cache means asking the database, never a 500
        logger.warning("user state cache unavailable; reading the database")
        return None
    if isinstance(value, tuple) and len(value) == 3 and value[0] == ACTIVE:
        _remember_locally(s, key, value)  # freshly unpickled: nobody else holds it
        return value
    if value in (ACTIVE, INACTIVE, NEW):
        _remember_locally(s, key, value)
        return str(value)
    return None


def _remember_locally(s: Settings, key: str, state: State) -> None:
    if s.user_local_cache_ttl <= 0:
        return
    while len(_local_states) >= _LOCAL_MAX:
        try:
            _local_states.pop(next(iter(_local_states)))
        except (KeyError, StopIteration, RuntimeError):
            break
    _local_states[key] = (time.monotonic() + min(s.user_local_cache_ttl, s.user_cache_ttl), state)


def set_state(s: Settings, key: str, state: State) -> None:
    """Cache ``state`` under ``key``, in this process and in the shared cache."""
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
    key = state_key(issuer, subject)

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


def _identities() -> Any:
    # Looked up through the app registry: models.py connects these receivers (see connect_receivers).
    return apps.get_model("drf_oidc_jwks", "OIDCIdentity")


def forget_user(user: Any) -> None:
    """Drop the cached state of every identity of ``user`` (after a bulk ``update()`` that sent no signal)."""
    for issuer, subject in _identities().objects.filter(user_id=user.pk).values_list("issuer", "subject"):
        forget_identity(issuer, subject)


# ---------------------------------------------------------------------------
# The sync's own writes, and the receivers


_writing = threading.local()


@contextmanager
def sync_write(user: Any) -> Iterator[None]:
    """Mark saves of ``user`` inside the block as the sync's own: it caches the new state itself right after."""
    ids: set[int] = getattr(_writing, "ids", None) or set()
    _writing.ids = ids
    ids.add(id(user))
    try:
        yield
    finally:
        ids.discard(id(user))


def is_sync_write(user: Any) -> bool:
    """Say whether ``user`` is being saved by the sync itself (inside :func:`sync_write`)."""
    return id(user) in (getattr(_writing, "ids", None) or ())


def _identity_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    forget_identity(instance.issuer, instance.subject)


def _user_changed(sender: Any, instance: Any, created: bool = False, update_fields: Any = None, **kwargs: Any) -> None:
    if is_sync_write(instance):
        return  # the sync's own write: it stores the new state and user itself, right after
    if created or kwargs.get("raw") or (update_fields is not None and set(update_fields) <= {"last_login"}):
        # A new user has no identity yet, fixtures load raw rows; a last_login stamp changes nothing
        # worth a query. Any other save may change what the cached user says (is_active, names, flags).
        return
    try:
        if get_settings().user_cache_ttl <= 0:
            return  # nothing is cached
    except ImproperlyConfigured:
        return
    try:
        # A savepoint: a data migration may save users before this app's table exists, and a
        # failed query must not abort the caller's transaction.
        using = kwargs.get("using") or "default"
        with transaction.atomic(using=using):
            rows = _identities().objects.using(using).filter(user_id=instance.pk)
            keys = list(rows.values_list("issuer", "subject"))
    except DatabaseError:
        return
    for issuer, subject in keys:
        forget_identity(issuer, subject)


def connect_receivers() -> None:
    """Forget a cached state whenever its user or identity is saved or deleted (idempotent)."""
    # String senders: the user model may not be loaded yet when this runs.
    identity = "drf_oidc_jwks.OIDCIdentity"
    post_save.connect(_identity_changed, sender=identity, dispatch_uid="drf_oidc_jwks.identity_saved")
    post_delete.connect(_identity_changed, sender=identity, dispatch_uid="drf_oidc_jwks.identity_deleted")
    user_model = django_settings.AUTH_USER_MODEL
    post_save.connect(_user_changed, sender=user_model, dispatch_uid="drf_oidc_jwks.user_saved")
