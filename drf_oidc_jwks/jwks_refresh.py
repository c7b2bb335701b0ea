"""How a JWKS client refreshes: single-flight through the shared cache, stale-if-error, one deadline.

:class:`KeyRefresher` is the base of :class:`~drf_oidc_jwks.jwks.JWKSClient`: it holds the in-process memo
and the shared entries (:mod:`drf_oidc_jwks.keystore`), and refreshes them. A refresh takes a lock held in
the cache itself; a failing identity provider leaves the last good keys serving for ``JWKS_MAX_STALE``
seconds past freshness, and a refresh of stale keys runs beside the requests, which wait for it at most
:data:`REFRESH_WAIT` seconds. HTTP is :mod:`drf_oidc_jwks.jwks_source`. See docs/jwks-cache.md.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable

from django.core.cache import BaseCache, caches

from . import background, signals
from .conf import IssuerSettings, Settings
from .exceptions import KeySourceError
from .fetching import Fetcher, http_fetch
from .jwks_source import KeySource
from .keys import KeySet, PublicKey, keyset_version
from .keystore import KeyStore, Lease, Validators
from .logfields import fields

logger = logging.getLogger("drf_oidc_jwks")

#: Seconds a request holding stale-but-usable keys waits for the refresh it started before it answers
#: from the stale keys (the refresh goes on beside it, bounded by ``HTTP_TIMEOUT``). A healthy IdP
#: answers well within it, so its new keys serve that very request; a slow one delays nobody longer.
REFRESH_WAIT = 0.5


class KeyRefresher:
    """One issuer's keys, memoised in this process and shared through Django's cache; their refreshes."""

    def __init__(
        self,
        issuer: IssuerSettings,
        settings: Settings,
        *,
        fetch: Fetcher = http_fetch,
        clock: Callable[[], float] = time.time,
        cache: BaseCache | None = None,
    ) -> None:
        self.issuer = issuer
        self.settings = settings
        self.fetch = fetch
        self.clock = clock
        digest = hashlib.sha256(f"{issuer.issuer}|{issuer.jwks_url or ''}".encode()).hexdigest()[:24]
        self._prefix = f"drf_oidc_jwks:v1:{digest}:"
        self.cache = cache if cache is not None else caches[settings.jwks_cache_alias]
        #: This issuer's entries in the shared cache (key set, discovery, lock, backoff, cooldown).
        self.state = KeyStore(self.cache, self._prefix)
        #: The HTTP side: discovery and JWKS fetches (jwks_source.py).
        self.source = KeySource(issuer, settings, fetch, self.state)
        self._memo: KeySet | None = None
        #: When the hot path must look again: the memo's freshness end, or the start of its refresh-ahead window.
        self._check_at = 0.0

    def _shared(self) -> KeySet | None:
        keyset = self.state.read_keyset(self._memo, self.settings.min_rsa_key_size)
        memo = self._memo
        if keyset is not None and (memo is None or keyset.fetched_at >= memo.fetched_at):
            self._remember(keyset)
        return keyset

    def _remember(self, keyset: KeySet) -> None:
        """Make ``keyset`` the memo; the refresh-ahead window starts at most a tenth of its lifetime early."""
        if keyset is self._memo:
            return
        ahead = min(self.settings.jwks_refresh_ahead, (keyset.fresh_until - keyset.fetched_at) / 10)
        self._memo = keyset
        self._check_at = keyset.fresh_until - max(0.0, ahead)

    def _newest(self, current: KeySet | None) -> KeySet | None:
        # This process's memo counts too: with the cache down, another thread's refresh lands only there.
        for candidate in (self._shared(), self._memo):
            if candidate is not None and (current is None or candidate.fetched_at > current.fetched_at):
                current = candidate
        return current

    def _serve_stale(self, keyset: KeySet, reason: str, *, quiet: bool = False) -> KeySet:
        # Once per refresh attempt at warning level; the requests served meanwhile only at debug level.
        age = self.clock() - keyset.fresh_until
        logger.log(
            logging.DEBUG if quiet else logging.WARNING,
            "serving stale JWKS for %s (%.0fs past freshness): %s",
            self.issuer.issuer,
            age,
            reason,
            extra=fields(issuer=self.issuer.issuer),
        )
        if signals.listened(signals.stale_keys_served):
            signals.emit(signals.stale_keys_served, type(self), issuer=self.issuer.issuer, age=age)
        return keyset

    def _backoff(self) -> None:
        until = self.state.failed_until()
        if until > self.clock():
            raise KeySourceError("identity provider failed recently", retry_after=until - self.clock())

    def refresh(self, current: KeySet | None, *, wait: bool = False) -> KeySet:
        """Fetch a new key set unless another process just did; single-flight through the cache.

        Without ``wait``, a refresh running elsewhere while ``current`` is usable raises at once.
        """
        self._backoff()
        owner = uuid.uuid4().hex
        lease = self.state.acquire(owner, self.settings.http_timeout * 2 + 1)
        if lease is Lease.NONE:
            if not wait and current is not None and self.clock() < current.stale_until:
                raise KeySourceError("refresh in progress elsewhere")
            return self._wait_for_other(current)
        try:
            return self._refresh_holding(current)
        finally:
            self.state.release(owner, lease)

    def _refresh_beside(self, stale: KeySet) -> KeySet:
        """Refresh stale keys in a thread of its own; wait for it at most REFRESH_WAIT, else serve ``stale``.

        So no request waits on a slow or dripping IdP (the thread is bounded by ``HTTP_TIMEOUT``), and at
        most one thread per deployment (the lock) is ever waiting on it.
        """
        try:
            self._backoff()
        except KeySourceError as exc:
            return self._serve_stale(stale, exc.reason, quiet=True)
        owner = uuid.uuid4().hex
        lease = self.state.acquire(owner, self.settings.http_timeout * 2 + 1)
        if lease is Lease.NONE:
            return self._serve_stale(stale, "refresh in progress elsewhere", quiet=True)
        outcome: list[KeySet | KeySourceError] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append(self._refresh_holding(stale))
            except KeySourceError as exc:
                outcome.append(exc)
            finally:
                self.state.release(owner, lease)

        if not background.start(self._prefix, run, after=done.set):
            self.state.release(owner, lease)
            return self._serve_stale(stale, "refresh in progress in this process", quiet=True)
        if not done.wait(min(REFRESH_WAIT, self.settings.http_timeout)):
            return self._serve_stale(stale, "refresh still running")
        result = outcome[0]
        if isinstance(result, KeySourceError):
            return self._serve_stale(stale, result.reason)
        return result

    def _refresh_holding(self, current: KeySet | None, *, force: bool = False, deadline: float | None = None) -> KeySet:
        """Refresh while holding the lock: another worker's result if newer (unless ``force``), else fetch."""
        newer = self._newest(current)
        if not force and newer is not None and newer is not current and self.clock() < newer.fresh_until:
            return newer
        # The previous holder of the lock may have failed while we waited for it: honour its backoff
        # instead of hitting the struggling IdP again at once (tests/test_faults.py, slow IdP).
        self._backoff()
        try:
            return self._fetch_and_store(deadline)
        except KeySourceError as exc:
            backoff = self.settings.jwks_failure_backoff
            self.state.record_failure(self.clock() + backoff, backoff)
            exc.retry_after = max(exc.retry_after, backoff)
            logger.warning(
                "JWKS refresh for %s failed: %s",
                self.issuer.issuer,
                exc.reason,
                extra=fields(issuer=self.issuer.issuer),
            )
            raise

    def _wait_for_other(self, current: KeySet | None) -> KeySet:
        deadline = time.monotonic() + self.settings.http_timeout + 0.5
        since = current.fetched_at if current is not None else -1.0
        while time.monotonic() < deadline:
            time.sleep(0.05)
            keyset = self._shared()
            if keyset is not None and keyset.fetched_at > since:
                return keyset
            failed = self.state.failed_until()
            if failed > self.clock():
                raise KeySourceError("identity provider failed", retry_after=failed - self.clock())
            if not self.state.lock_held():
                keyset = self._shared()  # the holder is done (or the cache is down): last look
                if keyset is not None and keyset.fetched_at > since:
                    return keyset
                break
        raise KeySourceError("timed out waiting for the JWKS", retry_after=self.settings.jwks_failure_backoff)

    def _fetch_and_store(self, deadline: float | None = None) -> KeySet:
        memo = self._memo
        got = self.source.fetch_jwks(memo, deadline)
        if got.keys is None and memo is not None:
            return self._keep(list(memo.keys), got.ttl, got.validators, version=memo.version)  # 304: no re-parse
        return self._keep(got.keys or [], got.ttl, got.validators)

    def _keep(
        self, keys: list[PublicKey], ttl: float, validators: Validators | None = None, *, version: str | None = None
    ) -> KeySet:
        """Make ``keys`` the current key set, fresh for ``ttl``: shared, memoised, the backoff cleared."""
        now = self.clock()
        version = version or keyset_version([dict(k.jwk) for k in keys])
        memo = self._memo
        keyset = KeySet(
            version=version,
            keys=memo.keys if memo is not None and memo.version == version else tuple(keys),
            fetched_at=now,
            fresh_until=now + ttl,
            stale_until=now + ttl + self.settings.jwks_max_stale,
        )
        self.state.write_keyset(keyset, ttl + self.settings.jwks_max_stale, validators)
        self.state.clear_failure()
        self._remember(keyset)
        return keyset
