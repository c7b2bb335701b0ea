"""drf-spectacular support (``pip install drf-oidc-jwks[spectacular]``): the security scheme and per-operation scopes.

Imported by the app's ``ready()`` when drf-spectacular is installed, which registers
:class:`JWKSAuthenticationScheme`. ``OPENAPI_SCHEME`` chooses an ``openIdConnect`` scheme (the
issuer's discovery URL, so Swagger UI's *Authorize* runs the IdP's own login) or an ``http`` bearer
JWT scheme (a pasted token). Each operation's security requirement lists the scopes its
``HasScope`` permissions ask for, read through the same ``get_required`` hook the permission uses
at request time, so the schema cannot disagree with the check.

``HasAuthLevel`` (step-up) has no OpenAPI field: :func:`postprocess_step_up`, a hook listed in
``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``, adds an ``x-step-up`` extension and a sentence of
description to each operation that asks for one, read through ``get_required_level``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.drainage import warn
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings
from rest_framework.permissions import AND, OR

from .conf import IssuerSettings, Settings, get_settings

#: The security scheme's name in ``components.securitySchemes`` (the first issuer's, with several).
SCHEME_NAME = "oidc"

#: The specification extension naming an operation's step-up alternatives (docs/openapi.md).
EXTENSION = "x-step-up"

Alternatives = list[tuple[str, ...]]

#: One login that meets a step-up requirement: its ``acr`` is one of the values (None: any ``acr``)
#: and it is at most ``max_age`` seconds old (None: any age).
Level = tuple[tuple[str, ...] | None, int | None]
ANY_LOGIN: Level = (None, None)

_T = TypeVar("_T")


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


def _walk(permission: Any, leaf: Callable[[Any], list[_T] | None], both: Callable[[_T, _T], _T], none: _T) -> list[_T]:
    """Alternatives of a permission tree: ``leaf`` answers for our classes, ``&`` combines, ``|`` adds."""
    found = leaf(permission)
    if found is not None:
        return found
    if isinstance(permission, (AND, OR)):
        # DRF's operators keep their operands as op1/op2 (not in djangorestframework-stubs).
        left = _walk(getattr(permission, "op1"), leaf, both, none)  # noqa: B009
        right = _walk(getattr(permission, "op2"), leaf, both, none)  # noqa: B009
        return [both(a, b) for a in left for b in right] if isinstance(permission, AND) else left + right
    # ~ passes exactly when its operand fails: nothing the schema can state as a requirement.
    return [none]


def required_scopes(permission: Any, request: Any, view: Any) -> Alternatives:
    """Return the scope sets that satisfy ``permission`` (any one of them), ``[()]`` when it needs none.

    ``&``/``|`` compositions combine their operands; ``~`` and other permission classes ask for no
    scope the schema can state.
    """
    from .permissions import HasScope

    def leaf(permission: Any) -> Alternatives | None:
        if not isinstance(permission, HasScope):
            return None
        try:
            requirement = permission.get_required(request, view)
        except ImproperlyConfigured as exc:
            warn(f"drf_oidc_jwks: cannot read the scopes of {type(view).__name__}: {exc}")
            return [()]
        # An action with no entry is refused at request time; the schema can only say a token is needed.
        return [tuple(group) for group in requirement] or [()]

    return _walk(permission, leaf, lambda a, b: _and([a], [b])[0], ())


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
        permissions = view.get_permissions()
        alternatives = operation_scopes(permissions, request, view, s.required_scopes)
        requirements = [{name: list(scopes)} for name in _scheme_names(s) for scopes in alternatives]
        return _step_up_requirements(requirements, operation_levels(permissions, request, view))


# -- step-up (HasAuthLevel) --


def _both_levels(a: Level, b: Level) -> Level:
    """The login meeting both: an ``acr`` both accept, and the shorter ``max_age``."""
    acr = a[0] if b[0] is None else b[0] if a[0] is None else tuple(v for v in a[0] if v in b[0])
    ages = [age for age in (a[1], b[1]) if age is not None]
    return acr, min(ages) if ages else None


def required_levels(permission: Any, request: Any, view: Any) -> list[Level]:
    """Return the logins that satisfy ``permission`` (any one of them), ``[ANY_LOGIN]`` when it sets no step-up."""
    from .permissions import HasAuthLevel

    def leaf(permission: Any) -> list[Level] | None:
        if not isinstance(permission, HasAuthLevel):
            return None
        level = permission.get_required_level(request, view)
        return [(level.acr_values or None, level.max_age)]

    return _walk(permission, leaf, _both_levels, ANY_LOGIN)


def operation_levels(permissions: Iterable[Any], request: Any, view: Any) -> list[Level]:
    """Return the step-up alternatives of a view's permission list (all of them must pass); ``[]`` for none."""
    alternatives = [ANY_LOGIN]
    for permission in permissions:
        alternatives = [_both_levels(a, b) for a in alternatives for b in required_levels(permission, request, view)]
    unique = list(dict.fromkeys(alternatives))
    # An alternative whose acr values exclude each other (an empty intersection) is met by no login.
    possible = [level for level in unique if level[0] != ()] or unique
    return [] if possible == [ANY_LOGIN] else possible


def step_up_extension(levels: Iterable[Level]) -> list[dict[str, Any]]:
    """The ``x-step-up`` value: one object per alternative login, ``{}`` for an alternative that needs none."""
    return [
        {**({"acr_values": list(acr)} if acr is not None else {}), **({"max_age": age} if age is not None else {})}
        for acr, age in levels
    ]


def _phrase(level: Level) -> str:
    acr, age = level
    if acr is None and age is None:
        return "any login (another permission grants access)"
    if acr == ():
        return "no login (its acr requirements exclude each other)"
    parts = ["a login"]
    if acr is not None:
        parts.append("with acr " + " or ".join(f"`{v}`" for v in acr))
    if age is not None:
        parts.append(f"at most {age} seconds ago")
    return " ".join(parts)


def describe_levels(levels: Iterable[Level]) -> str:
    """The sentence added to the operation's description: which logins its token may come from."""
    return (
        "Step-up authentication (RFC 9470): the access token must come from "
        + ", or from ".join(_phrase(level) for level in levels)
        + "; otherwise the answer is 401 `insufficient_user_authentication`, naming what a new login must achieve."
    )


class _StepUpRequirement(dict[str, list[str]]):
    """A security requirement that also carries its operation's step-up alternatives for postprocess_step_up.

    drf-spectacular puts the objects an authentication extension returns into the operation as they
    are, and normalises them to plain dicts only after the postprocessing hooks ran.
    """

    def __init__(self, requirement: dict[str, list[str]], levels: list[Level]) -> None:
        super().__init__(requirement)
        self.levels = levels


def postprocess_step_up(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document ``HasAuthLevel`` (``x-step-up`` and a sentence) per operation."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            security = operation.get("security", []) if isinstance(operation, dict) else []
            levels = next((r.levels for r in security if isinstance(r, _StepUpRequirement) and r.levels), None)
            if levels:
                operation[EXTENSION] = step_up_extension(levels)
                description = operation.get("description") or ""
                operation["description"] = (description + "\n\n" if description else "") + describe_levels(levels)
    return result


def _step_up_requirements(requirements: list[dict[str, list[str]]], levels: list[Level]) -> list[dict[str, list[str]]]:
    if not levels:
        return requirements
    if postprocess_step_up not in spectacular_settings.POSTPROCESSING_HOOKS:
        warn(
            "drf_oidc_jwks: HasAuthLevel requirements are left out of the schema: add "
            '"drf_oidc_jwks.openapi.postprocess_step_up" to SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"].'
        )
    marked: list[dict[str, list[str]]] = [_StepUpRequirement(requirement, levels) for requirement in requirements]
    return marked
