"""Compact JWS: split and decode a token (canonical base64url, strict JSON), and check its signature.

Nothing here trusts the token: :func:`read_unverified` only parses it, :func:`verify_signature` checks
the signing input against a key parsed from the JWKS (keys.py), calling cryptography on that key object
directly. The token is read once: one ASCII encoding, one alphabet check and one translation for the
whole text, then one base64 decode and one JSON parse per segment. Anything the fast path does not
accept goes through the segment-by-segment reading below, which says what is wrong with it.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from .ecdsa_der import der_signature
from .exceptions import InvalidSignature, MalformedToken, TokenError
from .frozen import freeze
from .keys import PublicKey

__all__ = ["Parsed", "read_unverified", "unverified_ids", "verify_signature"]

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_ALPHABET_DOT = _ALPHABET + b"."
# RFC 4648 3.5 / RFC 7515 2: a segment of length 2 or 3 (mod 4) ends in a character whose low 4 or 2
# bits are unused and must be zero; otherwise several texts decode to the same bytes (one token, many
# spellings, so a revocation list or replay store keyed on the text could be bypassed).
_CANONICAL_LAST = {0: None, 2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_CANONICAL_BYTE = {rem: None if last is None else frozenset(map(ord, last)) for rem, last in _CANONICAL_LAST.items()}
_PADDING = {0: b"", 2: b"==", 3: b"="}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); Python's json would accept them.
    raise ValueError(f"non-standard JSON constant {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# The C scanner behind decode(), called directly (set by JSONDecoder.__init__, absent from the stubs).
_SCAN: Any = getattr(_DECODER, "scan_once")  # noqa: B009
_HEADERS: dict[bytes, dict[str, Any]] = {}
# Tokens from one key share one header text: its parse is kept (a pure function of the text, so safe
# before verification), bounded in count and in the length of what is kept.
_HEADERS_MAX, _HEADER_MAX_CHARS = 256, 512


class Parsed(NamedTuple):
    """A compact JWS split and decoded, NOT verified."""

    token: str
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _decode_json(text: str) -> Any:
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        # Whitespace around the value (valid JSON), or an error: the full decoder decides.
        value = _DECODER.decode(text)
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        # "\ud800" escapes smuggle lone surrogates, which no UTF-8 text holds (RFC 8725 3.7, RFC 7493
        # 2.1): refuse them here (UnicodeEncodeError), or every view rendering the claim would 500.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def _object(standard: bytes, what: str) -> dict[str, Any]:
    """One segment, already in the standard alphabet and padded: base64, UTF-8, then a JSON object."""
    try:
        value = _decode_json(binascii.a2b_base64(standard).decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError, UnicodeDecodeError):
        raise MalformedToken(f"{what} is not base64url JSON") from None
    if type(value) is not dict:
        raise MalformedToken(f"{what} is not a JSON object")
    return value


def _standard(segment: bytes) -> bytes | None:
    """A base64url segment (alphabet already checked) in the standard alphabet, padded; None if not canonical."""
    rem = len(segment) & 3
    if rem == 1:
        return None
    last = _CANONICAL_BYTE[rem]
    if last is not None and segment[-1] not in last:
        return None
    return segment.translate(_TO_STANDARD) + _PADDING[rem]


def read_unverified(raw: str | bytes, max_bytes: int) -> Parsed:
    """Split and decode a compact JWS without verifying it; raise TokenError on bad shape."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedToken("token is not ASCII") from None
    if len(raw) > max_bytes:
        raise MalformedToken(f"token is {len(raw)} bytes, limit {max_bytes}", description="The token is too large.")
    data = raw.encode("ascii") if raw.isascii() else b""
    if data.count(b".") != 2 or data.translate(None, _ALPHABET_DOT):
        return _read_segments(raw)  # not three base64url segments: say what is wrong with it
    first = data.index(b".")
    second = data.index(b".", first + 1)
    head, body, tail = data[:first], data[first + 1 : second], data[second + 1 :]
    std_head, std_body, std_tail = _standard(head), _standard(body), _standard(tail)
    if not head or not body or std_head is None or std_body is None or std_tail is None:
        return _read_segments(raw)
    header = _HEADERS.get(head)
    if header is None:
        header = _keep_header(head, _object(std_head, "header"))
    payload = _object(std_body, "payload")
    try:
        signature = binascii.a2b_base64(std_tail)
    except binascii.Error:
        raise MalformedToken("signature is not base64url") from None
    return Parsed(raw, header, payload, data[:second], signature)


def _keep_header(segment: bytes, value: dict[str, Any]) -> dict[str, Any]:
    try:
        header: dict[str, Any] = freeze(value)
    except RecursionError:
        raise MalformedToken("header nests too deeply") from None
    if len(segment) <= _HEADER_MAX_CHARS:
        if len(_HEADERS) >= _HEADERS_MAX:
            _HEADERS.clear()
        _HEADERS[segment] = header
    return header


def _b64decode(segment: str) -> bytes:
    """Decode one segment of canonical, unpadded base64url; anything else is a ValueError."""
    rem = len(segment) % 4
    if rem == 1 or not _B64URL.fullmatch(segment):
        raise ValueError("not base64url")
    last = _CANONICAL_LAST[rem]
    if last is not None and segment[-1] not in last:
        raise ValueError("non-canonical base64url (unused bits set)")
    return binascii.a2b_base64(segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[rem])


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = _decode_json(_b64decode(segment).decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError, UnicodeDecodeError):
        raise MalformedToken(f"{what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"{what} is not a JSON object")
    return value


def _read_segments(raw: str) -> NoReturn:
    """The reading segment by segment, for what the fast path refused: raises the precise MalformedToken.

    It never returns: the fast path reads every well-formed token, so what reaches here is refused.
    """
    segments = raw.split(".")
    if len(segments) == 5:
        raise MalformedToken("JWE (5 segments)", description="Encrypted tokens are not accepted.")
    if len(segments) != 3 or not all(segments[:2]):
        raise MalformedToken(f"{len(segments)} segments, 3 expected")
    _keep_header(segments[0].encode("utf-8", "surrogatepass"), _json_object(segments[0], "header"))
    _json_object(segments[1], "payload")
    try:
        _b64decode(segments[2])
    except (ValueError, binascii.Error):
        raise MalformedToken("signature is not base64url") from None
    raise MalformedToken("token is not a compact JWS")  # pragma: no cover - the fast path reads such a token


def unverified_ids(raw: str | bytes) -> tuple[Any, Any]:
    """The unverified ``kid`` and ``iss`` of a token, for a refusal's log line; (None, None) when unreadable."""
    try:
        parsed = read_unverified(raw, len(raw))
    except TokenError:
        return None, None
    return parsed.header.get("kid"), parsed.payload.get("iss")


# ---------------------------------------------------------------------------
# Signatures: cryptography called on the key object keys.py parsed, with PyJWT's semantics

Verifier = Callable[[Any, bytes, bytes], None]


def _pkcs1(hash_alg: hashes.HashAlgorithm) -> Verifier:
    pad = padding.PKCS1v15()

    def verify(key: Any, message: bytes, signature: bytes) -> None:
        key.verify(signature, message, pad, hash_alg)

    return verify


def _pss(hash_alg: hashes.HashAlgorithm) -> Verifier:
    pad = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)

    def verify(key: Any, message: bytes, signature: bytes) -> None:
        key.verify(signature, message, pad, hash_alg)

    return verify


def _ecdsa(hash_alg: hashes.HashAlgorithm) -> Verifier:
    scheme = ec.ECDSA(hash_alg)

    def verify(key: Any, message: bytes, signature: bytes) -> None:
        # RFC 7518 3.4: the JWS form is r || s, each the curve's size; cryptography takes DER.
        key.verify(der_signature(signature, (key.curve.key_size + 7) // 8), message, scheme)

    return verify


def _eddsa(key: Any, message: bytes, signature: bytes) -> None:
    key.verify(signature, message)


_SHA = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
_VERIFIERS: dict[str, Verifier] = {
    **{f"RS{n}": _pkcs1(h) for n, h in _SHA.items()},
    **{f"PS{n}": _pss(h) for n, h in _SHA.items()},
    **{f"ES{n}": _ecdsa(h) for n, h in _SHA.items()},
    "EdDSA": _eddsa,
}


def verify_signature(parsed: Parsed, key: PublicKey, alg: str) -> None:
    """Check the signature with the key's own verify; raise TokenError (``invalid_signature``) when it fails."""
    # Every algorithm a parsed key may verify (keys.key_allows) has its verifier here; any other is refused.
    verifier = _VERIFIERS.get(alg)
    if verifier is not None:
        try:
            verifier(key.key, parsed.signing_input, parsed.signature)
            return
        except Exception:  # noqa: BLE001, S110 - any failure inside the crypto is a bad signature, never a 500
            pass
    raise InvalidSignature(f"signature does not verify with key {key.kid!r} ({key.kty}, {alg})")
