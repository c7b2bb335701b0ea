"""OpenID Connect Back-Channel Logout 1.0 receiver: a verified logout token becomes a revocation.

The identity provider POSTs ``logout_token=<JWT>`` (``application/x-www-form-urlencoded``). The token is
verified with the issuer's JWKS and the rules of the spec's section 2.6: ``typ`` ``logout+jwt`` when
sent, an allowed ``alg``, ``iss`` a configured issuer, ``aud`` one of ``BACKCHANNEL_LOGOUT_AUDIENCE``,
``iat`` recent, ``exp`` (when sent) not past, the back-channel logout event in ``events``, ``sub`` or
``sid``, no ``nonce``, and a ``jti`` accepted once across all processes. Then the (``iss``, ``sid``)
and (``iss``, ``sub``) of the token are revoked as of its ``iat`` (the IdP's clock, the clock the
access tokens' ``iat`` come from). Answers: 200, or 400 ``{"error": "invalid_request"}`` with nothing
recorded; always ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import revocation
from .conf import IssuerSettings, Settings, get_settings
from .exceptions import KeySourceError, TokenError
from .jwks import get_client
from .tokens import Parsed, read_unverified, safe, verify_signature

logger = logging.getLogger("drf_oidc_jwks")

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: Seconds a logout token's ``iat`` may lie in the past (plus ``LEEWAY``); its ``jti`` is kept as long.
DEFAULT_MAX_AGE = 300.0


class LogoutTokenError(Exception):
    """A logout token was refused; ``reason`` is for the log (never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _number(payload: Mapping[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise LogoutTokenError(f"{name} is not a number")
    return float(value)


def _check_header(parsed: Parsed, issuer: IssuerSettings) -> tuple[str, str | None]:
    header = parsed.header
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in issuer.algorithms:
        raise LogoutTokenError(f"alg {safe(alg)} not in ALGORITHMS")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower().removeprefix("application/") != "logout+jwt"):
        raise LogoutTokenError(f"typ {safe(typ)} is not logout+jwt")
    if "crit" in header:
        raise LogoutTokenError("crit header present")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise LogoutTokenError("kid is not a string")
    return alg, kid


def check_logout_claims(
    payload: Mapping[str, Any], audience: Sequence[str], *, leeway: float, max_age: float, now: float
) -> None:
    """Apply section 2.6's claim rules (after the signature); raise LogoutTokenError."""
    aud = payload.get("aud")
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not audience or not any(isinstance(v, str) and v in audience for v in values):
        raise LogoutTokenError(f"aud {safe(aud)} not in BACKCHANNEL_LOGOUT_AUDIENCE")
    iat = _number(payload, "iat")
    if iat is None:
        raise LogoutTokenError("no iat")
    if iat > now + leeway or iat < now - max_age - leeway:
        raise LogoutTokenError(f"iat is {now - iat:.0f}s old, accepted up to {max_age:g}s (leeway {leeway:g}s)")
    exp = _number(payload, "exp")
    if exp is not None and exp <= now - leeway:
        raise LogoutTokenError("expired")
    events = payload.get("events")
    if not isinstance(events, Mapping) or not isinstance(events.get(LOGOUT_EVENT), Mapping):
        raise LogoutTokenError("events lacks the back-channel logout event")
    sub, sid = payload.get("sub"), payload.get("sid")
    if sub is None and sid is None:
        raise LogoutTokenError("neither sub nor sid")
    for name, value in (("sub", sub), ("sid", sid)):
        if value is not None and (not isinstance(value, str) or not value):
            raise LogoutTokenError(f"{name} is not a non-empty string")
    if "nonce" in payload:
        raise LogoutTokenError("nonce present (an ID token, not a logout token)")
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti:
        raise LogoutTokenError("no jti")


def verify_logout_token(
    raw: str, settings: Settings, audience_for: Any, *, max_age: float = DEFAULT_MAX_AGE, now: float | None = None
) -> tuple[IssuerSettings, Mapping[str, Any]]:
    """Verify a logout token; return its issuer and payload or raise LogoutTokenError.

    ``audience_for(issuer)`` gives the accepted ``aud`` values of an issuer (``BACKCHANNEL_LOGOUT_AUDIENCE``).
    """
    try:
        parsed = read_unverified(raw, settings.max_token_bytes)
    except TokenError as exc:
        raise LogoutTokenError(exc.reason) from None
    issuer = settings.issuer_for(parsed.payload.get("iss"))
    if issuer is None:
        raise LogoutTokenError(f"iss {safe(parsed.payload.get('iss'))} is not a configured ISSUER")
    alg, kid = _check_header(parsed, issuer)
    try:
        key = get_client(issuer).get_key(kid, alg)
        verify_signature(parsed, key, alg)
    except TokenError as exc:
        raise LogoutTokenError(exc.reason) from None
    except KeySourceError as exc:
        raise LogoutTokenError(f"no keys: {exc.reason}") from None
    clock = time.time() if now is None else now
    check_logout_claims(
        parsed.payload, tuple(audience_for(issuer) or ()), leeway=settings.leeway, max_age=max_age, now=clock
    )
    return issuer, parsed.payload


@method_decorator(csrf_exempt, name="dispatch")
class BackchannelLogoutView(View):
    """``POST logout_token=...``: 200 when the logout was recorded, 400 ``invalid_request`` otherwise."""

    http_method_names = ["post"]
    #: Seconds a logout token's ``iat`` may lie in the past (``LOGOUT_TOKEN_MAX_AGE``, proposed).
    max_age: float = DEFAULT_MAX_AGE
    #: True: a token with a ``sid`` revokes that session only, not every token of its ``sub``.
    session_only: bool = False

    def get_audience(self, issuer: IssuerSettings) -> Sequence[str]:
        """The ``aud`` values accepted from ``issuer``: its ``BACKCHANNEL_LOGOUT_AUDIENCE``."""
        return issuer.backchannel_logout_audience or ()

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.content_type != "application/x-www-form-urlencoded":
            return self.refuse("content type is not application/x-www-form-urlencoded")
        tokens = request.POST.getlist("logout_token")
        if len(tokens) != 1:
            return self.refuse(f"{len(tokens)} logout_token parameters, 1 expected")
        settings = get_settings()
        try:
            issuer, payload = verify_logout_token(tokens[0], settings, self.get_audience, max_age=self.max_age)
        except LogoutTokenError as exc:
            return self.refuse(exc.reason)
        cache = caches[settings.jwks_cache_alias]
        marker = (
            "drf_oidc_jwks:logout-jti:v1:" + hashlib.sha256(f"{issuer.issuer}\x00{payload['jti']}".encode()).hexdigest()
        )
        try:
            # The jti is kept as long as its token could be accepted, so a replay is refused either way.
            fresh = cache.add(marker, 1, max(1, int(self.max_age + 2 * settings.leeway + 1)))
        except Exception as exc:  # noqa: BLE001 - without the cache nothing can be recorded
            return self.refuse(f"cache unavailable: {type(exc).__name__}")
        if not fresh:
            return self.refuse("jti already used (replayed logout token)")
        try:
            self.record(issuer, payload)
        except Exception as exc:  # noqa: BLE001 - the IdP may retry: forget the jti so a retry is accepted
            cache.delete(marker)
            return self.refuse(f"revocation not stored: {type(exc).__name__}")
        logger.info(
            "back-channel logout from %s recorded (sub=%s sid=%s)",
            issuer.issuer,
            safe(payload.get("sub")),
            safe(payload.get("sid")),
        )
        return self.no_store(HttpResponse(status=200))

    def record(self, issuer: IssuerSettings, payload: Mapping[str, Any]) -> None:
        """Revoke the logged-out session (and subject) as of the logout token's ``iat``."""
        sid, sub, at = payload.get("sid"), payload.get("sub"), float(payload["iat"])
        if sid is not None and self.session_only:
            sub = None
        revocation.revoke(issuer.issuer, sub=sub, sid=sid, at=at)

    def refuse(self, reason: str) -> HttpResponse:
        logger.info("back-channel logout refused: %s", reason)
        return self.no_store(JsonResponse({"error": "invalid_request"}, status=400))

    @staticmethod
    def no_store(response: HttpResponse) -> HttpResponse:
        response["Cache-Control"] = "no-store"
        return response

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.no_store(super().http_method_not_allowed(request, *args, **kwargs))
