"""token_hash: the memo's SHA-256 of a DPoP request's token is handed to the ath check once, for that object only."""

from __future__ import annotations

import hashlib
import threading

from drf_oidc_jwks import token_hash
from drf_oidc_jwks.dpop import access_token_hash, b64url_encode
from drf_oidc_jwks.token_hash import handed_sha256, token_sha256

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def fresh(text: str) -> str:
    """An equal string that is another object (as the next request's header gives)."""
    return "".join(list(text))


def test_the_digest_is_sha256_of_the_token_and_is_handed_on_only_when_asked():
    assert token_sha256(TOKEN) == sha(TOKEN)
    assert handed_sha256(TOKEN) is None
    assert token_sha256(TOKEN.encode(), hand_on=True) == sha(TOKEN)


def test_a_handed_digest_is_taken_once_and_only_for_the_very_object():
    token = fresh(TOKEN)
    token_sha256(token, hand_on=True)
    other = fresh(TOKEN)
    assert other == token and other is not token
    assert handed_sha256(other) is None  # an equal token is another request's: never served from the slot
    token_sha256(token, hand_on=True)
    assert handed_sha256(token) == sha(TOKEN)
    assert handed_sha256(token) is None  # taken: nothing outlives the request


def test_ath_uses_the_handed_digest_of_its_token_and_computes_its_own_for_any_other():
    token = fresh(TOKEN)
    # A planted digest that is not the token's shows whether the slot was read at all.
    token_hash._handed.pair = (token, bytes(32))
    assert access_token_hash(token) == b64url_encode(bytes(32))
    token_hash._handed.pair = (token, bytes(32))
    other = fresh(TOKEN)
    assert access_token_hash(other) == b64url_encode(sha(TOKEN))
    assert handed_sha256(token) is None  # the ath check took the slot, though it was not for its token
    token_sha256(token, hand_on=True)
    assert access_token_hash(token) == b64url_encode(sha(TOKEN))


def test_each_thread_has_its_own_slot():
    token = fresh(TOKEN)
    token_sha256(token, hand_on=True)
    seen: list[bytes | None] = []
    thread = threading.Thread(target=lambda: seen.append(handed_sha256(token)))
    thread.start()
    thread.join()
    assert seen == [None]
    assert handed_sha256(token) == sha(TOKEN)
