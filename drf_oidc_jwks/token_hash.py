"""SHA-256 of an access token, once per request: the token memo's key and DPoP's ``ath`` hash the same bytes.

``verify_token`` hashes the token to look it up in the memo; on a DPoP request it hands the digest on to the
proof check on the same thread, which takes it only for that very token object (``is``, never equality) and
only once, so no digest outlives the request that made it and none is applied to another token.
"""

from __future__ import annotations

import hashlib
import threading

__all__ = ["handed_sha256", "token_sha256"]


class _Handed(threading.local):
    pair: tuple[str | bytes, bytes] | None = None


_handed = _Handed()


def token_sha256(raw: str | bytes, *, hand_on: bool = False) -> bytes:
    """SHA-256 of the token's bytes (UTF-8, surrogates passed); ``hand_on``: keep it for :func:`handed_sha256`."""
    digest = hashlib.sha256(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")).digest()
    if hand_on:
        _handed.pair = (raw, digest)
    return digest


def handed_sha256(raw: str | bytes) -> bytes | None:
    """The digest this thread last handed on, if it was of this very object; taken either way (None after)."""
    pair = _handed.pair
    if pair is None:
        return None
    _handed.pair = None
    return pair[1] if pair[0] is raw else None
