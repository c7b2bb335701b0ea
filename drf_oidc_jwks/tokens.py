"""``verify_token(raw) -> Claims``, in a fixed order: size, shape, header, issuer, key, signature, claims.

Nothing read from the token before the signature is checked is trusted: the
unverified ``iss`` only selects among configured issuers, the unverified
``kid`` only selects among that issuer's keys, and URLs in the header (``jku``,
``x5u``, ``jwk``, ``x5c``) are never read at all.
"""

from __future__ import annotations

import binascii
import base64
import json
import re
from collections.abc import Mapping
from typing import Any

import jwt
from jwt import exceptions as jwt_exc

from .claims import Claims
from .conf import IssuerSettings, Settings, get_settings
from .exceptions import TokenError
from .jwks import get_client

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
#: Header parameters we understand; a ``crit`` naming anything is refused (RFC 7515 4.1.11).
_MAX_KID = 256


def _b64decode(segment: str) -> bytes:
    if not _B64URL.match(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment))
    except (ValueError, binascii.Error, RecursionError, UnicodeDecodeError):
        raise TokenError("malformed_token", "The token is malformed.", f"{what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise TokenError("malformed_token", "The token is malformed.", f"{what} is not a JSON object")
    return value


def safe(value: Any, limit: int = 64) -> str:
    """Render an untrusted value for a log line: bounded and escaped."""
    text = value if isinstance(value, str) else repr(value)
    text = text[:limit].encode("unicode_escape").decode("ascii")
    return text + ("…" if len(str(value)) > limit else "")


def read_unverified(raw: str | bytes, max_bytes: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Return (token, header, payload) decoded but NOT verified; raise TokenError on bad shape."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            raise TokenError("malformed_token", "The token is malformed.", "token is not ASCII") from None
    if len(raw) > max_bytes:
        raise TokenError("malformed_token", "The token is too large.", f"token is {len(raw)} bytes, limit {max_bytes}")
    segments = raw.split(".")
    if len(segments) == 5:
        raise TokenError("malformed_token", "Encrypted tokens are not accepted.", "JWE (5 segments)")
    if len(segments) != 3 or not all(segments[:2]):
        raise TokenError("malformed_token", "The token is malformed.", f"{len(segments)} segments, 3 expected")
    header = _json_object(segments[0], "header")
    payload = _json_object(segments[1], "payload")
    return raw, header, payload


def _check_header(header: Mapping[str, Any], issuer: IssuerSettings) -> tuple[str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in issuer.algorithms:
        raise TokenError(
            "unsupported_algorithm",
            "The token's algorithm is not accepted.",
            f"alg {safe(alg)} not in {list(issuer.algorithms)}",
        )
    if "crit" in header:
        # We implement no JWS extension, so any critical one must be refused.
        raise TokenError("malformed_token", "The token uses an unsupported critical header.", "crit header present")
    if header.get("b64") is False:
        raise TokenError("malformed_token", "The token is malformed.", "unencoded payload (b64=false)")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > _MAX_KID):
        raise TokenError("malformed_token", "The token's key id is malformed.", "kid is not a short string")
    if issuer.allowed_types is not None:
        typ = header.get("typ")
        norm = typ.lower().removeprefix("application/") if isinstance(typ, str) else None
        if norm not in {t.lower().removeprefix("application/") for t in issuer.allowed_types}:
            raise TokenError(
                "invalid_token_type",
                "The token's type is not accepted here.",
                f"typ {safe(typ)} not in {list(issuer.allowed_types)}",
            )
    return alg, kid


def verify_token(raw: str | bytes, settings: Settings | None = None) -> Claims:
    """Verify a compact JWS bearer token and return its Claims; raise TokenError or KeySourceError."""
    s = settings or get_settings()
    token, header, payload = read_unverified(raw, s.max_token_bytes)
    kid = header.get("kid")
    iss = payload.get("iss")
    try:
        issuer = s.issuer_for(iss)
        if issuer is None:
            # No network request for an issuer nobody configured.
            raise TokenError("invalid_issuer", "The token's issuer is not trusted.", f"iss {safe(iss)} not configured")
        alg, kid = _check_header(header, issuer)
        key = get_client(issuer).get_key(kid, alg)
        payload = _decode(token, key.key, alg, issuer, s, payload)
    except TokenError as exc:
        exc.kid, exc.iss = kid, iss
        raise
    return Claims(payload, issuer.claims, header)


def _decode(
    token: str, key: Any, alg: str, issuer: IssuerSettings, s: Settings, unverified: Mapping[str, Any]
) -> dict[str, Any]:
    audience = list(issuer.audience) if issuer.audience is not None else None
    # Cognito access tokens carry the app client in client_id and no aud.
    client_id_audience = issuer.provider == "cognito" and "aud" not in unverified
    options: dict[str, Any] = {
        "require": list(issuer.required_claims),
        "verify_aud": audience is not None and not client_id_audience,
    }
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=None if client_id_audience else audience,
            issuer=issuer.issuer,
            leeway=s.leeway,
            options=options,  # type: ignore[arg-type]
        )
    except jwt_exc.InvalidSignatureError:
        raise TokenError("invalid_signature", "The token's signature is invalid.", "signature does not verify") from None
    except jwt_exc.ExpiredSignatureError:
        exp = unverified.get("exp")
        raise TokenError("token_expired", "The token has expired.", f"exp {safe(exp)}") from None
    except jwt_exc.ImmatureSignatureError as exc:
        raise TokenError("token_not_yet_valid", "The token is not yet valid.", str(exc)) from None
    except jwt_exc.InvalidIssuerError:
        raise TokenError("invalid_issuer", "The token's issuer is not trusted.", "iss mismatch") from None
    except jwt_exc.InvalidAudienceError:
        raise TokenError(
            "invalid_audience",
            "The token is not meant for this API.",
            f"aud {safe(unverified.get('aud'))} not in {audience}",
        ) from None
    except jwt_exc.MissingRequiredClaimError as exc:
        if exc.claim == "aud":
            raise TokenError("invalid_audience", "The token is not meant for this API.", "no aud claim") from None
        raise TokenError("missing_claim", f"The token lacks the '{exc.claim}' claim.", f"{exc.claim} missing") from None
    except jwt_exc.PyJWTError as exc:
        raise TokenError("malformed_token", "The token is malformed.", f"{type(exc).__name__}: {exc}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise TokenError("malformed_token", "The token is malformed.", type(exc).__name__) from None
    if client_id_audience and audience is not None and payload.get("client_id") not in audience:
        raise TokenError(
            "invalid_audience",
            "The token is not meant for this API.",
            f"client_id {safe(payload.get('client_id'))} not in {audience}",
        )
    return payload
