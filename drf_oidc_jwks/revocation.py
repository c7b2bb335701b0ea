"""Revocations before ``exp``: ``revoke(issuer, sub=/sid=/jti=)`` and the hot-path ``is_revoked`` check.

Revocations live in the shared cache (``JWKS_CACHE_ALIAS``) as an append-only log: a counter (``gen``)
numbers them and each is one key of its own, remembered ``REVOCATION_TTL`` seconds. Every process keeps
its own view of the set and asks the cache at most once per ``REVOCATION_POLL`` seconds whether the
counter moved (one ``get_many``), so a request pays no cache round trip for this. A new process starts
from the last snapshot (written every ``SNAPSHOT_EVERY`` revocations) plus the entries after it.

A slot whose number was taken but whose entry is not yet visible (the revoker is between ``incr`` and
``set``) is re-read on the following polls for ``HOLE_GRACE`` seconds, so it is seen one poll later at
worst. See docs/revocation.md.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.cache import BaseCache

from .conf import register_reset
from .exceptions import TokenRevoked
from .frozen import FrozenDict

logger = logging.getLogger("drf_oidc_jwks")

DEFAULT_TTL = 86400.0
DEFAULT_POLL = 5.0
SNAPSHOT_EVERY = 256
HOLE_GRACE = 30.0
_CHUNK = 500
KINDS = ("sub", "sid", "jti")

#: (kind, iss, value) -> (revoked_at, remembered_until)
View = dict[tuple[str, str, str], tuple[float, float]]


class RevocationStore:
    """One process's view of the shared revocation log in ``cache``."""

    prefix = "drf_oidc_jwks:revocation:v1:"

    def __init__(
        self,
        cache: BaseCache,
        *,
        ttl: float = DEFAULT_TTL,
        poll: float = DEFAULT_POLL,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache, self.ttl, self.poll, self.clock, self.monotonic = cache, ttl, poll, clock, monotonic
        self._view: View = {}
        #: (index, payloads found clean against it): swapped together, so a thread never pairs a new index
        #: with answers of the old one. A memoised token's payload is the same object on every request.
        self._state: tuple[dict[str, Any], dict[int, Mapping[str, Any]]] = ({}, {})
        self._epoch: str | None = None
        self._gen = 0
        self._holes: dict[int, float] = {}
        self._next_poll = float("-inf")
        self._lock = threading.Lock()
        #: Shared-cache calls made by polls (for tests and the benchmark).
        self.polls = 0

    # -- writing --

    def revoke(
        self,
        issuer: str,
        *,
        sub: str | None = None,
        sid: str | None = None,
        jti: str | None = None,
        at: float | None = None,
    ) -> int:
        """Record revocations of ``issuer``'s ``sub``, ``sid`` and/or ``jti`` issued at or before ``at`` (default now).

        Returns how many were recorded; raises ValueError when none is given, and the cache's own
        error when it cannot be written (the caller must know a revocation failed).
        """
        given = [(kind, value) for kind, value in (("sub", sub), ("sid", sid), ("jti", jti)) if value is not None]
        if not given or not isinstance(issuer, str) or not issuer:
            raise ValueError("revoke() needs an issuer and at least one of sub, sid, jti")
        for kind, value in given:
            if not isinstance(value, str) or not value:
                raise ValueError(f"{kind} must be a non-empty string")
        when = self.clock() if at is None else float(at)
        epoch = self._shared_epoch()
        for kind, value in given:
            entry = (kind, issuer, value, when, self.clock() + self.ttl)
            n = self._next_number()
            self.cache.set(f"{self.prefix}e:{epoch}:{n}", entry, self._timeout())
            self._merge([entry])  # this process enforces it at once
            if n % SNAPSHOT_EVERY == 0:
                self._snapshot(epoch)
        return len(given)

    def _timeout(self) -> int:
        return max(1, int(self.ttl + 0.999))

    def _shared_epoch(self) -> str:
        key = self.prefix + "epoch"
        epoch = self.cache.get(key)
        if not isinstance(epoch, str):
            # The log is new (or the cache lost it): start an epoch, or join the one another process just started.
            self.cache.add(key, uuid.uuid4().hex, None)
            epoch = self.cache.get(key)
        if not isinstance(epoch, str):
            raise ConnectionError("the revocation epoch cannot be stored")
        return epoch

    def _next_number(self) -> int:
        key = self.prefix + "gen"
        try:
            return int(self.cache.incr(key))
        except ValueError:
            self.cache.add(key, 0, None)
            return int(self.cache.incr(key))

    def _snapshot(self, epoch: str) -> None:
        self.refresh()
        if self._epoch != epoch:
            return
        entries = [(k, i, v, at, until) for (k, i, v), (at, until) in self._view.items()]
        value = {"gen": self._gen, "entries": entries, "holes": sorted(self._holes)}
        try:
            self.cache.set(f"{self.prefix}snap:{epoch}", value, self._timeout())
        except Exception as exc:  # noqa: BLE001 - a missing snapshot only makes new processes read more
            logger.warning("revocation snapshot not written: %s", type(exc).__name__)

    # -- reading --

    def is_revoked(self, iss: Any, sub: Any, sid: Any, jti: Any, iat: Any) -> bool:
        """Say whether a token with these claims is revoked; refreshes the view at most once per poll."""
        return self.covers({"iss": iss, "sub": sub, "sid": sid, "jti": jti, "iat": iat})

    def covers(self, payload: Mapping[str, Any]) -> bool:
        """Say whether a revocation covers the token of a verified payload (its iss, sub, sid, jti and iat).

        Refreshes the view at most once per poll; between polls a dict lookup or two, and no claim read
        for what nothing was revoked by (the memoised path pays this on every request).
        """
        if self.monotonic() >= self._next_poll:
            self._poll()
        index, clean = self._state
        if not index:
            return False  # the common case: nothing revoked at all
        if clean.get(id(payload)) is payload:
            return False  # held here, so its id is not reused: found clean against this very index
        if self._revoked_in(index, payload):
            return True
        if type(payload) is not FrozenDict:
            return False  # only a payload nobody can change may be remembered (Claims.raw is one)
        if len(clean) >= CLEAN_MAX:
            clean.clear()
        clean[id(payload)] = payload
        return False

    @staticmethod
    def _revoked_in(index: dict[str, Any], payload: Mapping[str, Any]) -> bool:
        get: Callable[[str], Any] = payload.get
        try:
            per_issuer = index.get(get("iss"))
            if per_issuer is None:
                return False  # nothing revoked for this issuer
            subs, sids, jtis = per_issuer
            if jtis and get("jti") in jtis:
                return True
            at = subs.get(get("sub")) if subs else None
            at_sid = sids.get(get("sid")) if sids else None
        except TypeError:
            return False  # an unhashable claim value: no revocation (always a string) can match it
        if at is None or (at_sid is not None and at_sid > at):
            at = at_sid
        if at is None:
            return False
        iat = get("iat")
        if isinstance(iat, (int, float)) and not isinstance(iat, bool) and math.isfinite(iat):
            return bool(iat <= at)
        return True  # no usable iat: the token cannot show it came after the revocation

    def _poll(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another thread is refreshing: answer from the current view
        try:
            self._next_poll = self.monotonic() + self.poll
            self._refresh_locked()
        except Exception as exc:  # noqa: BLE001 - a cache outage keeps the last view, never a 500
            logger.warning("revocation poll failed, keeping the last view: %s", type(exc).__name__)
        finally:
            self._lock.release()

    def refresh(self) -> None:
        """Bring this process's view up to date now (normally done by :meth:`is_revoked` once per poll)."""
        with self._lock:
            self._next_poll = self.monotonic() + self.poll
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        self.polls += 1
        head = self.cache.get_many([self.prefix + "gen", self.prefix + "epoch"])
        gen, epoch = head.get(self.prefix + "gen"), head.get(self.prefix + "epoch")
        if not isinstance(epoch, str) or not isinstance(gen, int):
            self._prune()
            return  # nothing shared (yet, or the cache was flushed): keep what this process knows
        if epoch != self._epoch:
            # A new log (first look, or the cache restarted): keep what we knew, read the new one from its start.
            self._epoch, self._gen, self._holes = epoch, 0, {}
            self._load_snapshot(epoch)
        if gen < self._gen:
            self._gen = 0  # the counter went back without a new epoch: re-read it all
        wanted = list(range(self._gen + 1, gen + 1))
        now = self.monotonic()
        self._holes = {n: seen for n, seen in self._holes.items() if now - seen < HOLE_GRACE}
        wanted += [n for n in self._holes if n <= self._gen]
        if wanted:
            self._read(epoch, wanted, now)
        self._gen = max(self._gen, gen)
        self._prune()

    def _load_snapshot(self, epoch: str) -> None:
        snap = self.cache.get(f"{self.prefix}snap:{epoch}")
        if not isinstance(snap, dict) or not isinstance(snap.get("gen"), int):
            return
        self._merge(e for e in snap.get("entries", ()) if isinstance(e, tuple) and len(e) == 5)
        self._gen = snap["gen"]
        now = self.monotonic()
        self._holes = {n: now for n in snap.get("holes", ()) if isinstance(n, int)}

    def _read(self, epoch: str, numbers: list[int], now: float) -> None:
        for start in range(0, len(numbers), _CHUNK):
            chunk = numbers[start : start + _CHUNK]
            keys = {f"{self.prefix}e:{epoch}:{n}": n for n in chunk}
            found = self.cache.get_many(list(keys))
            entries = []
            for key, n in keys.items():
                entry = found.get(key)
                if isinstance(entry, tuple) and len(entry) == 5:
                    entries.append(entry)
                    self._holes.pop(n, None)
                elif n not in self._holes:
                    self._holes[n] = now
            self._merge(entries)

    def _merge(self, entries: Iterable[tuple[Any, ...]]) -> None:
        view = dict(self._view)  # copy on write: readers in other threads never see a dict change size
        for kind, iss, value, at, until in entries:
            if kind in KINDS and isinstance(iss, str) and isinstance(value, str):
                old = view.get((kind, iss, value))
                # The latest revocation wins: it covers every token the earlier one covered.
                view[(kind, iss, value)] = (max(at, old[0]), max(until, old[1])) if old else (float(at), float(until))
        self._set_view(view)

    def _set_view(self, view: View) -> None:
        # The hot path reads one index per issuer: (sub -> at, sid -> at, jti -> at), rebuilt on change only.
        index: dict[str, tuple[dict[str, float], dict[str, float], dict[str, float]]] = {}
        for (kind, iss, value), (at, _until) in view.items():
            per_issuer = index.setdefault(iss, ({}, {}, {}))
            per_issuer[KINDS.index(kind)][value] = at
        self._view = view
        self._state = (index, {})

    def _prune(self) -> None:
        now = self.clock()
        if any(until <= now for _at, until in self._view.values()):
            self._set_view({k: v for k, v in self._view.items() if v[1] > now})

    def __len__(self) -> int:
        return len(self._view)


#: Payloads remembered as not revoked against the current index (cleared when full or when it changes).
CLEAN_MAX = 4096
_store: RevocationStore | None = None
_store_lock = threading.Lock()


def get_store() -> RevocationStore:
    """This process's store, on the ``JWKS_CACHE_ALIAS`` cache with ``REVOCATION_TTL`` and ``REVOCATION_POLL``."""
    store = _store
    if store is None:
        store = _build_store()
    return store


def _build_store() -> RevocationStore:
    global _store
    from django.core.cache import caches

    from .conf import get_settings

    with _store_lock:
        if _store is None:
            s = get_settings()
            _store = RevocationStore(caches[s.jwks_cache_alias], ttl=s.revocation_ttl, poll=s.revocation_poll)
        return _store


def reset_store() -> None:
    """Forget this process's view (settings changed, or tests); the next check reloads it from the cache."""
    global _store
    with _store_lock:
        _store = None


register_reset("revocation.store", reset_store)


def revoke(
    issuer: str, *, sub: str | None = None, sid: str | None = None, jti: str | None = None, at: float | None = None
) -> int:
    """Revoke ``issuer``'s tokens for ``sub`` or ``sid`` issued at or before ``at`` (default now), or by ``jti``."""
    return get_store().revoke(issuer, sub=sub, sid=sid, jti=jti, at=at)


def is_revoked(iss: Any, sub: Any, sid: Any, jti: Any, iat: Any) -> bool:
    """Say whether a token with these claims was revoked (no cache round trip between polls)."""
    return get_store().is_revoked(iss, sub, sid, jti, iat)


def check(payload: Mapping[str, Any]) -> None:
    """Raise TokenRevoked (401 ``token_revoked``) when a verified payload's token was revoked."""
    store = _store if _store is not None else get_store()
    if store.covers(payload):
        raise TokenRevoked("a revocation covers this token's sub, sid or jti")
