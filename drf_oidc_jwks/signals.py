"""Signals sent by drf-oidc-jwks, each from the one place its event happens.

Operations signals are free when nothing listens: the sender checks :func:`listened` before it builds
any argument, and sends with :func:`emit`, which logs a receiver's exception instead of letting it turn a
request into a 500. ``issuer`` is always a configured ``ISSUER`` (or None), never a token's own ``iss``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("drf_oidc_jwks")

#: Sent after a user was created or updated from a token's claims (never on the steady-state path).
#: Arguments: ``sender`` (the ``OIDCIdentity`` class), ``user``, ``identity``, ``created`` (a new
#: identity was made), ``claims`` (the verified ``Claims``).
user_synced = Signal()

#: A token was refused (401, or 503 when the IdP is unavailable). ``code`` is a code of
#: ``exceptions.REGISTRY``; ``issuer`` the configured issuer the token named, or None.
token_refused = Signal()
#: A token was verified. ``issuer`` (configured), ``memoised`` (True when the in-process memo answered).
token_verified = Signal()
#: A JWKS fetch answered. ``issuer``, ``url``, ``status`` (200, or 304 for a revalidation), ``seconds``
#: (the fetch's duration), ``keys`` (how many keys the set holds).
jwks_fetched = Signal()
#: A JWKS fetch failed. ``issuer``, ``url``, ``reason`` (a short text, never a secret).
jwks_fetch_failed = Signal()
#: Keys past their freshness served a request while a refresh failed or ran. ``issuer``, ``age``
#: (seconds past freshness).
stale_keys_served = Signal()
#: A token was found revoked (introspection or a revocation list). ``issuer``, ``code``.
token_revoked = Signal()
#: The introspection endpoint was called. ``issuer``, ``status``, ``seconds``.
introspection_called = Signal()
#: A DPoP proof was replayed (its ``jti`` seen before). ``issuer``.
dpop_replay = Signal()


def listened(signal: Signal) -> bool:
    """Say whether any receiver is connected to ``signal`` (an attribute read: cheap on the hot path)."""
    return bool(signal.receivers)


def emit(signal: Signal, sender: Any, **arguments: Any) -> None:
    """Send ``signal`` to every receiver; a receiver that raises is logged, never raised to the request."""
    for receiver, result in signal.send_robust(sender, **arguments):
        if isinstance(result, Exception):
            logger.error(
                "signal receiver %s raised %s",
                getattr(receiver, "__qualname__", repr(receiver)),
                type(result).__name__,
                extra={"code": None, "issuer": arguments.get("issuer"), "kid": None},
            )
