"""Which issuer introspects a token, and the Claims an opaque token's answer becomes (used by authentication.py).

An opaque (non-JWS) token names no issuer, so it goes to ``OPAQUE_TOKEN_ISSUER``, or to the only issuer
with ``INTROSPECTION``; with none, it keeps its ``malformed_token`` answer. ``FOR_JWTS`` also introspects a
JWT of its issuer after it verified locally. See docs/opaque-tokens.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .claims import Claims
from .conf import IssuerSettings, Settings, register_reset
from .introspection import IntrospectionConfig, Introspector, check_opaque, get_introspector

_EMPTY_HEADER: Mapping[str, Any] = MappingProxyType({})
#: Per issuer: (its settings object, its introspector, the function building Claims from an answer).
_built: dict[str, tuple[IssuerSettings, Introspector, Callable[[Mapping[str, Any]], Claims]]] = {}


def opaque_issuer(settings: Settings) -> IssuerSettings | None:
    """The issuer opaque tokens are introspected at: ``OPAQUE_TOKEN_ISSUER``, else the only one with INTROSPECTION."""
    if settings.opaque_token_issuer is not None:
        return settings.issuer_for(settings.opaque_token_issuer)
    introspecting = [i for i in settings.issuers if i.introspection is not None]
    return introspecting[0] if len(introspecting) == 1 else None


def _introspection(issuer: IssuerSettings) -> tuple[Introspector, Callable[[Mapping[str, Any]], Claims]]:
    found = _built.get(issuer.issuer)
    if found is not None and found[0] is issuer:
        return found[1], found[2]  # the hot path: no config built, no comparison
    if issuer.introspection is None:
        raise LookupError(f"{issuer.issuer} has no INTROSPECTION")
    introspector = get_introspector(issuer, IntrospectionConfig.from_setting(issuer.introspection))
    paths = issuer.claims

    def build(payload: Mapping[str, Any]) -> Claims:
        return Claims(payload, paths, _EMPTY_HEADER, token_format="opaque")

    _built[issuer.issuer] = (issuer, introspector, build)
    return introspector, build


def introspector_for(issuer: IssuerSettings) -> Introspector:
    """This process's introspector for an issuer with ``INTROSPECTION`` (LookupError without it)."""
    return _introspection(issuer)[0]


def opaque_claims(raw: str, issuer: IssuerSettings, settings: Settings, *, dpop: bool = False) -> Claims:
    """Introspect an opaque token at ``issuer``; return its Claims (``token_format == "opaque"``).

    ``dpop``: it came with the DPoP scheme; an answer binding it (``cnf.jkt``, ``token_type`` DPoP) is then
    the proof check's to hold, and as Bearer it is refused ``sender_constrained``.
    """
    check_opaque(raw, settings.max_token_bytes)
    introspector, build = _introspection(issuer)
    return introspector.introspect_as(raw, build, dpop=dpop)


def confirm_jwt(raw: str, claims: Claims, settings: Settings) -> None:
    """With ``FOR_JWTS``, have the issuer's introspection endpoint confirm a locally verified JWT is active."""
    issuer = settings.issuer_for(claims.issuer)
    config = issuer.introspection if issuer is not None else None
    if issuer is None or config is None or config.get("FOR_JWTS") is not True:
        return
    # A JWT with a cnf got here only through the DPoP scheme (tokens.py refuses it as Bearer), its proof checked.
    introspector_for(issuer).introspect(raw, dpop=True)


def reset() -> None:
    """Forget the introspectors built here (settings changed, or tests)."""
    _built.clear()


register_reset("opaque.built", reset)
