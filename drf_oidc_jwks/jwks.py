"""The JWKS client: one issuer's keys, shared through Django's cache, memoised in-process.

One shared copy of each issuer's key set lives in the cache named by ``JWKS_CACHE_ALIAS``
(:mod:`drf_oidc_jwks.keystore`); every process keeps the parsed keys of the version it last saw, so the
hot path neither touches the cache nor parses JSON or JWKs while that version is fresh. How it refreshes
(single-flight, stale-if-error, :data:`REFRESH_WAIT`) is :mod:`drf_oidc_jwks.jwks_refresh`; this module
adds what is asked per token: an unknown ``kid`` refetches at most once per ``JWKS_REFRESH_COOLDOWN``
deployment-wide, and within ``JWKS_REFRESH_AHEAD`` of the end of freshness one worker refreshes in the
background. HTTP is :mod:`drf_oidc_jwks.jwks_source`, key parsing :mod:`drf_oidc_jwks.keys`. See
docs/jwks-cache.md and docs/operations.md.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from . import background
from .conf import IssuerSettings, get_settings, register_reset
from .exceptions import KeySourceError
from .fetching import Fetcher, FetchResult, http_fetch, parse_max_age, request_json
from .jwks_refresh import REFRESH_WAIT, KeyRefresher
from .keys import KeySet, PublicKey, key_allows, parse_jwks, parse_key
from .keystore import CacheSnapshot, Lease, SharedEntry
from .logfields import fields

__all__ = [
    "REFRESH_WAIT",
    "CacheSnapshot",
    "FetchResult",
    "Fetcher",
    "JWKSClient",
    "KeySet",
    "PublicKey",
    "SharedEntry",
    "get_client",
    "http_fetch",
    "install_jwks",
    "key_allows",
    "parse_jwks",
    "parse_key",
    "parse_max_age",
    "request_json",
    "reset_clients",
]

logger = logging.getLogger("drf_oidc_jwks")

#: Inside the refresh-ahead window, how often (seconds) a process looks again whether the refresh is done.
AHEAD_RECHECK = 1.0


class JWKSClient(KeyRefresher):
    """Keys of one issuer: shared through Django's cache, memoised in this process."""

    # -- the public surface for the test kit and the commands --

    def _fetch_count(self) -> int:
        """How many HTTP requests this client made (discovery and JWKS): for checks and tests."""
        return self.source.fetch_count

    #: (A property wrapped, not decorated: mutmut mutates no decorated function.)
    fetch_count = property(_fetch_count)

    def store(self, document: Any, ttl: float | None = None) -> KeySet:
        """Store ``document`` as this issuer's JWKS exactly as a fetch would, without HTTP.

        ``ttl`` defaults to ``JWKS_CACHE_TTL``. Raises KeySourceError when it holds no usable key.
        """
        _raw, keys = parse_jwks(document, self.settings.min_rsa_key_size)
        return self._keep(keys, self.settings.jwks_cache_ttl if ttl is None else ttl)

    def snapshot(self) -> CacheSnapshot:
        """What the shared cache holds for this issuer now (read only)."""
        return self.state.snapshot()

    def known_kids(self) -> list[str | None]:
        """The kids of the key set this process holds (or the shared one); empty when it holds none."""
        keyset = self._memo or self._shared()
        return [k.kid for k in keyset.keys] if keyset is not None else []

    def discovery(self) -> Mapping[str, Any]:
        """The issuer's discovery document (its ``issuer`` checked), from the shared cache or fetched.

        Raises KeySourceError when it cannot be had within ``HTTP_TIMEOUT``.
        """
        doc = self.state.discovery_document()
        if doc is not None:
            return doc
        return self.source.discover(time.monotonic() + self.settings.http_timeout)

    def discovery_document(self) -> Mapping[str, Any] | None:
        """The issuer's discovery document as last fetched, when discovery is in use."""
        return self.state.discovery_document()

    # -- key sets --

    def current_keyset(self) -> KeySet:
        """Return fresh keys, else the last good ones within ``JWKS_MAX_STALE``, else raise."""
        keyset = self._memo
        now = self.clock()
        if keyset is not None and now < self._check_at:
            return keyset
        keyset = self._newest(keyset)
        if keyset is not None and now < keyset.fresh_until:
            if keyset is self._memo and now >= self._check_at:
                # The refresh-ahead window: one worker (the lock's) refreshes beside the requests, which never
                # wait; each process looks again every AHEAD_RECHECK s, not at the cache on every request.
                self._check_at = min(keyset.fresh_until, now + AHEAD_RECHECK)
                self.refresh_in_background(keyset)
            return keyset
        if keyset is not None and now < keyset.stale_until:
            if background.running(self._prefix):  # this process is refreshing already: no cache round-trips
                return self._serve_stale(keyset, "refresh running", quiet=True)
            return self._refresh_beside(keyset)
        return self.refresh(keyset)

    # -- refreshing in the background (refresh-ahead, health/) and warming --

    def refresh_in_background(self, current: KeySet | None = None) -> bool:
        """Start a refresh thread (never waiting) unless one runs here or elsewhere, or the IdP failed lately.

        Without ``current`` (health/: the keys looked missing or stale), a key set made fresh meanwhile by
        another refresh is left as it is.
        """
        if background.running(self._prefix) or self.state.failed_until() > self.clock():
            return False
        owner = uuid.uuid4().hex
        lease = self.state.acquire(owner, self.settings.http_timeout * 2 + 1)
        if lease is Lease.NONE:
            return False

        def run() -> None:
            try:
                held = current or self._newest(None)
                if current is not None or held is None or self.clock() >= held.fresh_until:
                    self._refresh_holding(held)
            except KeySourceError:
                pass  # logged by _refresh_holding; the current keys serve on, then stale-if-error
            finally:
                self.state.release(owner, lease)

        if background.start(self._prefix, run):
            return True
        self.state.release(owner, lease)
        return False

    def warm(self) -> KeySet:
        """Fill the shared cache with discovery and fresh keys now (``oidc_warm``); raise KeySourceError."""
        if not self.issuer.jwks_url:
            self.discovery()
        return self.refresh(self._memo, wait=True)

    # -- the questions asked per token --

    def holds(self, key: PublicKey) -> bool:
        """Say whether ``key`` is still in the current key set (for memoised tokens)."""
        keyset = self._memo
        if keyset is None or self.clock() >= self._check_at:
            keyset = self.current_keyset()
        return keyset.holds(key)

    def get_key(self, kid: str | None, alg: str) -> PublicKey:
        """Return the key that may verify a token with this ``kid`` and ``alg``.

        Raises TokenError (``unknown_key``/``unsupported_algorithm``) or KeySourceError.
        """
        keyset = self.current_keyset()
        if kid is not None and not keyset.holds_kid(kid):
            keyset = self._refresh_for_unknown_kid(keyset, kid)
        return keyset.key_for(kid, alg)

    def _refresh_for_unknown_kid(self, keyset: KeySet, kid: str) -> KeySet:
        """Refetch for a kid not (yet) published here: once per ``JWKS_REFRESH_COOLDOWN`` deployment-wide.

        The worker that takes the cooldown fetches, after any refresh already in flight (that one may have
        started before the kid was published); the requests meeting the cooldown wait for its answer, so a
        key rotation met by many requests at once refuses no token signed with a published key
        (tests/test_faults.py, key rotation under load), while random kids cost one fetch per cooldown.
        """
        keyset = self._newest(keyset) or keyset
        if keyset.holds_kid(kid):
            return keyset
        now, seconds = self.clock(), self.settings.jwks_refresh_cooldown
        if not self.state.start_cooldown(now, seconds):
            return self._await_refetch(keyset, kid)
        logger.info("unknown kid: refreshing JWKS for %s", self.issuer.issuer, extra=fields(issuer=self.issuer.issuer))
        try:
            return self._refetch(keyset, kid)
        finally:
            self.state.answer_cooldown(now, seconds)

    def _refetch(self, current: KeySet, kid: str) -> KeySet:
        deadline = time.monotonic() + self.settings.http_timeout
        owner = uuid.uuid4().hex
        while (lease := self.state.acquire(owner, self.settings.http_timeout * 2 + 1)) is Lease.NONE:
            newest = self._newest(current) or current
            if newest.holds_kid(kid):
                return newest
            self._backoff()
            if time.monotonic() >= deadline:
                raise KeySourceError("timed out waiting for the JWKS", retry_after=self.settings.jwks_failure_backoff)
            time.sleep(0.05)
        try:
            newest = self._newest(current) or current
            return newest if newest.holds_kid(kid) else self._refresh_holding(newest, force=True, deadline=deadline)
        finally:
            self.state.release(owner, lease)

    def _await_refetch(self, keyset: KeySet, kid: str) -> KeySet:
        """Within the cooldown: wait (bounded) for its refetch, unless it is done; then the newest keys."""
        since = self.state.cooldown_started()
        deadline = time.monotonic() + self.settings.http_timeout + 0.5
        while since is not None and not self.state.cooldown_answered(since) and time.monotonic() < deadline:
            time.sleep(0.05)
            keyset = self._newest(keyset) or keyset
            if keyset.holds_kid(kid) or self.state.failed_until() > self.clock():
                return keyset
        return self._newest(keyset) or keyset


_clients: dict[str, JWKSClient] = {}
_clients_lock = threading.Lock()


def get_client(issuer: IssuerSettings) -> JWKSClient:
    """Return this process's JWKS client for ``issuer`` (one per issuer, kept until settings change)."""
    client = _clients.get(issuer.issuer)
    if client is None or client.issuer is not issuer:
        with _clients_lock:
            client = _clients.get(issuer.issuer)
            if client is None or client.issuer is not issuer:
                client = JWKSClient(issuer, get_settings())
                _clients[issuer.issuer] = client
    return client


def reset_clients() -> None:
    """Forget every in-process memo (settings changed, or tests)."""
    with _clients_lock:
        _clients.clear()


register_reset("jwks.clients", reset_clients)


def install_jwks(issuer: IssuerSettings, document: Any, ttl: float | None = None) -> KeySet:
    """Store ``document`` as ``issuer``'s JWKS in the shared cache exactly as a fetch would, without HTTP.

    For tests and for warming a cache; ``ttl`` defaults to ``JWKS_CACHE_TTL``. Raises KeySourceError
    when the document holds no usable key.
    """
    return get_client(issuer).store(document, ttl)
