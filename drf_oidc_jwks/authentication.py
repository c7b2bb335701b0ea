"""``JWKSAuthentication``: the DRF authentication class, and the one place errors become HTTP answers.

``authenticate()`` is a pipeline of small overridable steps, as in simplejwt:
``get_header`` -> ``get_raw_token`` -> ``get_validated_token`` -> ``get_user``.
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from .checks import require_app
from .claims import Claims
from .conf import get_settings
from .exceptions import (
    IdentityProviderUnavailable,
    InsufficientScope,
    InvalidToken,
    KeySourceError,
    MalformedToken,
    MissingToken,
    TokenError,
)
from .tokens import safe, unverified_ids, verify_token

# A project that forgot "drf_oidc_jwks" in INSTALLED_APPS hears it when DRF loads this class, not as a 500.
require_app()

logger = logging.getLogger("drf_oidc_jwks")

_ERROR_ATTR = "_drf_oidc_jwks_error"


class JWKSAuthentication(BaseAuthentication):
    """Authenticate ``Authorization: Bearer <JWT>`` against the issuer's JWKS."""

    keyword = "bearer"
    #: Per class: whether its ``get_user`` accepts the token after the claims (subclasses may take only claims).
    _get_user_takes_token: dict[type, bool] = {}

    def authenticate(self, request: Request) -> tuple[Any, Claims] | None:
        header = self.get_header(request)
        if header is None:
            return None
        raw: str | None = None
        try:
            raw = self.get_raw_token(header)
            if raw is None:
                return None
            claims = self.get_validated_token(raw)
            # The bearer goes to the user sync explicitly (userinfo presents it); a subclass whose
            # get_user takes only the claims keeps working.
            user = self.get_user(claims, raw) if self._passes_token() else self.get_user(claims)
        except TokenError as exc:
            raise self.refuse(request, exc, raw) from None
        except KeySourceError as exc:
            logger.warning("token not verified: identity provider unavailable: %s", exc.reason)
            raise IdentityProviderUnavailable(retry_after=exc.retry_after) from None
        self.answer_refusals_while_loading(request, user, raw)
        self.check_required_scopes(request, claims)
        return user, claims

    def check_required_scopes(self, request: Request, claims: Claims) -> None:
        """Refuse (403 ``insufficient_scope``) a token lacking ``REQUIRED_SCOPES``, read through ``SCOPE_HIERARCHY``."""
        from .scopes import compile_hierarchy

        s = get_settings()
        if s.required_scopes and not set(s.required_scopes) <= compile_hierarchy(s.scope_hierarchy).expand(
            claims.scopes
        ):
            raise insufficient_scope(s.required_scopes)

    def get_header(self, request: Request) -> str | None:
        """Return the ``Authorization`` header value, or None."""
        value = request.META.get("HTTP_AUTHORIZATION")
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
        """Verify the token; return its Claims (``request.auth``)."""
        return verify_token(raw)

    def get_user(self, claims: Claims, token: str | None = None) -> Any:
        """Return ``request.user`` for verified claims; ``token`` is the bearer they came from."""
        from .users import get_user

        return get_user(claims, token)

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
        from .users import SyncedUser

        if isinstance(user, SyncedUser):
            user.on_refused(lambda exc: self.refuse(request, exc, raw))

    def refuse(self, request: Request, exc: TokenError, raw: str | None = None) -> InvalidToken:
        """Log a refused token (never the token itself, only its unverified kid and iss) and build the 401."""
        kid, iss = unverified_ids(raw) if raw else (None, None)
        logger.info(
            "token refused: %s (kid=%s iss=%s): %s",
            exc.code,
            safe(kid),
            safe(iss),
            exc.reason,
            extra={"code": exc.code},
        )
        setattr(request, _ERROR_ATTR, exc)
        return InvalidToken(exc.description, exc.code)

    def authenticate_header(self, request: Request) -> str:
        """The RFC 6750 challenge: the refusal (if any), the scopes the endpoint requires, the metadata URL."""
        from .challenges import bearer_challenge, required_scopes_for

        s = get_settings()
        exc = getattr(request, _ERROR_ATTR, None)
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


# --- Challenges (MCP authorization 2026-07-28): the 403 and the metadata URL every challenge names


def resource_metadata_url() -> str | None:
    """The RFC 9728 metadata URL of ``RESOURCE``, named by every challenge; None without ``RESOURCE``."""
    resource = get_settings().resource
    if not resource:
        return None
    from .challenges import metadata_url

    return metadata_url(resource)


def insufficient_scope(scopes: tuple[str, ...] | list[str], description: str | None = None) -> InsufficientScope:
    """The 403 ``insufficient_scope``: ``scope``, ``error_description`` and ``resource_metadata`` in its challenge."""
    return InsufficientScope(
        scopes, realm=get_settings().realm, detail=description, resource_metadata=resource_metadata_url()
    )
