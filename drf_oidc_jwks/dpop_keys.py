"""The proof's own key (RFC 9449 4.3 checks 5-6): public JWK checks, RFC 7638 thumbprints, signature verifiers.

A verifier is built once per key with cryptography (the hash and padding objects made once) and kept in a
bounded per-process cache keyed by the key's canonical public members; :mod:`drf_oidc_jwks.dpop` keeps the
checked headers in front of it. Only keys that passed every check are cached, and a cached key is trusted only
through the signature it verifies on each proof.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from jwt.algorithms import get_default_algorithms

from .ecdsa_der import der_signature
from .exceptions import InvalidDPoPProof

__all__ = [
    "KEY_CACHE_SIZE",
    "KEY_FOR_ALG",
    "MIN_RSA_BITS",
    "SUPPORTED_ALGORITHMS",
    "Verifier",
    "b64url_decode",
    "b64url_encode",
    "jwk_thumbprint",
    "public_key",
]

#: Every proof algorithm we can verify, with the key type (and curves) it needs. HMAC and ``none``
#: are absent on purpose: a proof must be signed by the client's own asymmetric key.
KEY_FOR_ALG: dict[str, tuple[str, tuple[str, ...]]] = {
    **{f"{p}{n}": ("RSA", ()) for p in ("RS", "PS") for n in ("256", "384", "512")},
    "ES256": ("EC", ("P-256",)),
    "ES384": ("EC", ("P-384",)),
    "ES512": ("EC", ("P-521",)),
    "EdDSA": ("OKP", ("Ed25519", "Ed448")),
}
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(KEY_FOR_ALG)

MIN_RSA_BITS = 2048
#: Keys (and checked proof headers, in dpop.py) remembered per process; least recently used go first.
KEY_CACHE_SIZE = 4096

#: Members that only a private or symmetric key has (RFC 7518 6.2.2, 6.3.2, 6.4; RFC 8037 2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "r", "t", "k"})
#: The public members a thumbprint hashes (RFC 7638 3.2), in the lexicographic order it requires.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}

_B64URL = re.compile(rb"[A-Za-z0-9_-]*")
#: The last character of canonical base64url by length mod 4: its unused low bits are zero (RFC 4648 3.5).
_LAST_CHARS = {0: None, 2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_ALGORITHMS = get_default_algorithms()
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}

#: ``verify(signature, signing_input)``: returns when the signature verifies, raises otherwise.
Verifier = Callable[[bytes, bytes], None]


def b64url_decode(segment: str) -> bytes:
    """Decode canonical unpadded base64url (RFC 7515 2); ValueError for padding, stray or non-zero trailing bits."""
    rest = len(segment) % 4
    if rest == 1:
        raise ValueError("not base64url")
    data = segment.encode("ascii")  # UnicodeEncodeError, a ValueError, for anything else
    # "+", "/" and "=" are dropped before "-" and "_" become them: a length change means one was there.
    standard = data.translate(_TO_STANDARD, b"+/=")
    if len(standard) != len(data):
        raise ValueError("not base64url")
    last = _LAST_CHARS[rest]
    # Two spellings of one value would let one proof pass as two distinct strings.
    if last is not None and segment[-1] not in last:
        raise ValueError("not canonical base64url")
    return _a2b_strict(standard + b"=" * (-rest % 4))


if sys.version_info >= (3, 11):

    def _a2b_strict(standard: bytes) -> bytes:
        # Strict mode refuses any byte outside the alphabet (binascii.Error, a ValueError).
        return binascii.a2b_base64(standard, strict_mode=True)

else:  # pragma: no cover - Python 3.10

    def _a2b_strict(standard: bytes) -> bytes:
        if not _B64URL.fullmatch(standard.translate(_TO_URLSAFE).rstrip(b"=")):
            raise ValueError("not base64url")
        return binascii.a2b_base64(standard)


def b64url_encode(raw: bytes) -> str:
    """Encode as unpadded base64url."""
    return binascii.b2a_base64(raw, newline=False).rstrip(b"=").translate(_TO_URLSAFE).decode("ascii")


def _canonical_json(members: Mapping[str, Any]) -> str:
    # The members in lexicographic order, no whitespace (RFC 7638 3.3); all are ASCII strings.
    return json.dumps(members, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (RSA, EC, OKP), base64url; ValueError for other keys."""
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if members is None:
        raise ValueError("thumbprints are defined here for RSA, EC and OKP keys only")
    values = {name: jwk.get(name) for name in members}
    if not all(isinstance(v, str) for v in values.values()):
        raise ValueError(f"a {jwk.get('kty')} key needs string members {list(members)}")
    return b64url_encode(hashlib.sha256(_canonical_json(values).encode("utf-8")).digest())


def public_key(jwk: Any, alg: str) -> tuple[Mapping[str, Any], Verifier, str]:
    """The public members, verifier and thumbprint of the proof's ``jwk`` for ``alg``; InvalidDPoPProof for others."""
    if not isinstance(jwk, dict):
        raise InvalidDPoPProof("jwk header absent or not an object")
    private = sorted(_PRIVATE_MEMBERS & jwk.keys())
    if private:
        # A client that sends its private key has lost it; never accept such a proof (RFC 9449 4.3 check 5).
        raise InvalidDPoPProof(
            f"jwk holds private members {private}", description="The DPoP proof's key is not public."
        )
    kty, (want_kty, curves) = jwk.get("kty"), KEY_FOR_ALG[alg]
    if kty != want_kty:
        raise InvalidDPoPProof(f"{alg} needs a {want_kty} key, the jwk is {str(kty)[:16]!r}")
    if curves and jwk.get("crv") not in curves:
        raise InvalidDPoPProof(f"{alg} needs curve {'/'.join(curves)}, the jwk is {str(jwk.get('crv'))[:16]!r}")
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        raise InvalidDPoPProof(f"jwk alg {str(declared)[:16]!r} differs from the proof's alg {alg}")
    public = {name: jwk.get(name) for name in _THUMBPRINT_MEMBERS[want_kty]}
    if not all(isinstance(value, str) for value in public.values()):
        raise InvalidDPoPProof(f"jwk members {sorted(public)} are not all strings")
    verify, jkt = _build_key(alg, _canonical_json(public))
    return MappingProxyType(public), verify, jkt


def _key_of(alg: str, canonical: str) -> tuple[Verifier, str]:
    """Verifier and thumbprint of one public JWK (its canonical thumbprint JSON); :func:`_build_key` memoises it."""
    public: dict[str, str] = json.loads(canonical)
    for name, value in public.items():
        if name not in ("kty", "crv") and not _canonical(value):
            raise InvalidDPoPProof(f"jwk member {name} is not canonical base64url")
    try:
        key = _ALGORITHMS[alg].from_jwk(public)
    except Exception:  # noqa: BLE001 - any key the crypto cannot build is a refused proof, never a 500
        raise InvalidDPoPProof(f"jwk is not a valid {public['kty']} key") from None
    if public["kty"] == "RSA" and key.key_size < MIN_RSA_BITS:
        raise InvalidDPoPProof(f"RSA key of {key.key_size} bits, minimum {MIN_RSA_BITS}")
    return _verifier(alg, key), b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


#: :func:`_key_of`, memoised per process (wrapped here, not decorated: mutmut mutates no decorated function).
_build_key = functools.lru_cache(maxsize=KEY_CACHE_SIZE)(_key_of)


def _verifier(alg: str, key: Any) -> Verifier:
    """``verify(signature, signing_input)`` for ``key``: returns, or raises (InvalidSignature, ValueError)."""
    # cryptography directly, with the padding and hash objects made once: the generic layer costs per call.
    if alg == "EdDSA":
        return key.verify  # type: ignore[no-any-return]  # Ed25519/Ed448: verify(signature, data) already
    digest = _HASHES[alg[2:]]()
    if alg.startswith("ES"):
        size, scheme, ec_verify = (key.curve.key_size + 7) // 8, ec.ECDSA(digest), key.verify

        def verify_ec(signature: bytes, data: bytes) -> None:
            # JWS carries r || s, each the curve's size (RFC 7518 3.4); anything else is no signature.
            ec_verify(der_signature(signature, size), data, scheme)

        return verify_ec
    if alg.startswith("PS"):
        pad: padding.AsymmetricPadding = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
    else:
        pad = padding.PKCS1v15()
    rsa_verify = key.verify
    return lambda signature, data: rsa_verify(signature, data, pad, digest)


def _canonical(value: str) -> bool:
    try:
        return bool(b64url_decode(value))
    except (ValueError, binascii.Error):
        return False
