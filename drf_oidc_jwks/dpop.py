"""DPoP proofs (RFC 9449): ``check_proof(proof, method=..., url=..., ...) -> ProofResult``, thumbprints, binding.

Everything is an explicit input: the caller passes the ``DPoP`` header value(s), the request's method and
absolute URL, the access token, the accepted algorithms and the clock. The checks run in a fixed order:
size and shape, header (``typ``, ``alg``, ``jwk``), signature with that ``jwk``, then the claims (``jti``,
``htm``, ``htu``, ``iat``, ``ath``) and last the server nonce. Nothing from the proof is trusted before its
signature verifies except the ``jwk`` that verifies it. Remembering the ``jti`` (replay) is the caller's
next step, once the token's ``cnf.jkt`` is known to match: :mod:`drf_oidc_jwks.dpop_store`.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NamedTuple

from .dpop_keys import (
    KEY_CACHE_SIZE,
    MIN_RSA_BITS,
    SUPPORTED_ALGORITHMS,
    Verifier,
    b64url_decode,
    b64url_encode,
    jwk_thumbprint,
    public_key,
)
from .dpop_urls import normalize_htu
from .exceptions import InvalidDPoPProof, SenderConstrained
from .token_hash import handed_sha256

__all__ = [
    "DEFAULT_ALGORITHMS",
    "MAX_PROOF_BYTES",
    "MIN_RSA_BITS",
    "SUPPORTED_ALGORITHMS",
    "ProofResult",
    "access_token_hash",
    "b64url_decode",
    "b64url_encode",
    "bound_jkt",
    "check_algorithms",
    "check_binding",
    "check_proof",
    "jwk_thumbprint",
    "normalize_htu",
    "proof_key_cache_info",
]

#: ``DPOP_ALGORITHMS`` by default (DESIGN.md).
DEFAULT_ALGORITHMS: tuple[str, ...] = ("ES256", "EdDSA", "RS256", "PS256")

#: Proofs larger than this are refused before any parsing (an RSA-4096 proof with a nonce is about 2.5 KB).
MAX_PROOF_BYTES = 8192
_MAX_JTI = 256

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_SPACE = " \t\n\r"  # RFC 8259 2: the only whitespace around a JSON value
_TYPES = frozenset({"dpop+jwt", "application/dpop+jwt"})


class ProofResult(NamedTuple):
    """A DPoP proof that passed every check of :func:`check_proof` (a NamedTuple: made on every request)."""

    #: RFC 7638 thumbprint of the proof's key: compare it to the token's ``cnf.jkt``.
    jkt: str
    jti: str
    iat: float
    htm: str
    htu: str
    alg: str
    nonce: str | None
    #: The proof's public key as sent (public members only).
    jwk: Mapping[str, Any]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        # RFC 7515 4 / RFC 8725 3.12: a duplicate member is read differently by different parsers.
        raise ValueError("duplicate member")
    return out


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_members)


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        text = b64url_decode(segment).decode("utf-8").lstrip(_JSON_SPACE)
        value, end = _DECODER.raw_decode(text)
        if end != len(text) and text[end:].strip(_JSON_SPACE):
            raise ValueError("extra data after the JSON value")
        if "\\u" in text and _SURROGATE_ESCAPE.search(text):
            # "\ud800" escapes smuggle lone surrogates, which no UTF-8 text holds: UnicodeEncodeError here.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, binascii.Error, RecursionError, UnicodeError):
        raise InvalidDPoPProof(f"proof {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidDPoPProof(f"proof {what} is not a JSON object")
    return value


def check_algorithms(algorithms: Collection[str]) -> tuple[str, ...]:
    """Return ``algorithms`` as a tuple; ValueError naming any HMAC, ``none`` or unknown one (for settings checks)."""
    if isinstance(algorithms, str) or not algorithms:
        raise ValueError("DPOP_ALGORITHMS must be a non-empty list of algorithm names")
    bad = [a for a in algorithms if a not in SUPPORTED_ALGORITHMS]
    if bad:
        raise ValueError(
            f"DPOP_ALGORITHMS holds {bad!r}: a proof must be signed with an asymmetric key "
            f"(supported: {sorted(SUPPORTED_ALGORITHMS)}; HMAC and none never)"
        )
    return tuple(algorithms)


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII of the access token)) (RFC 9449 4.2)."""
    # The memo already hashed this very token (token_hash.py); for ASCII text its UTF-8 is the same bytes.
    digest = handed_sha256(access_token) if access_token.isascii() else None
    if digest is None:
        digest = hashlib.sha256(access_token.encode("ascii", "surrogateescape")).digest()
    return b64url_encode(digest)


def bound_jkt(payload: Mapping[str, Any]) -> str | None:
    """The ``cnf.jkt`` a verified token is bound to, or None when it carries no ``jkt`` confirmation."""
    cnf = payload.get("cnf")
    # dict first (a verified payload's FrozenDict is one): the Mapping ABC check costs per request.
    if not isinstance(cnf, dict) and not isinstance(cnf, Mapping):
        return None
    jkt = cnf.get("jkt")
    return jkt if isinstance(jkt, str) and jkt else None


def check_confirmation(payload: Mapping[str, Any], *, dpop: bool) -> None:
    """Refuse a token bound by ``cnf`` (RFC 7800) unless it came with the DPoP scheme and names a ``jkt``.

    RFC 9449 7.2 / RFC 8705 3: a token bound to a DPoP key or a client certificate is no bearer token; of the
    bindings, only a ``cnf.jkt`` can be checked here, against the request's proof.
    """
    if "cnf" in payload and not (dpop and bound_jkt(payload)):
        raise SenderConstrained("cnf claim present")


def check_binding(payload: Mapping[str, Any], proof: ProofResult) -> None:
    """Refuse a proof whose key is not the one the token's ``cnf.jkt`` names (RFC 9449 7.1)."""
    jkt = bound_jkt(payload)
    if jkt is None:
        raise InvalidDPoPProof("the token carries no cnf.jkt", description="The token is not bound to a DPoP key.")
    # compare_digest takes ASCII text only; a cnf.jkt that is not ASCII names no thumbprint of ours.
    if not jkt.isascii() or not hmac.compare_digest(jkt, proof.jkt):
        raise InvalidDPoPProof(
            "proof key thumbprint differs from the token's cnf.jkt",
            description="The DPoP proof's key is not the key the token is bound to.",
        )


def _one_proof(proof: str | Sequence[str], max_bytes: int) -> str:
    if isinstance(proof, str):
        value = proof
    else:
        values = list(proof)
        if not all(isinstance(v, str) for v in values):
            raise InvalidDPoPProof("DPoP header values are not text")
        if not values:
            raise InvalidDPoPProof("no DPoP header", description="A DPoP proof header is required.")
        if len(values) > 1:
            raise InvalidDPoPProof("more than one DPoP header", description="Exactly one DPoP proof header is allowed.")
        value = values[0]
    if "," in value:
        # Servers join repeated headers with commas; a proof JWT never holds one (RFC 9449 4.3 check 1).
        raise InvalidDPoPProof("more than one DPoP header", description="Exactly one DPoP proof header is allowed.")
    value = value.strip()
    if not value:
        raise InvalidDPoPProof("empty DPoP header", description="A DPoP proof header is required.")
    if len(value) > max_bytes:
        raise InvalidDPoPProof(
            f"proof is {len(value)} bytes, limit {max_bytes}", description="The DPoP proof is too large."
        )
    return value


def _check_header(header: Mapping[str, Any], algorithms: Collection[str]) -> str:
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _TYPES:
        raise InvalidDPoPProof(f"typ {str(typ)[:32]!r}, expected dpop+jwt")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in SUPPORTED_ALGORITHMS:
        raise InvalidDPoPProof(f"alg {str(alg)[:16]!r} not in DPOP_ALGORITHMS {sorted(algorithms)}")
    if "crit" in header or header.get("b64") is False:
        raise InvalidDPoPProof("proof uses a JWS extension (crit or b64)")
    return alg


def _header_of(segment: str, algorithms: tuple[str, ...]) -> tuple[str, Mapping[str, Any], Verifier, str]:
    """alg, public jwk, verifier and thumbprint of a proof header; :func:`_checked_header` memoises it."""
    header = _json_object(segment, "header")
    alg = _check_header(header, algorithms)
    return (alg, *public_key(header.get("jwk"), alg))


#: :func:`_header_of`, memoised per process: a client's header never changes (wrapped here, not decorated:
#: mutmut mutates no decorated function).
_checked_header = functools.lru_cache(maxsize=KEY_CACHE_SIZE)(_header_of)


def proof_key_cache_info() -> Any:
    """Hits, misses and size of the per-process cache of proof headers and keys (``functools`` cache info)."""
    return _checked_header.cache_info()


def _split(proof: str) -> tuple[str, dict[str, Any], bytes, bytes]:
    segments = proof.split(".")
    if len(segments) != 3 or "" in segments:
        raise InvalidDPoPProof(f"proof has {len(segments)} segments, a compact JWS has 3")
    if not proof.isascii():
        # A compact JWS is base64url and dots; a header's other bytes arrive as Latin-1 text.
        raise InvalidDPoPProof("proof is not ASCII")
    header, body, signature = segments
    payload = _json_object(body, "payload")
    try:
        raw_signature = b64url_decode(signature)
    except (ValueError, binascii.Error):
        raise InvalidDPoPProof("proof signature is not base64url") from None
    return header, payload, proof[: len(header) + 1 + len(body)].encode("ascii"), raw_signature


def _iat(payload: Mapping[str, Any], max_age: float, leeway: float, now: float) -> float:
    iat = payload.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)):
        raise InvalidDPoPProof("iat absent or not a number")
    try:
        finite = math.isfinite(iat)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        raise InvalidDPoPProof("iat is not a finite number")
    if iat > now + leeway:
        raise InvalidDPoPProof(f"iat is {iat - now:.0f}s in the future (leeway {leeway:g}s)")
    if iat < now - max_age:
        raise InvalidDPoPProof(
            f"proof issued {now - iat:.0f}s ago, DPOP_PROOF_MAX_AGE {max_age:g}s",
            description="The DPoP proof is too old.",
        )
    return float(iat)


def _check_claims(payload: Mapping[str, Any], method: str, url: str, access_token: str | None) -> tuple[str, str, str]:
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
        raise InvalidDPoPProof("jti absent, empty, too long or not a string")
    htm = payload.get("htm")
    if htm != method:
        raise InvalidDPoPProof(
            f"htm {str(htm)[:16]!r}, request method {method}", description="The DPoP proof is for another HTTP method."
        )
    htu = payload.get("htu")
    if not isinstance(htu, str):
        raise InvalidDPoPProof("htu absent or not a string")
    try:
        same = normalize_htu(htu) == normalize_htu(url)
    except ValueError:
        same = False
    if not same:
        raise InvalidDPoPProof("htu is not the request URL", description="The DPoP proof is for another URL.")
    if access_token is not None:
        ath = payload.get("ath")
        # compare_digest takes ASCII text only: anything else is no base64url hash anyway.
        if (
            not isinstance(ath, str)
            or not ath.isascii()
            or not hmac.compare_digest(ath, access_token_hash(access_token))
        ):
            raise InvalidDPoPProof(
                "ath absent or not the access token's hash", description="The DPoP proof is for another token."
            )
    return jti, htm, htu


def check_proof(
    proof: str | Sequence[str],
    *,
    method: str,
    url: str,
    access_token: str | None,
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    max_age: float = 300,
    leeway: float = 0,
    now: float | None = None,
    nonce_checker: Callable[[str | None], None] | None = None,
    max_bytes: int = MAX_PROOF_BYTES,
) -> ProofResult:
    """Check one DPoP proof against the request (RFC 9449 4.3); raise InvalidDPoPProof or the nonce checker's error.

    ``proof`` is the ``DPoP`` header value, or the list of them; ``url`` the request's absolute URL (query and
    fragment are ignored). ``nonce_checker`` receives the proof's ``nonce`` (None when absent) once all else passed.
    """
    clock = time.time() if now is None else now
    raw = _one_proof(proof, max_bytes)
    header, payload, signing_input, signature = _split(raw)
    # Refusals raise, so only headers that passed every check are memoised.
    alg, jwk, verify, jkt = _checked_header(header, algorithms if isinstance(algorithms, tuple) else tuple(algorithms))
    try:
        verify(signature, signing_input)
    except Exception:  # noqa: BLE001 - any failure inside the crypto is a bad signature, never a 500
        raise InvalidDPoPProof(f"signature does not verify with the proof's own jwk ({alg})") from None
    jti, htm, htu = _check_claims(payload, method, url, access_token)
    iat = _iat(payload, max_age, leeway, clock)
    nonce = payload.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise InvalidDPoPProof("nonce is not a string")
    if nonce_checker is not None:
        nonce_checker(nonce)
    return ProofResult(jkt, jti, iat, htm, htu, alg, nonce, jwk)
