"""``JWKSAuthentication``: the DRF authentication class, and the one place errors become HTTP answers.

``authenticate()`` is a pipeline of small overridable steps, as in simplejwt:
``get_header`` -> ``get_raw_token`` -> ``get_validated_token`` -> ``get_user``.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

# Operations (signals, tracing, structured log fields)
from . import dpop_auth, opaque, revocation, signals, tracing, users
from .checks import require_app
from .claims import Claims
from .conf import IssuerSettings, Settings, get_settings
from .exceptions import (
    IdentityProviderUnavailable,
    InvalidToken,
    KeySourceError,
    MalformedToken,
    MissingToken,
    TokenError,
    UseDPoPNonce,
)
from .introspection import looks_like_jws
from .logfields import fields
from .refusals import insufficient_scope, resource_metadata_url
from .resolver import handing_request
from .scopes import compile_hierarchy
from .tokens import safe, unverified_ids, verify_token
from .user_types import SyncedUser

# A project that forgot "drf_oidc_jwks" in INSTALLED_APPS hears it when DRF loads this class, not as a 500.
require_app()

logger = logging.getLogger("drf_oidc_jwks")

_ERROR_ATTR = "_drf_oidc_jwks_error"
_SCHEME_ATTR = "_drf_oidc_jwks_scheme"
#: Refusals that say the token was revoked before its exp: by the IdP (introspection) or a revocation list.
_REVOKED = frozenset({"token_revoked", "token_inactive"})


class Configured(NamedTuple):
    """What the settings turn on at all, worked out once per settings object (not per request)."""

    settings: Settings
    #: Some issuer has ``DPOP: "required"``: a Bearer token is checked against its issuer's mode.
    dpop_required: bool
    #: Some issuer has ``DPOP: "off"``: a DPoP request's token is read to see whose it is.
    dpop_off: bool
    #: Where opaque tokens are introspected (None: nowhere, they are malformed).
    opaque_issuer: IssuerSettings | None
    #: Some issuer introspects JWTs too (``INTROSPECTION`` ``FOR_JWTS``).
    for_jwts: bool
    #: ``ISSUER_RESOLVER`` is set: the request is handed to it.
    resolver: bool
    #: Some issuer answers the DPoP scheme (``dpop_auth.dpop_accepted``).
    dpop_accepted: bool


_configured: Configured | None = None


def configured() -> Configured:
    """The :class:`Configured` of the current settings (rebuilt when the settings object changes)."""
    global _configured
    s = get_settings()
    held = _configured
    if held is None or held.settings is not s:
        # A {tenant} issuer's concrete settings inherit these keys from their entry in s.issuers.
        held = _configured = Configured(
            s,
            # An ISSUER_RESOLVER's issuers are known only per token: one may require DPoP.
            dpop_required=any(i.dpop == "required" for i in s.issuers) or s.issuer_resolver is not None,
            dpop_off=any(i.dpop == "off" for i in s.issuers),
            opaque_issuer=opaque.opaque_issuer(s),
            for_jwts=any(i.introspection is not None and i.introspection.get("FOR_JWTS") is True for i in s.issuers),
            resolver=s.issuer_resolver is not None,
            dpop_accepted=dpop_auth.dpop_accepted(s),
        )
    return held


class JWKSAuthentication(BaseAuthentication):
    """Authenticate ``Authorization: Bearer <JWT>`` (and ``DPoP <JWT>`` with a proof) against the issuer's JWKS."""

    keyword = "bearer"
    dpop_keyword = "dpop"
    #: Per class: whether its ``get_user`` accepts the token after the claims (subclasses may take only claims).
    _get_user_takes_token: dict[type, bool] = {}

    def authenticate(self, request: Request) -> tuple[Any, Claims] | None:
        """Run :meth:`authenticate_credentials` with the request handed to ``ISSUER_RESOLVER``."""
        if not configured().resolver:
            return self.authenticate_credentials(request)  # nobody to hand it to: no context switch per request
        with handing_request(request):
            return self.authenticate_credentials(request)

    def authenticate_credentials(self, request: Request) -> tuple[Any, Claims] | None:
        """The pipeline: header, raw token, validated token (Claims), user; errors become 401/403/503 here."""
        header = self.get_header(request)
        if header is None:
            return None
        raw: str | None = None
        dpop = self.is_dpop(request, header)
        try:
            raw = self.get_raw_dpop_token(header) if dpop else self.get_raw_token(header)
            if raw is None or (dpop and not self.answers_dpop(raw)):
                return None
            if dpop:
                claims = self.get_validated_dpop_token(request, raw)
            else:
                claims = self.get_validated_token(raw)
                if configured().dpop_required:
                    dpop_auth.check_bearer(get_settings(), claims)
            # The bearer goes to the user sync explicitly (userinfo presents it); a subclass whose
            # get_user takes only the claims keeps working.
            user = self.get_user(claims, raw) if self._passes_token() else self.get_user(claims)
        except TokenError as exc:
            raise self.refuse(request, exc, raw) from None
        except KeySourceError as exc:
            raise self.unavailable(raw, exc) from None
        self.answer_refusals_while_loading(request, user, raw)
        self.check_required_scopes(request, claims)
        return user, claims

    def check_required_scopes(self, request: Request, claims: Claims) -> None:
        """Refuse (403 ``insufficient_scope``) a token lacking ``REQUIRED_SCOPES``, read through ``SCOPE_HIERARCHY``."""
        s = get_settings()
        if s.required_scopes and not set(s.required_scopes) <= compile_hierarchy(s.scope_hierarchy).expand(
            claims.scopes
        ):
            raise insufficient_scope(s.required_scopes)

    def get_header(self, request: Request) -> str | None:
        """Return the ``Authorization`` header value, or None."""
        # The Django request's META directly: DRF's Request forwards it through __getattr__, after a miss.
        value = getattr(request, "_request", request).META.get("HTTP_AUTHORIZATION")
        return value if isinstance(value, str) and value else None

    def get_raw_token(self, header: str) -> str | None:
        """Return the token of a Bearer header; None for another scheme."""
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() != self.keyword:
            return None
        token = rest.strip()
        if not token:
            raise MissingToken("empty Bearer credentials")
        if " " in token:
            raise MalformedToken("credentials contain spaces")
        return token

    def get_validated_token(self, raw: str) -> Claims:
        """Verify the token (or introspect an opaque one); return its Claims (``request.auth``)."""
        claims = self.verify_or_introspect(raw)
        self.check_revoked(claims)
        return claims

    # Opaque tokens and revocation (docs/opaque-tokens.md, docs/revocation.md)

    def verify_or_introspect(self, raw: str, *, dpop: bool = False) -> Claims:
        """A JWS is verified locally (and introspected too with ``FOR_JWTS``); an opaque token is introspected.

        ``dpop``: the DPoP scheme, so a ``cnf.jkt`` binding (in the JWT or the answer) is left to the proof check.
        """
        c = configured()
        s, issuer = c.settings, c.opaque_issuer
        if issuer is None or raw.count(".") == 2:
            try:
                claims = verify_token(raw, s, dpop=dpop)
            except MalformedToken:
                # With no opaque tokens anywhere a token that is no JWS stays malformed, as ever.
                if issuer is None or looks_like_jws(raw):
                    raise
                return opaque.opaque_claims(raw, issuer, s, dpop=dpop)
            if c.for_jwts:
                opaque.confirm_jwt(raw, claims, s)
            return claims
        return opaque.opaque_claims(raw, issuer, s, dpop=dpop)

    def check_revoked(self, claims: Claims) -> None:
        """Refuse (``token_revoked``) a token a revocation covers; no cache round trip between polls."""
        revocation.check(claims.raw)

    # DPoP, RFC 9449 (docs/dpop.md)

    def is_dpop(self, request: Request, header: str) -> bool:
        """Whether ``header`` is ``DPoP <token>`` and some issuer answers DPoP (remembered for the challenge)."""
        if header[:1] in "Bb":
            return False  # Bearer, most requests: no scheme to split out
        scheme = header.lstrip().partition(" ")[0]
        if scheme.lower() != self.dpop_keyword or not configured().dpop_accepted:
            return False
        setattr(request, _SCHEME_ATTR, "dpop")
        return True

    def get_raw_dpop_token(self, header: str) -> str | None:
        """Return the token of a ``DPoP`` authorization header."""
        token = header.strip().partition(" ")[2].strip()
        if not token:
            raise MissingToken("empty DPoP credentials")
        if " " in token:
            raise MalformedToken("credentials contain spaces")
        return token

    def answers_dpop(self, raw: str) -> bool:
        """False when the token's issuer has ``DPOP`` ``"off"``: the header is left to other classes."""
        c = configured()
        if not c.dpop_off:
            return True  # no need to read the token twice
        return dpop_auth.answers_dpop(c.settings, unverified_ids(raw)[1])

    def get_validated_dpop_token(self, request: Request, raw: str) -> Claims:
        """Verify (or introspect) a DPoP-bound token and, on every request, its proof; return the Claims."""
        claims = self.verify_or_introspect(raw, dpop=True)
        self.check_revoked(claims)  # a bound token is revocable like any other
        dpop_auth.check_request(request, raw, claims, get_settings())
        return claims

    def get_user(self, claims: Claims, token: str | None = None) -> Any:
        """Return ``request.user`` for verified claims; ``token`` is the bearer they came from."""
        return users.get_user(claims, token)

    def _passes_token(self) -> bool:
        cls = type(self)
        known = JWKSAuthentication._get_user_takes_token.get(cls)
        if known is None:
            import inspect

            try:
                parameters = list(inspect.signature(cls.get_user).parameters.values())
            except (TypeError, ValueError):
                parameters = []
            positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            known = len(positional) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in parameters)  # self, claims, token
            JWKSAuthentication._get_user_takes_token[cls] = known
        return known

    def answer_refusals_while_loading(self, request: Request, user: Any, raw: str | None) -> None:
        """Have a lazy user refused when a view first uses it answered as here: logged, with the 401 challenge."""
        if isinstance(user, SyncedUser):
            user.on_refused(lambda exc: self.refuse(request, exc, raw))

    def refuse(self, request: Request, exc: TokenError, raw: str | None = None) -> InvalidToken:
        """Log a refused token (never the token itself, only its unverified kid and iss) and build the 401."""
        kid, iss = unverified_ids(raw) if raw else (None, None)
        issuer = self.configured_issuer(iss)
        logger.info(
            "token refused: %s (kid=%s iss=%s): %s",
            exc.code,
            safe(kid),
            safe(iss),
            exc.reason,
            extra=fields(code=exc.code, issuer=issuer, kid=safe(kid) if kid is not None else None),
        )
        self.announce_refusal(exc.code, issuer)
        setattr(request, _ERROR_ATTR, exc)
        if isinstance(exc, UseDPoPNonce) and exc.nonce:
            dpop_auth.hand_out_nonce(request, exc.nonce)
        return InvalidToken(exc.description, exc.code)

    # -- operations: the refusal signal, the tracing event (docs/operations.md) --

    def unavailable(self, raw: str | None, exc: KeySourceError) -> IdentityProviderUnavailable:
        """Log and announce a token not verified because the identity provider is unavailable; build the 503."""
        answer = IdentityProviderUnavailable(retry_after=exc.retry_after)
        kid, iss = unverified_ids(raw) if raw else (None, None)
        issuer = self.configured_issuer(iss)
        logger.warning(
            "token not verified: identity provider unavailable: %s",
            exc.reason,
            extra=fields(code=exc.code, issuer=issuer, kid=safe(kid) if kid is not None else None),
        )
        self.announce_refusal(exc.code, issuer)
        return answer

    @staticmethod
    def configured_issuer(iss: Any) -> str | None:
        """The configured ``ISSUER`` a token's unverified ``iss`` names, or None: label values stay bounded."""
        issuer = get_settings().issuer_for(iss)
        return issuer.issuer if issuer is not None else None

    def announce_refusal(self, code: str, issuer: str | None) -> None:
        """Send ``token_refused`` (only when someone listens) and add a refusal event to the current span."""
        if signals.listened(signals.token_refused):
            signals.emit(signals.token_refused, type(self), code=code, issuer=issuer)
        if code in _REVOKED and signals.listened(signals.token_revoked):
            signals.emit(signals.token_revoked, type(self), issuer=issuer, code=code)
        tracing.refusal_event(code, issuer)

    def authenticate_header(self, request: Request) -> str:
        """The RFC 6750 / RFC 9449 challenges: Bearer, then DPoP, each where accepted; the error on the scheme used."""
        s = get_settings()
        exc = getattr(request, _ERROR_ATTR, None)
        bearer, dpop = dpop_auth.bearer_accepted(s), dpop_auth.dpop_accepted(s)
        on_dpop = dpop and (getattr(request, _SCHEME_ATTR, None) == "dpop" or not bearer)
        challenges = [self.bearer_challenge(request, None if on_dpop else exc)] if bearer else []
        if dpop:
            challenges.append(self.dpop_challenge(request, exc if on_dpop else None))
        return ", ".join(challenges)

    def dpop_challenge(self, request: Request, exc: TokenError | None) -> str:
        """The ``DPoP`` challenge, with ``resource_metadata`` when ``RESOURCE`` is set."""
        value = dpop_auth.challenge(get_settings(), exc)
        metadata = resource_metadata_url()
        return value + f', resource_metadata="{metadata}"' if metadata else value

    def bearer_challenge(self, request: Request, exc: TokenError | None) -> str:
        """The RFC 6750 challenge: the refusal (if any), the scopes the endpoint requires, the metadata URL."""
        from .challenges import bearer_challenge, required_scopes_for

        s = get_settings()
        refused = exc if isinstance(exc, TokenError) else None
        # DRF hands no view to this hook; the request's parser context carries the one answering.
        view = (getattr(request, "parser_context", None) or {}).get("view")
        return bearer_challenge(
            s.realm,
            error="invalid_token" if refused else None,
            scope=required_scopes_for(request, view, s.required_scopes),
            error_description=refused.description if refused else None,
            resource_metadata=resource_metadata_url(),
        )
