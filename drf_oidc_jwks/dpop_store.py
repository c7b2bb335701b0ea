"""What every worker must agree on for DPoP: proofs seen once (a shared cache), and server nonces (a keyed MAC).

Replay: a proof's ``jti`` is recorded with ``cache.add`` in the shared cache (``JWKS_CACHE_ALIAS``) under
SHA-256(jkt, jti): one proof is accepted once across every worker and host that shares that cache, for as long
as it could pass the ``iat`` check. An entry is a fixed-size key and the value ``1``, whatever the proof holds.
A cache that cannot be reached refuses the request with a 503 (``ReplayCacheUnavailable``): a proof is never
accepted unrecorded.

Nonces (``DPOP_NONCE``): stateless. A nonce is a time-window number and an HMAC of it keyed by ``SECRET_KEY``
(``SECRET_KEY_FALLBACKS`` still verify), so any worker issues and checks them with no shared state and a cache
outage does not touch them. The current and the previous window are accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import struct
import threading
import time
from collections.abc import Callable, Sequence

from django.core.cache import BaseCache, caches

from .conf import register_reset
from .dpop import ProofResult, b64url_decode, b64url_encode
from .exceptions import InvalidDPoPProof, ReplayCacheUnavailable, UseDPoPNonce

logger = logging.getLogger("drf_oidc_jwks")

__all__ = ["NONCE_WINDOW", "NonceIssuer", "ReplayStore", "replay_key", "reset_stores"]

#: Seconds a nonce window lasts; a nonce is accepted in its window and the next one.
NONCE_WINDOW = 300
#: v2: a 128-bit digest in base64url. Short on purpose: Django's cache checks every key character by character.
_KEY_PREFIX = "drf_oidc_jwks:dpop:v2:"
_NONCE_SALT = "drf_oidc_jwks.dpop.nonce"
_NONCE_MAC_BYTES = 16


def replay_key(jkt: str, jti: str) -> str:
    """The cache key recording one proof: a hash of its key's thumbprint and its ``jti`` (fixed length)."""
    # jkt is 43 base64url characters, so the NUL separator cannot be part of it: no two pairs share a key.
    digest = hashlib.sha256(f"{jkt}\x00{jti}".encode("utf-8", "surrogatepass")).digest()
    # 128 bits: a collision only refuses a proof, and aiming one at another client's entry is a 2**128 search.
    return _KEY_PREFIX + b64url_encode(digest[:16])


class ReplayStore:
    """Accept each proof once across every process sharing ``cache`` (Redis, Memcached, a database cache)."""

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache

    @classmethod
    def for_alias(cls, alias: str) -> ReplayStore:
        """The store in Django's cache ``alias`` (``JWKS_CACHE_ALIAS``), kept per thread until settings change."""
        # caches[alias] costs a context-local lookup per request. Per thread, not per process: Django gives each
        # thread its own cache object because some clients (pymemcache, pylibmc) are not thread-safe.
        local = _local
        if local.generation != _generation[0]:
            local.stores, local.generation = {}, _generation[0]
        store = local.stores.get((cls, alias))
        if store is None:
            store = local.stores[(cls, alias)] = cls(caches[alias])
        return store

    def remember(self, proof: ProofResult, *, max_age: float, leeway: float, now: float | None = None) -> None:
        """Record ``proof``; raise InvalidDPoPProof when it was seen before, ReplayCacheUnavailable on a cache error.

        The entry lives until the proof fails the ``iat`` check everywhere: ``iat + max_age`` plus ``leeway``
        for workers whose clocks run behind this one.
        """
        clock = time.time() if now is None else now
        timeout = max(1, math.ceil(proof.iat + max_age + leeway - clock) + 1)
        try:
            added = self.cache.add(replay_key(proof.jkt, proof.jti), 1, timeout)
        except Exception as exc:  # noqa: BLE001 - any backend error is an outage, answered with a 503
            logger.warning("DPoP replay cache add failed: %s", type(exc).__name__)
            raise ReplayCacheUnavailable(f"DPoP replay cache unreachable ({type(exc).__name__})") from None
        if not added:
            raise InvalidDPoPProof("jti already used: a replayed proof", description="The DPoP proof was already used.")


class _ThreadStores(threading.local):
    generation = -1
    stores: dict[tuple[type[ReplayStore], str], ReplayStore]


_local = _ThreadStores()
#: Bumped by reset_stores(): every thread drops its stores at its next request.
_generation = [0]


def reset_stores() -> None:
    """Have every thread look its stores up again (settings or ``CACHES`` changed, or tests)."""
    _generation[0] += 1


register_reset("dpop_store.stores", reset_stores)


def _window_bytes(window: int) -> bytes:
    return struct.pack(">q", window)


class NonceIssuer:
    """Stateless server nonces good on every worker: ``issue()`` a fresh one, ``check()`` a presented one."""

    def __init__(
        self, *, window: float = NONCE_WINDOW, secrets: Sequence[str | bytes] | None = None, context: str = ""
    ) -> None:
        if not window > 0:
            raise ValueError("the nonce window must be a positive number of seconds")
        self.window = window
        self._secrets = tuple(secrets) if secrets is not None else None
        # A different context (an issuer, a realm) gives nonces that are not good for the others.
        self.salt = f"{_NONCE_SALT}:{context}"

    def _keys(self) -> tuple[str | bytes, ...]:
        if self._secrets is not None:
            return self._secrets
        from django.conf import settings

        # Read at call time, never at import: override_settings and key rotation take effect.
        return (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))

    def _mac(self, window: int, secret: str | bytes) -> bytes:
        from django.utils.crypto import salted_hmac

        return salted_hmac(self.salt, _window_bytes(window), secret=secret, algorithm="sha256").digest()[
            :_NONCE_MAC_BYTES
        ]

    def current_window(self, now: float | None = None) -> int:
        """The number of the window ``now`` falls in."""
        return math.floor((time.time() if now is None else now) / self.window)

    def issue(self, now: float | None = None) -> str:
        """A nonce for the current window (the same on every worker sharing ``SECRET_KEY``)."""
        window = self.current_window(now)
        return b64url_encode(_window_bytes(window) + self._mac(window, self._keys()[0]))

    def window_of(self, nonce: str | None) -> int | None:
        """The window a genuine nonce was issued in; None for anything this server did not issue."""
        if not isinstance(nonce, str) or len(nonce) != 32:
            return None
        try:
            raw = b64url_decode(nonce)
        except ValueError:
            return None
        window = int(struct.unpack(">q", raw[:8])[0])
        mac = raw[8:]
        if not any(hmac.compare_digest(mac, self._mac(window, key)) for key in self._keys()):
            return None
        return window

    def check(self, nonce: str | None, now: float | None = None) -> None:
        """Accept a nonce of the current or previous window; else raise UseDPoPNonce carrying a fresh one."""
        window = self.window_of(nonce)
        current = self.current_window(now)
        if window is not None and current - 1 <= window <= current:
            return
        reason = "proof carries no nonce" if nonce is None else "nonce not issued here, or expired"
        error = UseDPoPNonce(reason)
        error.nonce = self.issue(now)
        raise error

    def is_current(self, nonce: str | None, now: float | None = None) -> bool:
        """Whether ``nonce`` is of the current window; when not, send a fresh ``DPoP-Nonce`` with the answer."""
        return self.window_of(nonce) == self.current_window(now)

    def checker(self, now: float | None = None) -> Callable[[str | None], None]:
        """The ``nonce_checker`` for :func:`drf_oidc_jwks.dpop.check_proof`."""
        return lambda nonce: self.check(nonce, now)
