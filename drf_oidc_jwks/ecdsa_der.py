"""An ECDSA signature in JWS form (``r || s``, RFC 7518 3.4) as the DER ``cryptography`` verifies.

Both an access token's ES256/ES384/ES512 signature (tokens_jws.py) and a DPoP proof's (dpop_keys.py) come this
way. The DER of two integers is ``30 len 02 len(r) r 02 len(s) s`` with each integer in the fewest bytes and a
zero byte in front when its top bit is set. When neither half starts with a zero byte (255 times in 256) the
layout depends only on the two top bits, so it is put together from precomputed pieces; otherwise the
integers go through ``encode_dss_signature``. Both give the same bytes (tests/test_ecdsa_der.py).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = ["der_signature"]


def _length(n: int) -> bytes:
    # DER lengths: one byte below 128, else 0x81 and one byte (no ECDSA signature reaches 256 bytes).
    return bytes((n,)) if n < 128 else bytes((0x81, n))


def _layouts(size: int) -> tuple[tuple[bytes, bytes], ...]:
    """Per (top bit of r, top bit of s), the bytes before r and the bytes between r and s."""
    out = []
    for high_r in (0, 1):
        for high_s in (0, 1):
            r_len, s_len = size + high_r, size + high_s
            head = b"\x30" + _length(4 + r_len + s_len) + b"\x02" + _length(r_len) + b"\x00" * high_r
            out.append((head, b"\x02" + _length(s_len) + b"\x00" * high_s))
    return tuple(out)


#: P-256 / secp256k1, P-384, P-521: the curves a JWS names.
_LAYOUTS = {size: _layouts(size) for size in (32, 48, 66)}


def der_signature(signature: bytes, size: int) -> bytes:
    """``r || s`` (each ``size`` bytes) as DER; ValueError when ``signature`` is not ``2 * size`` bytes."""
    if len(signature) != 2 * size:
        raise ValueError("ECDSA signature of the wrong length")
    layouts = _LAYOUTS.get(size)
    first_r, first_s = signature[0], signature[size]
    if layouts is not None and first_r and first_s:
        head, middle = layouts[(first_r >> 7) * 2 + (first_s >> 7)]
        return head + signature[:size] + middle + signature[size:]
    return encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
