"""``verify_token(raw) -> Claims``, in a fixed order: size, shape, header, issuer, key, signature, claims.

Nothing read from the token before the signature is checked is trusted: the
unverified ``iss`` only selects among configured issuers, the unverified
``kid`` only selects among that issuer's keys, and URLs in the header (``jku``,
``x5u``, ``jwk``, ``x5c``) are never read at all.

The token is parsed once (:mod:`drf_oidc_jwks.tokens_jws`): the signature is
checked with cryptography on the key object parsed from the JWKS and the bytes
already split, and the registered claims are checked below with PyJWT's
semantics (``exp``/``nbf``/``iat`` with leeway, exact ``iss``, ``aud``
containment). Verified tokens are memoised by their SHA-256 (never the
token itself) until the earlier of their expiry and ``TOKEN_CACHE_TTL``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from django.core.exceptions import ImproperlyConfigured

from .audience import any_audience_matches
from .claims import Claims
from .conf import IssuerSettings, Settings, get_settings, register_reset
from .dpop import check_confirmation
from .exceptions import (
    InvalidAudience,
    InvalidIssuer,
    InvalidTokenType,
    MalformedToken,
    MissingClaim,
    TokenExpired,
    TokenNotYetValid,
    UnsupportedAlgorithm,
)
from .issuer_lookup import Selected, select, select_issuer
from .jwks import JWKSClient, PublicKey, get_client
from .logfields import safe
from .signals import emit, token_verified
from .token_hash import token_sha256
from .tokens_jws import Parsed, read_unverified, unverified_ids, verify_signature

__all__ = [
    "Parsed",
    "TokenMemo",
    "announce_verified",
    "get_memo",
    "read_unverified",
    "reset_memo",
    "safe",
    "unverified_ids",
    "validate_claims",
    "verify_signature",
    "verify_token",
]

_MAX_KID = 256
_NUMBER = (int, float)


def _check_header(header: Mapping[str, Any], issuer: IssuerSettings) -> tuple[str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in issuer.algorithms:
        raise UnsupportedAlgorithm(f"alg {safe(alg)} not in {list(issuer.algorithms)}")
    if "crit" in header:
        # We implement no JWS extension, so any critical one must be refused.
        raise MalformedToken("crit header present", description="The token uses an unsupported critical header.")
    if header.get("b64") is False:
        raise MalformedToken("unencoded payload (b64=false)")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > _MAX_KID):
        raise MalformedToken("kid is not a short string", description="The token's key id is malformed.")
    if issuer.allowed_types is not None:
        typ = header.get("typ")
        norm = typ.lower().removeprefix("application/") if isinstance(typ, str) else None
        if norm not in {t.lower().removeprefix("application/") for t in issuer.allowed_types}:
            raise InvalidTokenType(f"typ {safe(typ)} not in {list(issuer.allowed_types)}")
    return alg, kid


def _number(payload: Mapping[str, Any], name: str) -> float | None:
    value = payload.get(name)
    kind = type(value)
    if kind is not int and kind is not float:  # JSON gives exactly these; anything else takes the long way
        if value is None and name not in payload:
            return None
        if isinstance(value, bool) or not isinstance(value, _NUMBER):
            raise MalformedToken(f"{name} is not a number: {safe(value)}")
    # JSON allows 1e400 (read as inf) and integers too large for a float, which would raise
    # OverflowError in the arithmetic below (a 500): neither is a meaningful NumericDate.
    if not _finite(value):
        raise MalformedToken(f"{name} is not a finite number")
    return value


def _finite(value: Any) -> bool:
    kind = type(value)
    try:
        if kind is int or kind is float:
            return math.isfinite(value)
        return isinstance(value, _NUMBER) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:
        return False


def validate_claims(
    payload: Mapping[str, Any], issuer: IssuerSettings, leeway: float, now: float, *, dpop: bool = False
) -> None:
    """Check the registered claims with PyJWT's semantics; raise TokenError with the stable code.

    ``dpop``: the token came with the DPoP scheme, so a ``cnf.jkt`` binding is left to the proof check.

    A non-finite ``leeway`` is ImproperlyConfigured: NaN or infinity would turn every time check off.
    """
    if not _finite(leeway):
        raise ImproperlyConfigured(f"DRF_OIDC_JWKS LEEWAY must be a finite number of seconds, not {leeway!r}")
    for name in issuer.required_claims:
        if name not in payload:
            if name == "aud":
                raise InvalidAudience(f"no aud claim; expected one of {list(issuer.audience or ())}")
            raise MissingClaim(
                f"required claim {name!r} is absent (REQUIRED_CLAIMS {list(issuer.required_claims)})",
                description=f"The token lacks the '{name}' claim.",
            )
    for name in ("iat", "nbf"):
        when = _number(payload, name)
        if when is not None and when > now + leeway:
            raise TokenNotYetValid(f"{name} is {when - now:.0f}s in the future (leeway {leeway:g}s)")
    exp = _number(payload, "exp")
    if exp is not None and exp <= now - leeway:
        raise TokenExpired(f"expired {now - exp:.0f}s ago (exp {safe(exp)}, leeway {leeway:g}s)")
    if payload.get("iss") != issuer.issuer:
        raise InvalidIssuer(f"iss {safe(payload.get('iss'))}, expected {issuer.issuer!r}")
    for name in ("sub", "jti"):
        if name in payload and not isinstance(payload[name], str):
            raise MalformedToken(f"{name} is not a string: {safe(payload[name])}")
    if "\x00" in payload.get("sub", ""):
        # A NUL byte is never part of a real identifier, and PostgreSQL text cannot hold one (a 500 in user sync).
        raise MalformedToken("sub contains a NUL byte")
    if issuer.audience is not None:
        _check_audience(payload, issuer)
    check_confirmation(payload, dpop=dpop)


def _check_audience(payload: Mapping[str, Any], issuer: IssuerSettings) -> None:
    expected = issuer.audience or ()
    if issuer.provider == "cognito" and "aud" not in payload:
        # Cognito access tokens name the app client in client_id and carry no aud.
        if payload.get("client_id") in expected:
            return
        raise InvalidAudience(
            f"no aud, and client_id {safe(payload.get('client_id'))}; expected one of {list(expected)}"
        )
    aud = payload.get("aud")
    if type(aud) is str and aud in expected:
        return  # the common case: exactly the configured audience
    if not aud:
        raise InvalidAudience(f"no aud claim; expected one of {list(expected)}")
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidAudience(f"aud is not a string or list: {safe(aud)}")
    # MCP canonical URI rule: scheme and host case-insensitive, the path exact (audience.py).
    if not any_audience_matches(values, expected):
        raise InvalidAudience(f"aud {safe(aud)}, expected one of {list(expected)}")


# ---------------------------------------------------------------------------
# Verified-token memo


class _Entry(NamedTuple):
    claims: Claims
    valid_until: float
    client: JWKSClient
    key: PublicKey


class TokenMemo:
    """A bounded in-process map from SHA-256(token) to verified Claims.

    An entry serves until the earlier of the token's ``exp`` (+ leeway) and the
    ceiling, and only while the key that verified it is still in the issuer's
    current key set. Only successes are kept; refused tokens are re-checked.
    ``settings``: the settings its tokens were verified under (:func:`get_memo`).
    """

    def __init__(self, maxsize: int, settings: Settings | None = None) -> None:
        self.maxsize = maxsize
        self.settings = settings
        self._data: dict[bytes, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, digest: bytes, now: float) -> Claims | None:
        entry = self._data.get(digest)
        if entry is None:
            return None
        if now >= entry.valid_until or not entry.client.holds(entry.key):
            self._data.pop(digest, None)
            return None
        return entry.claims

    def put(self, digest: bytes, entry: _Entry) -> None:
        with self._lock:
            data = self._data
            while len(data) >= self.maxsize:
                # Oldest first: dicts keep insertion order.
                data.pop(next(iter(data)), None)
            data[digest] = entry

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


_memo: TokenMemo | None = None


def get_memo(s: Settings) -> TokenMemo | None:
    """The process's memo for ``s``, or None when ``TOKEN_CACHE_TTL`` or ``TOKEN_CACHE_SIZE`` is 0.

    One memo, for one settings object at a time: a token verified under other settings (``verify_token``'s
    ``settings``, or the settings changed) is verified again, never answered from what those settings accepted.
    """
    global _memo
    if s.token_cache_ttl <= 0 or s.token_cache_size <= 0:
        return None
    memo = _memo
    if memo is None or memo.settings is not s:
        memo = _memo = TokenMemo(s.token_cache_size, s)
    return memo


def reset_memo() -> None:
    """Forget every memoised token (settings changed, or tests)."""
    if _memo is not None:
        _memo.clear()


register_reset("tokens.memo", reset_memo)


# ---------------------------------------------------------------------------

#: iss -> (settings, its Selected): a pure function of the configuration, kept for the next token; bounded,
#: since with ``TENANTS: "*"`` every tenant name is a new iss.
_selected: dict[str, tuple[Settings, Selected]] = {}
_SELECTED_MAX = 1024


def _select(s: Settings, iss: Any) -> Selected | None:
    held = _selected.get(iss) if type(iss) is str else None
    if held is not None and held[0] is s:
        return held[1]
    found = select(s, iss)
    if found is not None and type(iss) is str:
        if len(_selected) >= _SELECTED_MAX:
            _selected.clear()
        _selected[iss] = (s, found)
    return found


register_reset("tokens.selected", _selected.clear)


def verify_token(
    raw: str | bytes, settings: Settings | None = None, *, now: float | None = None, dpop: bool = False
) -> Claims:
    """Verify a compact JWS access token and return its Claims; raise TokenError or KeySourceError.

    ``dpop=True`` (the DPoP scheme) accepts a ``cnf.jkt`` binding: the caller must then check the proof.
    """
    s = settings or get_settings()
    clock = time.time() if now is None else now
    memo = get_memo(s) if now is None else None
    digest = b""
    if memo is not None:
        # A DPoP request's proof check needs this hash too (ath): handed on, not computed twice.
        digest = token_sha256(raw, hand_on=dpop)
        hit = memo.get(digest, clock)
        if hit is not None:
            check_confirmation(hit.raw, dpop=dpop)  # memoised from a DPoP request, now perhaps as Bearer
            if token_verified.receivers:  # nothing computed when nobody listens (bench/ops.py)
                announce_verified(s, hit.issuer, memoised=True)
            return hit
    parsed = read_unverified(raw, s.max_token_bytes)
    header, payload = parsed.header, parsed.payload
    iss = payload.get("iss")
    # No network request for an issuer nobody configured, no {tenant} template allows, nor ISSUER_RESOLVER vouches for.
    selected = _select(s, iss) or select_issuer(s, iss)
    issuer = selected.issuer  # the concrete issuer: iss is checked against it, users are keyed by it
    alg, kid = _check_header(header, issuer)
    client = get_client(selected.keys)  # tenants sharing a key set share this client and its cache entry
    key = client.get_key(kid, alg)
    verify_signature(parsed, key, alg)
    validate_claims(payload, issuer, s.leeway, clock, dpop=dpop)
    selected.match.check_payload(payload)
    try:
        claims = Claims(payload, issuer.claims, header)
    except RecursionError:
        raise MalformedToken("payload nests too deeply") from None
    if memo is not None:
        exp = payload.get("exp")
        until = clock + min(s.token_cache_ttl, selected.resolved_for)  # a resolved issuer is asked again
        if isinstance(exp, _NUMBER) and not isinstance(exp, bool):
            until = min(until, exp + s.leeway)
        memo.put(digest, _Entry(claims, until, client, key))
    if token_verified.receivers:
        announce_verified(s, issuer.issuer, memoised=False)
    return claims


def announce_verified(s: Settings, iss: str | None, *, memoised: bool) -> None:
    """Send ``token_verified`` with the configured issuer (label values stay bounded)."""
    issuer = s.issuer_for(iss)
    emit(token_verified, verify_token, issuer=issuer.issuer if issuer is not None else None, memoised=memoised)
