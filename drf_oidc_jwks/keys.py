"""Key parsing and key sets: which JWKs are usable, which algorithms each may verify.

No I/O here: :mod:`drf_oidc_jwks.jwks` fetches and caches, this module only judges what a JWKS holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from jwt.algorithms import get_default_algorithms
from jwt.exceptions import PyJWTError

from .exceptions import KeySourceError, UnknownKey, UnsupportedAlgorithm

logger = logging.getLogger("drf_oidc_jwks")

#: JWK members kept from a published key: public parts only. A published private
#: member (``d``, ``p``...) is dropped, never used.
_PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "key_ops", "n", "e", "crv", "x", "y")

_CURVE_FOR_ALG = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_ALGORITHMS = get_default_algorithms()


def key_allows(kty: str, crv: str | None, declared_alg: str | None, alg: str) -> bool:
    """Say whether a key of this type/curve (and declared ``alg``) may verify ``alg`` tokens.

    A key's own ``alg`` wins; keys without one (Better Auth publishes none) are
    matched by ``kty``/``crv`` so an EC or OKP key can never verify an RS* token.
    """
    if declared_alg is not None and declared_alg != alg:
        return False
    if alg.startswith(("RS", "PS")):
        return kty == "RSA"
    if alg in _CURVE_FOR_ALG:
        return kty == "EC" and crv == _CURVE_FOR_ALG[alg]
    if alg == "EdDSA":
        return kty == "OKP" and crv in ("Ed25519", "Ed448")
    return False


@dataclass(frozen=True)
class PublicKey:
    """One usable verification key of a JWKS."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    size: int | None
    key: Any
    jwk: Mapping[str, Any]

    def allows(self, alg: str) -> bool:
        """Say whether this key may verify a token signed with ``alg``."""
        return key_allows(self.kty, self.crv, self.alg, alg)


def parse_key(jwk: Any, min_rsa_size: int) -> PublicKey:
    """Build a :class:`PublicKey` from one JWK, raising ValueError when it is unusable."""
    if not isinstance(jwk, Mapping):
        raise ValueError("key is not an object")
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        # "oct" keys are refused outright: a symmetric secret has no place in a public JWKS.
        raise ValueError(f"unsupported kty {str(kty)[:16]!r}")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise ValueError("key is not for signatures")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ValueError("key_ops do not allow verify")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid is not a string")
    alg = jwk.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in _ALGORITHMS):  # a list is unhashable: no 500
        raise ValueError(f"unsupported alg {str(alg)[:16]!r}")
    crv = jwk.get("crv")
    public = {k: jwk[k] for k in _PUBLIC_MEMBERS if k in jwk}
    for member in ("n", "e", "crv", "x", "y"):
        if member in public and not isinstance(public[member], str):
            raise ValueError(f"{member} is not a string")
    try:
        if kty == "RSA":
            key = _ALGORITHMS["RS256"].from_jwk(public)
            size = key.key_size
            if size < min_rsa_size:
                raise ValueError(f"RSA key of {size} bits is below the minimum of {min_rsa_size}")
        elif kty == "EC":
            if crv not in ("P-256", "P-384", "P-521"):
                raise ValueError(f"unsupported curve {str(crv)[:16]!r}")
            key = _ALGORITHMS["ES256"].from_jwk(public)
            size = key.curve.key_size
        else:
            if crv not in ("Ed25519", "Ed448"):
                raise ValueError(f"unsupported curve {str(crv)[:16]!r}")
            key = _ALGORITHMS["EdDSA"].from_jwk(public)
            size = None
    except (PyJWTError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"key could not be built: {type(exc).__name__}") from None
    return PublicKey(kid=kid, kty=kty, crv=crv, alg=alg, size=size, key=key, jwk=public)


@dataclass(frozen=True)
class KeySet:
    """A parsed JWKS of one version, with its freshness."""

    version: str
    keys: tuple[PublicKey, ...]
    fetched_at: float
    fresh_until: float
    stale_until: float

    def by_kid(self, kid: str | None) -> list[PublicKey]:
        """The keys published under ``kid``."""
        return list(self._by_kid.get(kid, ()))

    def holds_kid(self, kid: str) -> bool:
        """Say whether some key is published under ``kid``."""
        return kid in self._by_kid

    def holds(self, key: PublicKey) -> bool:
        """Say whether ``key`` (this very object, not an equal one) is in the set."""
        return id(key) in self._ids

    # Indexes built once per key set: every request looks a key up, so the cost stays flat from 1 to
    # 100 keys. Identity, not equality: a memoised token names the object that verified it, and that
    # object (held by the memo) keeps its id unique while it lives.
    # (Properties wrapped, not decorated: mutmut mutates no decorated function.)
    def _index_by_kid(self) -> dict[str | None, tuple[PublicKey, ...]]:
        index: dict[str | None, tuple[PublicKey, ...]] = {}
        for k in self.keys:
            index[k.kid] = (*index.get(k.kid, ()), k)
        return index

    def _index_ids(self) -> frozenset[int]:
        return frozenset(id(k) for k in self.keys)

    _by_kid = cached_property(_index_by_kid)
    _ids = cached_property(_index_ids)

    def key_for(self, kid: str | None, alg: str) -> PublicKey:
        """The key that may verify a token with this ``kid`` (None: the only key) and ``alg``.

        Raises UnknownKey or UnsupportedAlgorithm.
        """
        if kid is None:
            if len(self.keys) != 1:
                raise UnknownKey(
                    f"no kid; JWKS holds {len(self.keys)} keys",
                    description="The token names no key and the issuer has several.",
                )
            if not self.keys[0].allows(alg):
                raise UnsupportedAlgorithm(description="The token's algorithm does not match its key.")
            return self.keys[0]
        found = self.by_kid(kid)
        if not found:
            raise UnknownKey(f"no key with kid {kid!r}")
        for key in found:
            if key.allows(alg):
                return key
        raise UnsupportedAlgorithm(
            f"key {kid!r} ({found[0].kty}/{found[0].crv or found[0].alg}) cannot verify {alg}",
            description="The token's algorithm does not match its key.",
        )


def parse_jwks(document: Any, min_rsa_size: int) -> tuple[list[dict[str, Any]], list[PublicKey]]:
    """Return the usable keys of a JWKS document; raise KeySourceError when there are none."""
    if not isinstance(document, Mapping):
        raise KeySourceError("JWKS is not a JSON object")
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list):
        raise KeySourceError("JWKS has no 'keys' list")
    usable: list[PublicKey] = []
    for index, jwk in enumerate(raw_keys[:256]):
        try:
            usable.append(parse_key(jwk, min_rsa_size))
        except ValueError as exc:
            logger.warning("JWKS key %d skipped: %s", index, exc)
    if not usable:
        raise KeySourceError("JWKS holds no usable signing key")
    return [dict(k.jwk) for k in usable], usable


def keyset_version(raw_keys: list[dict[str, Any]]) -> str:
    """A short digest naming a JWKS's usable keys: the same keys give the same version in every process."""
    return hashlib.sha256(json.dumps(raw_keys, sort_keys=True).encode()).hexdigest()[:16]
