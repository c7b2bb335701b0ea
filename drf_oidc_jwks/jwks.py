"""The JWKS client: one issuer's keys, shared through Django's cache, memoised in-process.

One shared copy of each issuer's key set lives in the cache named by ``JWKS_CACHE_ALIAS``
(:mod:`drf_oidc_jwks.keystore`); every process keeps the parsed keys of the version it last saw, so the
hot path neither touches the cache nor parses JSON or JWKs while that version is fresh. Refreshes are
single-flight through a lock held in the cache itself; an unknown ``kid`` refetches at most once per
``JWKS_REFRESH_COOLDOWN``; a failing identity provider leaves the last good keys serving for
``JWKS_MAX_STALE`` seconds past freshness, and a refresh of stale keys runs beside the requests, which
wait for it at most :data:`REFRESH_WAIT` seconds; within ``JWKS_REFRESH_AHEAD`` of the end of freshness one
worker refreshes in the background. HTTP is :mod:`drf_oidc_jwks.jwks_source`, key parsing
:mod:`drf_oidc_jwks.keys`. See docs/jwks-cache.md and docs/operations.md.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from django.core.cache import BaseCache, caches

from . import background, signals
from .conf import IssuerSettings, Settings, get_settings, register_reset
from .exceptions import KeySourceError
from .fetching import Fetcher, FetchResult, http_fetch, parse_max_age, request_json
from .jwks_source import KeySource
from .keys import KeySet, PublicKey, key_allows, keyset_version, parse_jwks, parse_key
from .keystore import CacheSnapshot, KeyStore, Lease, SharedEntry, Validators
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

#: Seconds a request holding stale-but-usable keys waits for the refresh it started before it answers
#: from the stale keys (the refresh goes on beside it, bounded by ``HTTP_TIMEOUT``). A healthy IdP
#: answers well within it, so its new keys serve that very request; a slow one delays nobody longer.
REFRESH_WAIT = 0.5
#: Inside the refresh-ahead window, how often (seconds) a process looks again whether the refresh is done.
AHEAD_RECHECK = 1.0


class JWKSClient:
    """Keys of one issuer: shared through Django's cache, memoised in this process."""

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

    # -- the public surface for the test kit and the commands --

    @property
    def fetch_count(self) -> int:
        """How many HTTP requests this client made (discovery and JWKS): for checks and tests."""
        return self.source.fetch_count

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
        shared = self._shared()
        if shared is not None and (current is None or shared.fetched_at > current.fetched_at):
            return shared
        return current

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
            signals.emit(signals.stale_keys_served, JWKSClient, issuer=self.issuer.issuer, age=age)
        return keyset

    def _backoff(self) -> None:
        until = self.state.failed_until()
        if until > self.clock():
            raise KeySourceError("identity provider failed recently", retry_after=until - self.clock())

    # -- refreshing --

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

    def _refresh_holding(self, current: KeySet | None) -> KeySet:
        """Refresh while holding the lock: another worker's result if newer, else fetch."""
        newer = self._newest(current)
        if newer is not None and newer is not current and self.clock() < newer.fresh_until:
            return newer
        # The previous holder of the lock may have failed while we waited for it: honour its backoff
        # instead of hitting the struggling IdP again at once (tests/test_faults.py, slow IdP).
        self._backoff()
        try:
            return self._fetch_and_store()
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

    def _fetch_and_store(self) -> KeySet:
        memo = self._memo
        got = self.source.fetch_jwks(memo)
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

    # -- refreshing in the background (refresh-ahead, health/) and warming --

    def refresh_in_background(self, current: KeySet | None = None) -> bool:
        """Start a refresh thread (never waiting) unless one runs here or elsewhere, or the IdP failed lately."""
        if background.running(self._prefix) or self.state.failed_until() > self.clock():
            return False
        owner = uuid.uuid4().hex
        lease = self.state.acquire(owner, self.settings.http_timeout * 2 + 1)
        if lease is Lease.NONE:
            return False

        def run() -> None:
            try:
                self._refresh_holding(current if current is not None else self._memo)
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
            keyset = self._refresh_for_unknown_kid(keyset)
        return keyset.key_for(kid, alg)

    def _refresh_for_unknown_kid(self, keyset: KeySet) -> KeySet:
        newer = self._newest(keyset)
        if newer is not keyset and newer is not None:
            return newer
        now = self.clock()
        if not self.state.start_cooldown(now, self.settings.jwks_refresh_cooldown):
            # Refetched recently (by any process): do not let random kids drive traffic. But a refetch
            # in flight, or triggered a moment ago, may bring this very kid (a key rotation met by many
            # requests at once): wait for it, or a token signed with a published key would be refused
            # (tests/test_faults.py, key rotation under load).
            since = self.state.cooldown_started()
            just_triggered = since is not None and 0 <= now - since < 1.0
            if just_triggered or self.state.lock_held():
                try:
                    return self._wait_for_other(keyset)
                except KeySourceError:
                    pass
            return self._newest(keyset) or keyset
        logger.info("unknown kid: refreshing JWKS for %s", self.issuer.issuer, extra=fields(issuer=self.issuer.issuer))
        return self.refresh(keyset, wait=True)


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
