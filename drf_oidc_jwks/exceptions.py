"""Errors with stable snake_case codes: one class per code, one registry derived from the classes.

Library code raises a :class:`TokenError` subclass (401) or :class:`KeySourceError` (503); only
``authentication.py`` turns them into the DRF exceptions below, the single place where errors become
HTTP answers. The 403 answers of the permission classes and tenancy are DRF exceptions defined here
too, so :data:`REGISTRY` knows every code a client may see, with its status and description.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from rest_framework import exceptions, status


class TokenError(Exception):
    """A presented token was refused; ``code`` is stable, ``description`` is safe to show.

    ``reason`` holds the precise cause for logs and troubleshooting tools (never the token).
    Subclasses fix ``code`` and ``description``; an instance may give a more precise description.
    """

    code: ClassVar[str] = "invalid_token"
    description: str = "The token was refused."
    status: ClassVar[int] = status.HTTP_401_UNAUTHORIZED

    def __init__(self, reason: str | None = None, *, description: str | None = None) -> None:
        if description is not None:
            self.description = description
        super().__init__(self.description)
        self.reason = reason or self.description


class MissingToken(TokenError):
    code = "missing_token"
    description = "No token was given."


class MalformedToken(TokenError):
    code = "malformed_token"
    description = "The token is malformed."


class UnsupportedAlgorithm(TokenError):
    code = "unsupported_algorithm"
    description = "The token's algorithm is not accepted."


class UnknownKey(TokenError):
    code = "unknown_key"
    description = "The token's signing key is not known."


class InvalidSignature(TokenError):
    code = "invalid_signature"
    description = "The token's signature is invalid."


class TokenExpired(TokenError):
    code = "token_expired"
    description = "The token has expired."


class TokenNotYetValid(TokenError):
    code = "token_not_yet_valid"
    description = "The token is not yet valid."


class InvalidIssuer(TokenError):
    code = "invalid_issuer"
    description = "The token's issuer is not trusted."


class InvalidAudience(TokenError):
    code = "invalid_audience"
    description = "The token is not meant for this API."


class MissingClaim(TokenError):
    code = "missing_claim"
    description = "The token lacks a required claim."


class InvalidTokenType(TokenError):
    code = "invalid_token_type"
    description = "The token's type is not accepted here."


class SenderConstrained(TokenError):
    code = "sender_constrained"
    description = "The token is bound to a key and cannot be used as a bearer token."


class UserInactive(TokenError):
    code = "user_inactive"
    description = "The user account is inactive."


class InvalidDPoPProof(TokenError):
    """401: the ``DPoP`` proof is missing, malformed, replayed or does not match the request (RFC 9449)."""

    code = "invalid_dpop_proof"
    description = "The DPoP proof was refused."


class UseDPoPNonce(TokenError):
    """401: the proof must carry the server's current nonce; ``nonce`` is the one to use (``DPoP-Nonce``)."""

    code = "use_dpop_nonce"
    description = "The DPoP proof must carry the server's nonce given in the DPoP-Nonce header."
    nonce: str | None = None


class DPoPRequired(TokenError):
    """401: this issuer's tokens are accepted only with a DPoP proof (``DPOP`` is ``"required"``)."""

    code = "dpop_required"
    description = "This API requires DPoP-bound tokens sent with a DPoP proof."


class TokenInactive(TokenError):
    code = "token_inactive"
    description = "The token is not active."


class TokenRevoked(TokenError):
    code = "token_revoked"
    description = "The token has been revoked."


class KeySourceError(Exception):
    """No usable keys could be had from the identity provider (503 ``idp_unavailable``)."""

    code: ClassVar[str] = "idp_unavailable"
    description: ClassVar[str] = "The identity provider is unavailable; try again shortly."
    status: ClassVar[int] = status.HTTP_503_SERVICE_UNAVAILABLE

    def __init__(self, reason: str, retry_after: float = 1) -> None:
        super().__init__(reason)
        #: What went wrong, for logs (never a token or a secret).
        self.reason = reason
        self.retry_after = retry_after


class ReplayCacheUnavailable(KeySourceError):
    """The shared cache that remembers DPoP proofs is unreachable: 503 ``idp_unavailable``, no replay let through."""


# ---------------------------------------------------------------------------
# The DRF exceptions: what authentication.py, the permission classes and tenancy answer with.


class InvalidToken(exceptions.AuthenticationFailed):
    """401: the bearer token was refused. ``detail.code`` is one of :data:`CODES`."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "Invalid token."
    default_code = "invalid_token"


class IdentityProviderUnavailable(exceptions.APIException):
    """503: no verification keys could be had; answered with ``Retry-After``."""

    status_code = KeySourceError.status
    default_detail = KeySourceError.description
    default_code = KeySourceError.code

    def __init__(self, detail: str | None = None, retry_after: float = 1) -> None:
        super().__init__(detail, self.default_code)
        # DRF's exception handler turns ``wait`` into a Retry-After header.
        self.wait = max(1, int(retry_after + 0.999))


class InsufficientUserAuthentication(exceptions.APIException):
    """401 (RFC 9470): the token is valid, but its login is too weak or too old for this endpoint (``HasAuthLevel``).

    Not an ``AuthenticationFailed``: DRF would replace its challenge with the authentication class's one.
    ``auth_header`` is the step-up challenge naming ``acr_values`` and ``max_age``.
    """

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "This endpoint requires a stronger or more recent authentication."
    default_code = "insufficient_user_authentication"

    def __init__(self, challenge: str, detail: str | None = None) -> None:
        super().__init__(detail, self.default_code)
        # DRF's exception handler copies ``auth_header`` into WWW-Authenticate.
        self.auth_header = challenge


class Forbidden(exceptions.PermissionDenied):
    """403 with a stable code; each subclass is one code of :data:`REGISTRY`."""


class InsufficientScope(Forbidden):
    """403 with an RFC 6750 ``insufficient_scope`` challenge naming the scopes required."""

    default_detail = "The token lacks a required scope."
    default_code = "insufficient_scope"

    def __init__(
        self,
        scopes: tuple[str, ...] | list[str],
        realm: str = "api",
        detail: str | None = None,
        resource_metadata: str | None = None,
    ) -> None:
        from .challenges import insufficient_scope_challenge

        description = detail or f"Requires scope: {' '.join(scopes)}."
        super().__init__(description, self.default_code)
        # DRF's exception handler copies ``auth_header`` into WWW-Authenticate (MCP 2026-07-28: with the
        # description and the metadata, so a client can step up its scopes).
        self.auth_header = insufficient_scope_challenge(realm, scopes, description, resource_metadata)


class RoleRequired(Forbidden):
    """403: the caller holds none of the roles required (``HasRole``)."""

    default_detail = "The token lacks a required role."
    default_code = "role_required"


class OrgRoleRequired(Forbidden):
    """403: the caller's role in the active organisation is not one required (``HasOrgRole``)."""

    default_detail = "The token lacks a required organization role."
    default_code = "org_role_required"


class PermissionRequired(Forbidden):
    """403: the token holds none of the permissions required (``HasPermission``)."""

    default_detail = "The token lacks a required permission."
    default_code = "permission_required"


class TenantRequired(Forbidden):
    """403: the caller has no active tenant (no ``tenant_id`` and no organisation selected)."""

    default_detail = "This endpoint requires an active organization."
    default_code = "tenant_required"


class TenantNotAllowed(Forbidden):
    """403: the organisation selected by the tenant header is not one of the caller's."""

    default_detail = "The selected organization is not one of the caller's organizations."
    default_code = "tenant_not_allowed"


class TenantMismatch(Forbidden):
    """403: the request body names a tenant other than the active one."""

    default_detail = "The organization of an object is set from the token; the request cannot choose or change it."
    default_code = "tenant_mismatch"


_E = TypeVar("_E")


def _leaves(base: type[_E]) -> list[type[_E]]:
    out: list[type[_E]] = []
    for sub in base.__subclasses__():
        out.append(sub)
        out.extend(_leaves(sub))
    return out


class ErrorSpec:
    """One registered code: its status, the class that raises it, and its default description."""

    __slots__ = ("code", "status", "cls", "description")

    def __init__(self, code: str, status: int, cls: type, description: str) -> None:
        self.code, self.status, self.cls, self.description = code, status, cls, description

    def __repr__(self) -> str:
        return f"<ErrorSpec {self.code} {self.status}>"


def registry() -> dict[str, ErrorSpec]:
    """Every code the library answers with, from the error classes (one class per code)."""
    found: dict[str, ErrorSpec] = {}
    for cls in _leaves(TokenError):
        found[cls.code] = ErrorSpec(cls.code, cls.status, cls, cls.description)
    found[KeySourceError.code] = ErrorSpec(
        KeySourceError.code, KeySourceError.status, KeySourceError, KeySourceError.description
    )
    step_up = InsufficientUserAuthentication
    found[str(step_up.default_code)] = ErrorSpec(
        str(step_up.default_code), int(step_up.status_code), step_up, str(step_up.default_detail)
    )
    for forbidden in _leaves(Forbidden):
        code = str(forbidden.default_code)
        found[code] = ErrorSpec(code, int(forbidden.status_code), forbidden, str(forbidden.default_detail))
    return found


#: Every code, with its status and class (derived from the classes above).
REGISTRY: dict[str, ErrorSpec] = registry()

#: Every code a refused token may carry in ``detail.code`` (401 and 503), in class order.
CODES: tuple[str, ...] = tuple(
    code for code, spec in REGISTRY.items() if issubclass(spec.cls, (TokenError, KeySourceError))
)


def error_for(code: str) -> type[TokenError]:
    """The TokenError subclass of ``code`` (KeyError for a code that is not a 401 refusal)."""
    cls = REGISTRY[code].cls
    if not (isinstance(cls, type) and issubclass(cls, TokenError)):
        raise KeyError(code)
    return cls


def exception_handler(exc: Exception, context: dict[str, Any]) -> object:
    """DRF's exception handler, plus the stable ``code`` in the body of every error response.

    Opt in with ``REST_FRAMEWORK["EXCEPTION_HANDLER"] = "drf_oidc_jwks.exceptions.exception_handler"``.
    """
    from rest_framework.views import exception_handler as drf_handler

    response = drf_handler(exc, context)
    if response is not None and isinstance(response.data, dict):
        # Read the code from the body DRF built: it also converted Django's Http404 and PermissionDenied
        # (a cross-tenant object id is a 404 ``not_found``), whose own exception carries no code.
        code = getattr(response.data.get("detail"), "code", None)
        if isinstance(code, str):
            response.data["code"] = code
    return response
