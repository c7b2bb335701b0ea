"""The cached state of each identity (issuer, sub): per process and in the shared cache, and what forgets it.

Authentication refuses a locally deactivated user on every request, so the state of an identity
(:data:`INACTIVE`, :data:`NEW` for "no identity yet", :data:`ACTIVE`, or ``(ACTIVE, fingerprint, user)``
once the user was loaded) is kept in ``USER_CACHE_ALIAS`` for ``USER_CACHE_TTL`` seconds, with a copy in
each process (:class:`LocalStates`, at most ``USER_LOCAL_CACHE_SIZE``) that lives as long, unless the
shared generation counter moves: each process reads it at most every ``USER_LOCAL_CACHE_TTL`` seconds.
Saving or deleting a user or an identity forgets its state and bumps the counter (:func:`connect_receivers`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
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


# In front of the shared cache, each process keeps what it read (LocalStates): the shared read is a
# network round trip otherwise. Any change that matters bumps a shared generation counter; each process
# reads the counter at most every USER_LOCAL_CACHE_TTL seconds and drops all its copies when it moved.
GENERATION_KEY = "drf_oidc_jwks:user:generation"
Identity = tuple[str, str]
#: ``revalidate(settings, identities) -> {identity: state}``, the identities found in the database.
Revalidator = Callable[[Settings, list[Identity]], dict[Identity, State]]
#: At most this many copies are revalidated per check (the rest are read again one by one when they expire).
REVALIDATE_MAX = 5000


def private_copy(user: Any) -> Any:
    """Return a copy of a model instance with its own, empty caches (``copy.copy`` without pickling's detour).

    A view mutating ``request.user`` (or filling its related-object caches) must not change what the
    next request sees.
    """
    cls: Any = type(user)
    new = cls.__new__(cls)
    values = user.__dict__.copy()
    state = values.get("_state")
    if state is not None:
        fresh = type(state)()
        fresh.__dict__.update(state.__dict__)
        fresh.__dict__.pop("fields_cache", None)  # related objects: read again, like a fresh instance
        values["_state"] = fresh
    values.pop("_prefetched_objects_cache", None)
    new.__dict__.update(values)
    return new


def _private_state(value: State) -> State:
    if isinstance(value, tuple):
        return (value[0], value[1], private_copy(value[2]))
    return value


class LocalStates:
    """This process's copies of identity states: LRU-bounded, dropped together when the shared generation moves.

    While the counter cannot be read (the shared cache is down), a copy serves at most
    ``USER_LOCAL_CACHE_TTL`` seconds after it was stored, as if every check had seen a change.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.clock, self.wall = clock, wall
        #: identity -> (expires, stored, state), both monotonic; oldest use first.
        self.entries: OrderedDict[Identity, tuple[float, float, State]] = OrderedDict()
        self.generation: Any = None
        self.confirmed = False
        self.next_check = float("-inf")
        #: Reads of the shared counter (tests and the benchmark count them).
        self.checks = 0
        #: Reads the states of identities from the database in batches (set by the app, see user_refresh).
        self.revalidator: Revalidator | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        """Forget every copy, and check the counter again on the next use."""
        self.entries.clear()
        self.next_check = float("-inf")

    def get(self, s: Settings, identity: Identity) -> State | None:
        """Return this process's copy of the state of ``identity``, or None."""
        now = self.clock()
        if now >= self.next_check:
            self.check(s, now)
        entry = self.entries.get(identity)
        if entry is None:
            return None
        if entry[0] <= now or (not self.confirmed and entry[1] + s.user_local_cache_ttl <= now):
            self.entries.pop(identity, None)
            return None
        try:
            self.entries.move_to_end(identity)
        except KeyError:  # dropped by another thread meanwhile: the copy read is still good
            pass
        return entry[2]

    def put(self, s: Settings, identity: Identity, state: State, written_at: float) -> None:
        """Keep ``state``, read from the database at wall time ``written_at``, until ``USER_CACHE_TTL`` after that."""
        now = self.clock()
        if now >= self.next_check:
            self.check(s, now)  # before storing: a first check must not drop what was just read
        expires = now + min(s.user_cache_ttl, written_at + s.user_cache_ttl - self.wall())
        self.entries[identity] = (expires, now, state)
        self.entries.move_to_end(identity)
        while len(self.entries) > s.user_local_cache_size:
            try:
                self.entries.popitem(last=False)
            except KeyError:
                break

    def pop(self, identity: Identity) -> None:
        """Forget the copy of ``identity``."""
        self.entries.pop(identity, None)

    def check(self, s: Settings, now: float) -> None:
        """Read the shared generation counter; drop every copy when it moved (or vanished)."""
        self.next_check = now + s.user_local_cache_ttl
        self.checks += 1
        try:
            cache = caches[s.user_cache_alias]
            value = cache.get(GENERATION_KEY)
            if value is None:  # never set, evicted or flushed: whatever was seen before means nothing now
                cache.add(GENERATION_KEY, secrets.randbits(62), timeout=None)
                value = cache.get(GENERATION_KEY)
        except Exception:  # noqa: BLE001 - a broken cache must not fail the request
            logger.warning("user state cache unavailable; copies of user states serve USER_LOCAL_CACHE_TTL at most")
            self.confirmed = False
            return
        if value is None or value != self.generation:
            self.entries.clear()
        self.generation, self.confirmed = value, value is not None
        if self.confirmed and self.revalidator is not None:
            self.revalidate_due(s, now)

    def revalidate_due(self, s: Settings, now: float) -> None:
        """Read again from the database, in batches, the copies that would expire before the next two checks."""
        horizon = now + 2 * s.user_local_cache_ttl
        entries = list(self.entries.items())
        due = [i for i, (expires, _, state) in entries if expires <= horizon and state not in (ACTIVE, NEW)]
        if not due or self.revalidator is None:
            return
        due = due[:REVALIDATE_MAX]
        try:
            fresh = self.revalidator(s, due)
        except DatabaseError:
            logger.warning("user states could not be revalidated; each is read again when it expires")
            return
        written_at = self.wall()
        for identity in due:
            state = fresh.get(identity)
            if state is None:
                self.pop(identity)  # no identity any more (deleted without a signal)
            else:
                self.put(s, identity, state, written_at)


_local = LocalStates()


def local_states() -> LocalStates:
    """Return this process's copies of identity states."""
    return _local


def reset_local_states() -> None:
    """Forget this process's copies of user states (settings changed, or tests)."""
    _local.clear()


register_reset("users.local_states", reset_local_states)


def bump_generation(s: Settings) -> None:
    """Have every process drop its copies of user states at its next check (within ``USER_LOCAL_CACHE_TTL``)."""
    cache = caches[s.user_cache_alias]
    try:
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:  # missing: a new random value differs from whatever a process saw before
            cache.add(GENERATION_KEY, secrets.randbits(62), timeout=None)
    except Exception:  # noqa: BLE001
        logger.warning("user state cache unavailable; other processes see this change after USER_CACHE_TTL")


def get_state(s: Settings, issuer: str, subject: str) -> State | None:
    """Return the cached state of (issuer, subject), or None when nothing (usable) is cached."""
    if s.user_cache_ttl <= 0:
        return None
    identity = (issuer, subject)
    local = s.user_local_cache_ttl > 0
    if local:
        copied = _local.get(s, identity)
        if copied is not None:
            return copied
    try:
        value = caches[s.user_cache_alias].get(state_key(issuer, subject))
    except Exception:  # noqa: BLE001 - a broken cache means asking the database, never a 500
        logger.warning("user state cache unavailable; reading the database")
        return None
    written_at = _local.wall()
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], float):
        written_at, value = value
    if isinstance(value, tuple) and len(value) == 3 and value[0] == ACTIVE:
        state: State = value  # freshly unpickled: nobody else holds it
    elif value in (ACTIVE, INACTIVE, NEW):
        state = str(value)
    else:
        return None
    if local:
        _local.put(s, identity, state, written_at)
    return state


def set_state(s: Settings, issuer: str, subject: str, state: State) -> None:
    """Cache ``state`` of (issuer, subject), just read from the database, in this process and in the shared cache."""
    if s.user_cache_ttl <= 0:
        return
    written_at = _local.wall()
    if s.user_local_cache_ttl > 0:
        _local.put(s, (issuer, subject), _private_state(state), written_at)
    try:
        caches[s.user_cache_alias].set(state_key(issuer, subject), (written_at, state), timeout=s.user_cache_ttl)
    except Exception:  # noqa: BLE001
        logger.warning("user state cache unavailable; not caching")


def forget_identity(issuer: str, subject: str, *, everywhere: bool = True) -> None:
    """Drop the cached state of (issuer, subject), now and again when the current transaction commits.

    ``everywhere`` also bumps the shared generation, so every other process drops its copies too.
    """
    try:
        s = get_settings()
    except ImproperlyConfigured:
        return
    if s.user_cache_ttl <= 0:
        return
    key = state_key(issuer, subject)

    def delete() -> None:
        _local.pop((issuer, subject))
        try:
            caches[s.user_cache_alias].delete(key)
        except Exception:  # noqa: BLE001
            logger.warning("user state cache unavailable; could not forget a user's state")
        if everywhere:
            bump_generation(s)

    delete()
    # A request that read the row before this transaction commits may cache the old state;
    # deleting (and bumping) again after the commit closes that window.
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


def _sync_writing(user: Any) -> Iterator[None]:
    """Mark saves of ``user`` inside the block as the sync's own: it caches the new state itself right after."""
    ids: set[int] = getattr(_writing, "ids", None) or set()
    _writing.ids = ids
    ids.add(id(user))
    try:
        yield
    finally:
        ids.discard(id(user))


#: ``with sync_write(user):`` (:func:`_sync_writing` wrapped, not decorated: mutmut mutates no decorated function).
sync_write = contextmanager(_sync_writing)


def is_sync_write(user: Any) -> bool:
    """Say whether ``user`` is being saved by the sync itself (inside :func:`sync_write`)."""
    return id(user) in (getattr(_writing, "ids", None) or ())


def _identity_changed(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    # A new identity of a user the sync just created changes nothing another process may hold: at most
    # a "no user yet" answer, and the new user is active. Any other identity change (a link to an
    # existing user, a re-pointed or deleted identity, the sync's write of changed claims) is announced.
    forget_identity(instance.issuer, instance.subject, everywhere=not (created and is_sync_write(instance)))


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
