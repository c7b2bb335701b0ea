"""Errors with stable snake_case codes.

Library code raises :class:`TokenError` or :class:`KeySourceError`; only
``authentication.py`` turns them into the DRF exceptions below, the single place
where errors become HTTP answers.
"""

from __future__ import annotations

from rest_framework import exceptions, status

#: Every code a client may see in ``detail.code`` (and in ``error_description``).
CODES = (
    "missing_token",
    "malformed_token",
    "unsupported_algorithm",
    "unknown_key",
    "invalid_signature",
    "token_expired",
    "token_not_yet_valid",
    "invalid_issuer",
    "invalid_audience",
    "missing_claim",
    "invalid_token_type",
    "sender_constrained",
    "user_inactive",
    "idp_unavailable",
)


class TokenError(Exception):
    """A presented token was refused; ``code`` is stable, ``description`` is safe to show.

    ``reason`` holds the precise cause for logs and troubleshooting tools (never the token).
    """

    def __init__(self, code: str, description: str, reason: str | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.reason = reason or description
        #: The unverified ``kid`` and ``iss`` of the refused token, for the log record.
        self.kid: object = None
        self.iss: object = None


class KeySourceError(Exception):
    """No usable keys could be had from the identity provider."""

    def __init__(self, description: str, retry_after: float = 1) -> None:
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after


class InvalidToken(exceptions.AuthenticationFailed):
    """401: the bearer token was refused. ``detail.code`` is one of :data:`CODES`."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "Invalid token."
    default_code = "invalid_token"


class IdentityProviderUnavailable(exceptions.APIException):
    """503: no verification keys could be had; answered with ``Retry-After``."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The identity provider is unavailable; try again shortly."
    default_code = "idp_unavailable"

    def __init__(self, detail: str | None = None, retry_after: float = 1) -> None:
        super().__init__(detail, "idp_unavailable")
        # DRF's exception handler turns ``wait`` into a Retry-After header.
        self.wait = max(1, int(retry_after + 0.999))


class InsufficientScope(exceptions.PermissionDenied):
    """403 with an RFC 6750 ``insufficient_scope`` challenge naming the scopes required."""

    default_detail = "The token lacks a required scope."
    default_code = "insufficient_scope"

    def __init__(self, scopes: tuple[str, ...] | list[str], realm: str = "api", detail: str | None = None) -> None:
        wanted = " ".join(scopes)
        super().__init__(detail or f"Requires scope: {wanted}.", "insufficient_scope")
        # DRF's exception handler copies ``auth_header`` into WWW-Authenticate.
        self.auth_header = f'Bearer realm="{realm}", error="insufficient_scope", scope="{wanted}"'


def exception_handler(exc: Exception, context: dict[str, object]) -> object:
    """DRF's exception handler, plus the stable ``code`` in the body of every error response.

    Opt in with ``REST_FRAMEWORK["EXCEPTION_HANDLER"] = "drf_oidc_jwks.exceptions.exception_handler"``.
    """
    from rest_framework.views import exception_handler as drf_handler

    response = drf_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException) and isinstance(response.data, dict):
        code = getattr(exc.detail, "code", None)
        if isinstance(code, str):
            response.data["code"] = code
    return response
