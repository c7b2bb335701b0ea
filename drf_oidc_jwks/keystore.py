"""One issuer's state in the shared cache: its key set entry, discovery, refresh lock, failure backoff, cooldown.

The cache entry format lives here and nowhere else; :class:`~drf_oidc_jwks.jwks.JWKSClient` works with
:class:`~drf_oidc_jwks.keys.KeySet` objects and the commands read a :class:`CacheSnapshot`. Every cache
call is guarded: a cache outage degrades to the process's own copy, never to a 500.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.cache import BaseCache

from .keys import KeySet, parse_key

logger = logging.getLogger("drf_oidc_jwks")


class Lease(enum.Enum):
    """Who may refresh: the outcome of trying to take the refresh lock."""

    #: Another worker (or thread) holds the lock: it is refreshing.
    NONE = "none"
    #: This worker holds the lock in the shared cache.
    SHARED = "shared"
    #: The cache is unreachable: this process's own lock is held (single flight within the process).
    LOCAL = "local"


@dataclass(frozen=True)
class SharedEntry:
    """What the shared key set entry says, without parsing its keys."""

    version: str
    kids: tuple[str | None, ...]
    fetched_at: float
    fresh_until: float
    stale_until: float


@dataclass(frozen=True)
class Validators:
    """What a JWKS response said to revalidate it with: its ``ETag`` and ``Last-Modified``."""

    etag: str | None
    last_modified: str | None

    def headers(self) -> dict[str, str]:
        """The conditional request headers that send them back."""
        sent = {"If-None-Match": self.etag} if self.etag else {}
        if self.last_modified:
            sent["If-Modified-Since"] = self.last_modified
        return sent


@dataclass(frozen=True)
class CacheSnapshot:
    """One issuer's state in the shared cache, read once (for ``oidc_check`` and health reports)."""

    jwks: SharedEntry | None
    discovered_jwks_uri: str | None
    failure_backoff_until: float | None
    refresh_in_progress: bool
    unknown_kid_cooldown: bool


def _timeout(seconds: float) -> int:
    # Cache backends take whole seconds and read 0 as "expire now".
    return max(1, math.ceil(seconds))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class KeyStore:
    """The cache entries of one issuer under one key prefix; no method raises on a cache failure."""

    def __init__(self, cache: BaseCache, prefix: str) -> None:
        self.cache = cache
        self.prefix = prefix
        self._local_lock = threading.Lock()
        #: The failure backoff, also kept here: with the cache down, the shared marker cannot be stored.
        self._failed_until = 0.0
        #: The unknown-kid cooldown as this process last took or saw answered: (started, answered).
        self._cooldown = (0.0, False)

    # -- guarded cache access --

    def _get(self, name: str) -> Any:
        try:
            return self.cache.get(self.prefix + name)
        except Exception as exc:  # noqa: BLE001 - any backend error is an outage
            logger.warning("JWKS cache read failed: %s", type(exc).__name__)
            return None

    def _set(self, name: str, value: Any, timeout: float) -> None:
        try:
            self.cache.set(self.prefix + name, value, _timeout(timeout))
        except Exception as exc:  # noqa: BLE001
            logger.warning("JWKS cache write failed: %s", type(exc).__name__)

    def _add(self, name: str, value: Any, timeout: float) -> bool | None:
        """``cache.add``; None when the cache is unreachable."""
        try:
            return bool(self.cache.add(self.prefix + name, value, _timeout(timeout)))
        except Exception as exc:  # noqa: BLE001
            logger.warning("JWKS cache add failed: %s", type(exc).__name__)
            return None

    def _delete(self, name: str) -> None:
        try:
            self.cache.delete(self.prefix + name)
        except Exception as exc:  # noqa: BLE001
            logger.warning("JWKS cache delete failed: %s", type(exc).__name__)

    # -- the key set --

    def write_keyset(self, keyset: KeySet, timeout: float, validators: Validators | None = None) -> None:
        """Share ``keyset`` with every worker for ``timeout`` seconds (its freshness plus the stale window).

        ``validators`` (the response's ETag and Last-Modified) are kept with it for conditional revalidation.
        """
        entry = {
            "version": keyset.version,
            "keys": [dict(k.jwk) for k in keyset.keys],
            "fetched_at": keyset.fetched_at,
            "fresh_until": keyset.fresh_until,
            "stale_until": keyset.stale_until,
        }
        if validators is not None:
            entry["etag"], entry["last_modified"] = validators.etag, validators.last_modified
        self._set("jwks", entry, timeout)

    def validators(self, version: str) -> Validators | None:
        """The ETag and Last-Modified stored with the shared key set, when it is still ``version``."""
        entry = self._get("jwks")
        if not isinstance(entry, Mapping) or entry.get("version") != version:
            return None
        etag, modified = entry.get("etag"), entry.get("last_modified")
        etag = etag if isinstance(etag, str) else None
        modified = modified if isinstance(modified, str) else None
        return Validators(etag, modified) if etag or modified else None

    def read_keyset(self, memo: KeySet | None, min_rsa_size: int) -> KeySet | None:
        """The shared key set, reusing ``memo``'s parsed keys when it is the same version; None if absent."""
        entry = self._get("jwks")
        if not isinstance(entry, dict) or "version" not in entry:
            return None
        if memo is not None and memo.version == entry["version"] and memo.fetched_at == entry.get("fetched_at"):
            return memo
        if memo is not None and memo.version == entry["version"]:
            keys = memo.keys  # same keys, new freshness: keep the parsed objects (and memoised tokens)
        else:
            try:
                keys = tuple(parse_key(jwk, min_rsa_size) for jwk in entry["keys"])
            except (ValueError, KeyError, TypeError):
                return None
        try:
            return KeySet(
                version=str(entry["version"]),
                keys=keys,
                fetched_at=float(entry["fetched_at"]),
                fresh_until=float(entry["fresh_until"]),
                stale_until=float(entry["stale_until"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    # -- discovery --

    def discovered_jwks_uri(self) -> str | None:
        """The ``jwks_uri`` discovery last gave, when still cached."""
        uri = self._get("discovery")
        return uri if isinstance(uri, str) else None

    def discovery_document(self) -> Mapping[str, Any] | None:
        """The discovery document as last fetched, when still cached."""
        doc = self._get("discovery_doc")
        return doc if isinstance(doc, Mapping) else None

    def write_discovery(self, document: Mapping[str, Any], jwks_uri: str, timeout: float) -> None:
        """Share a checked discovery document and its ``jwks_uri``."""
        self._set("discovery", jwks_uri, timeout)
        self._set("discovery_doc", dict(document), timeout)

    def forget_jwks_uri(self) -> None:
        """Drop the discovered ``jwks_uri`` (it may have moved): the next refresh rediscovers."""
        self._delete("discovery")

    # -- the refresh lock --

    def acquire(self, owner: str, ttl: float) -> Lease:
        """Try to take the refresh lock for ``ttl`` seconds, without waiting."""
        added = self._add("lock", owner, ttl)
        if added is None:
            return Lease.LOCAL if self._local_lock.acquire(blocking=False) else Lease.NONE
        if not added:
            return Lease.NONE
        # Read back: backends whose add() is not atomic (FileBasedCache) can let two in.
        return Lease.SHARED if self._get("lock") in (owner, None) else Lease.NONE

    def release(self, owner: str, lease: Lease) -> None:
        """Give back what :meth:`acquire` took (any thread may release it)."""
        if lease is Lease.LOCAL:
            self._local_lock.release()
        elif lease is Lease.SHARED and self._get("lock") == owner:
            self._delete("lock")

    def lock_held(self) -> bool:
        """Say whether some worker holds the shared refresh lock now."""
        return self._get("lock") is not None

    # -- the failure backoff --

    def failed_until(self) -> float:
        """Until when no worker should ask the identity provider again (0 when it did not fail lately)."""
        shared = _number(self._get("failed"))
        # The cache is down (or forgot): this process's own marker still stops a fetch per request.
        return max(shared or 0.0, self._failed_until)

    def record_failure(self, until: float, seconds: float) -> None:
        """Remember a failed refresh, here and in the shared cache, for ``seconds``."""
        self._failed_until = until
        self._set("failed", until, seconds)

    def clear_failure(self) -> None:
        """Forget the backoff after a good refresh."""
        self._failed_until = 0.0
        self._delete("failed")

    # -- the unknown-kid cooldown --

    def start_cooldown(self, now: float, seconds: float) -> bool:
        """Start the unknown-kid cooldown; False when it runs already (in this process, when the cache is down)."""
        added = self._add("cooldown", now, seconds)
        if added is None:
            if now < self._cooldown[0] + seconds:
                return False
            self._cooldown = (now, False)
            return True
        return added

    def cooldown_started(self) -> float | None:
        """When the running cooldown started, if one runs."""
        return _number(self._get("cooldown")) or (self._cooldown[0] or None)

    def answer_cooldown(self, since: float, seconds: float) -> None:
        """Say the refetch of the cooldown started at ``since`` is done (its keys, or its failure, are stored)."""
        self._cooldown = (since, True)
        self._set("cooldown_answer", since, seconds)

    def cooldown_answered(self, since: float) -> bool:
        """Say whether the refetch of the cooldown started at ``since`` is done."""
        return self._cooldown == (since, True) or _number(self._get("cooldown_answer")) == since

    def snapshot(self) -> CacheSnapshot:
        """Read every entry once, without parsing keys."""
        entry = self._get("jwks")
        shared: SharedEntry | None = None
        if isinstance(entry, Mapping) and "version" in entry:
            raw = entry.get("keys")
            kids = tuple(k.get("kid") for k in raw if isinstance(k, Mapping)) if isinstance(raw, list) else ()
            try:
                shared = SharedEntry(
                    version=str(entry["version"]),
                    kids=kids,
                    fetched_at=float(entry["fetched_at"]),
                    fresh_until=float(entry["fresh_until"]),
                    stale_until=float(entry["stale_until"]),
                )
            except (KeyError, TypeError, ValueError):
                shared = None
        return CacheSnapshot(
            jwks=shared,
            discovered_jwks_uri=self.discovered_jwks_uri(),
            failure_backoff_until=_number(self._get("failed")),
            refresh_in_progress=self.lock_held(),
            unknown_kid_cooldown=self._get("cooldown") is not None,
        )
