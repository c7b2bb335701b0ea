"""drf-spectacular support (``pip install drf-oidc-jwks[spectacular]``): the security scheme and per-operation scopes.

Imported by the app's ``ready()`` when drf-spectacular is installed, which registers
:class:`JWKSAuthenticationScheme`. ``OPENAPI_SCHEME`` chooses an ``openIdConnect`` scheme (the
issuer's discovery URL, so Swagger UI's *Authorize* runs the IdP's own login) or an ``http`` bearer
JWT scheme (a pasted token). Each operation's security requirement lists the scopes its
``HasScope`` permissions ask for, read through the same ``get_required`` hook the permission uses
at request time, so the schema cannot disagree with the check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.drainage import warn
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.permissions import AND, NOT, OR

from .conf import IssuerSettings, Settings, get_settings

#: The security scheme's name in ``components.securitySchemes`` (the first issuer's, with several).
SCHEME_NAME = "oidc"

Alternatives = list[tuple[str, ...]]


def _scheme_names(s: Settings) -> list[str]:
    if s.openapi_scheme == "bearer" or len(s.issuers) == 1:
        return [SCHEME_NAME]
    return [SCHEME_NAME] + [f"{SCHEME_NAME}{n}" for n in range(2, len(s.issuers) + 1)]


#: Shown in Swagger UI's Authorize dialog under the discovery-based scheme: where a client cannot log in
#: interactively (client credentials only), the way to a plain token field.
_SWITCH = ' To paste a token instead, set "OPENAPI_SCHEME": "bearer" in DRF_OIDC_JWKS (docs: openapi.md).'


def _describe(issuer: IssuerSettings) -> str:
    audience = "any audience" if issuer.audience is None else "audience " + ", ".join(issuer.audience)
    if issuer.dpop == "required":
        # RFC 9449: the schema must not suggest that a Bearer token would do.
        return (
            f"DPoP-bound JWT issued by {issuer.issuer} for {audience}: send 'Authorization: DPoP <token>' "
            f"with a DPoP proof header (algorithms {', '.join(issuer.dpop_algorithms)}); Bearer is refused."
        )
    return f"Bearer JWT issued by {issuer.issuer} for {audience}."


def _and(left: Alternatives, right: Alternatives) -> Alternatives:
    return [tuple(dict.fromkeys((*a, *b))) for a in left for b in right]


def required_scopes(permission: Any, request: Any, view: Any) -> Alternatives:
    """Return the scope sets that satisfy ``permission`` (any one of them), ``[()]`` when it needs none.

    ``&``/``|`` compositions combine their operands; ``~`` and other permission classes ask for no
    scope the schema can state.
    """
    from .permissions import HasScope

    if isinstance(permission, HasScope):
        try:
            requirement = permission.get_required(request, view)
        except ImproperlyConfigured as exc:
            warn(f"drf_oidc_jwks: cannot read the scopes of {type(view).__name__}: {exc}")
            return [()]
        # An action with no entry is refused at request time; the schema can only say a token is needed.
        return [tuple(group) for group in requirement] or [()]
    if isinstance(permission, (AND, OR)):
        # DRF's operators keep their operands as op1/op2 (not in djangorestframework-stubs).
        left = required_scopes(getattr(permission, "op1"), request, view)  # noqa: B009
        right = required_scopes(getattr(permission, "op2"), request, view)  # noqa: B009
        return _and(left, right) if isinstance(permission, AND) else left + right
    if isinstance(permission, NOT):
        return [()]
    return [()]


def operation_scopes(permissions: Iterable[Any], request: Any, view: Any, always: tuple[str, ...] = ()) -> Alternatives:
    """Return the scope alternatives of a view's permission list (all of them must pass), plus ``always``."""
    alternatives: Alternatives = [tuple(always)]
    for permission in permissions:
        alternatives = _and(alternatives, required_scopes(permission, request, view))
    unique: dict[tuple[str, ...], None] = {}
    for alternative in alternatives:
        unique.setdefault(tuple(sorted(alternative)), None)
    return list(unique)


class JWKSAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """The OpenAPI security scheme of :class:`~drf_oidc_jwks.authentication.JWKSAuthentication`."""

    target_class = "drf_oidc_jwks.authentication.JWKSAuthentication"
    match_subclasses = True

    @property
    def name(self) -> str | list[str]:  # type: ignore[override]
        names = _scheme_names(get_settings())
        return names[0] if len(names) == 1 else names

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any] | list[dict[str, Any]]:
        """The ``securitySchemes`` entry (one per issuer for ``openIdConnect`` with several issuers)."""
        s = get_settings()
        if s.openapi_scheme == "bearer":
            return {
                "type": "http",
                # "DPoP" is a registered HTTP authentication scheme (RFC 9449 7.1).
                "scheme": "dpop" if all(i.dpop == "required" for i in s.issuers) else "bearer",
                "bearerFormat": "JWT",
                # Shown in Swagger UI's Authorize dialog, next to the token field.
                "description": " ".join(_describe(i) for i in s.issuers) + " Paste the access token without 'Bearer '.",
            }
        definitions = [
            {"type": "openIdConnect", "openIdConnectUrl": i.discovery_url, "description": _describe(i) + _SWITCH}
            for i in s.issuers
        ]
        return definitions[0] if len(definitions) == 1 else definitions

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[str]]]:
        """One requirement per scope alternative (and per issuer): the scopes HasScope asks of this operation."""
        s = get_settings()
        view = auto_schema.view
        request = getattr(view, "request", None)
        alternatives = operation_scopes(view.get_permissions(), request, view, s.required_scopes)
        return [{name: list(scopes)} for name in _scheme_names(s) for scopes in alternatives]
