"""Which configured issuer an unverified ``iss`` selects: exact issuers first, then ``{tenant}`` templates.

One :class:`~drf_oidc_jwks.issuers.IssuerIndex` per settings object, built at first use (a template
that cannot be matched safely is an ImproperlyConfigured naming its entry). A match gives the concrete
issuer's settings (``ISSUER`` and ``JWKS_URL`` with the tenant filled in) and the settings that own the
key set: the template entry itself when ``JWKS_URL`` has no ``{tenant}``, so every tenant shares one
JWKS client, one cache entry, one fetch and one cooldown. An ``iss`` no rule accepts goes to
``ISSUER_RESOLVER`` when one is set (:func:`select_issuer`): its answer is built like an ``ISSUERS`` entry
(:func:`drf_oidc_jwks.conf.parse_issuer`) and cached per process (:mod:`drf_oidc_jwks.resolver`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

from django.core.exceptions import ImproperlyConfigured

from . import settings_keys
from .claim_paths import TENANT_CLAIMS
from .conf import parse_issuer, raw_setting, register_reset
from .exceptions import InvalidIssuer
from .issuers import (
    TENANT,
    IssuerIndex,
    IssuerMatch,
    IssuerRule,
    compile_template,
    exact_match,
    is_template,
    template_problems,
)
from .logfields import safe
from .resolver import ResolverCache, current_request, load_resolver
from .settings_keys import IssuerSettings, Settings
from .settings_values import Problem

__all__ = ["Selected", "concrete_settings", "entry_problems", "index_for", "resolver_for", "select", "select_issuer"]

#: Concrete settings kept per process; past this many tenants the memo starts over (a flood stays bounded).
MAX_TENANTS_MEMO = 4096


class Selected(NamedTuple):
    """An ``iss`` resolved: the concrete issuer's settings, the settings owning its key set, and the match."""

    issuer: IssuerSettings
    keys: IssuerSettings
    match: IssuerMatch[IssuerSettings]
    #: Seconds an ``ISSUER_RESOLVER`` answer stays in use (infinite for configured issuers): the memo never outlives it.
    resolved_for: float = math.inf


_lock = threading.Lock()
_indexes: dict[int, tuple[Settings, IssuerIndex[IssuerSettings]]] = {}
_concrete: dict[tuple[int, str], tuple[IssuerSettings, IssuerSettings]] = {}
_resolvers: dict[int, tuple[Settings, ResolverCache[Selected]]] = {}


def _rule(i: IssuerSettings, where: str) -> IssuerRule[IssuerSettings]:
    if not is_template(i.issuer):
        return IssuerRule(i, i.issuer, None, i.jwks_url, i.tenant_claim)
    claim = i.tenant_claim if i.tenant_claim is not None else TENANT_CLAIMS.get(i.provider)
    entry = {"ISSUER": i.issuer, "TENANTS": i.tenants, "JWKS_URL": i.jwks_url, "TENANT_CLAIM": claim}
    errors = [p for p in template_problems(entry, where) if p.error]
    if errors:
        raise ImproperlyConfigured(f"drf_oidc_jwks.E015: DRF_OIDC_JWKS {errors[0].msg} {errors[0].hint}")
    tenants = i.tenants if isinstance(i.tenants, str) else tuple(i.tenants or ())
    return IssuerRule(i, i.issuer, compile_template(i.issuer, tenants), i.jwks_url, claim)


def index_for(s: Settings) -> IssuerIndex[IssuerSettings]:
    """The issuer index of ``s``, built once per settings object."""
    held = _indexes.get(id(s))
    if held is not None and held[0] is s:
        return held[1]
    index = IssuerIndex([_rule(i, f"ISSUERS[{n}]") for n, i in enumerate(s.issuers)])
    with _lock:
        _indexes.clear()  # one settings object is current at a time
        _indexes[id(s)] = (s, index)
    return index


def concrete_settings(match: IssuerMatch[IssuerSettings]) -> IssuerSettings:
    """The settings of the concrete issuer ``match`` names (the entry itself for an exact issuer)."""
    if match.tenant is None:
        return match.settings
    memo_key = (id(match.settings), match.issuer)
    held = _concrete.get(memo_key)
    if held is not None and held[0] is match.settings:
        return held[1]
    found = replace(match.settings, issuer=match.issuer, jwks_url=match.jwks_url)
    with _lock:
        if len(_concrete) >= MAX_TENANTS_MEMO:
            _concrete.clear()
        _concrete[memo_key] = (match.settings, found)
    return found


def select(s: Settings, iss: object) -> Selected | None:
    """Resolve ``iss`` from configuration alone (no network request); None when no rule accepts it."""
    match = index_for(s).find(iss)
    if match is None:
        return None
    issuer = concrete_settings(match)
    shared = match.tenant is not None and match.jwks_url is not None and TENANT not in (match.settings.jwks_url or "")
    return Selected(issuer, _keys_owner(s, match.settings) if shared else issuer, match)


def _keys_owner(s: Settings, entry: IssuerSettings) -> IssuerSettings:
    """The first templated entry naming ``entry``'s common ``JWKS_URL``: templates sharing one URL share one key set."""
    # Entra's v1 and v2 issuers are two templates over one key set; in configuration order, so every
    # process picks the same owner (and the same shared cache entry).
    for candidate in s.issuers:
        if candidate.jwks_url == entry.jwks_url and is_template(candidate.issuer):
            return candidate
    return entry


def _resolved(issuer: IssuerSettings) -> Selected:
    # A resolved issuer is one concrete issuer: its own key set, by its validated JWKS_URL or its discovery.
    return Selected(issuer, issuer, exact_match(issuer, issuer.issuer, issuer.jwks_url))


def resolver_for(s: Settings) -> ResolverCache[Selected] | None:
    """The ``ISSUER_RESOLVER`` cache of ``s``, built once per settings object; None without a resolver.

    A path that cannot be imported is ImproperlyConfigured naming the key (``E027``).
    """
    if s.issuer_resolver is None:
        return None
    held = _resolvers.get(id(s))
    if held is not None and held[0] is s:
        return held[1]
    with _lock:
        held = _resolvers.get(id(s))
        if held is not None and held[0] is s:
            return held[1]  # built by another thread meanwhile: one cache, so one call per issuer
        try:
            resolve = load_resolver(s.issuer_resolver)
        except ImproperlyConfigured as exc:
            raise ImproperlyConfigured(f"drf_oidc_jwks.E027: DRF_OIDC_JWKS {exc}") from None
        raw = raw_setting()
        cache: ResolverCache[Selected] = ResolverCache(
            resolve,
            lambda answer: _resolved(parse_issuer(raw, answer)),
            ttl=s.issuer_resolver_cache_ttl,
            negative_ttl=s.issuer_resolver_negative_ttl,
            failure_ttl=s.issuer_resolver_failure_ttl,
            maxsize=s.issuer_resolver_cache_size,
            wait_timeout=s.http_timeout,
        )
        _resolvers.clear()  # one settings object is current at a time
        _resolvers[id(s)] = (s, cache)
    return cache


def select_issuer(s: Settings, iss: object) -> Selected:
    """The issuer ``iss`` selects: configured or templated, else ``ISSUER_RESOLVER``'s; ``invalid_issuer`` when none.

    Only the resolver's answer, once validated, can name a URL: no network request for an issuer nobody vouches for.
    """
    selected = select(s, iss)
    if selected is not None:
        return selected
    cache = resolver_for(s)
    if cache is None:
        configured = ", ".join(repr(i.issuer) for i in s.issuers)
        raise InvalidIssuer(f"iss {safe(iss)} is not a configured ISSUER ({configured})")
    found = cache.lookup(iss, current_request())  # InvalidIssuer (401) or KeySourceError (503) when refused
    return found._replace(resolved_for=cache.expires_in(found.issuer.issuer))


def entry_problems(values: Mapping[str, Any], where: str) -> list[Problem]:
    """E015 / W002: the ``{tenant}`` keys of one issuer entry, for the settings walk (checks and first use)."""
    return [
        Problem("E015" if p.error else "W002", p.msg, p.hint, error=p.error) for p in template_problems(values, where)
    ]


def _lookup(s: Settings, iss: str) -> IssuerSettings | None:
    selected = select(s, iss)
    if selected is None:
        # An issuer ISSUER_RESOLVER vouched for (never a call to it: labels and lookups after verification).
        held = _resolvers.get(id(s))
        selected = held[1].peek(iss) if held is not None and held[0] is s else None
    return selected.issuer if selected is not None else None


def reset() -> None:
    """Forget the indexes and concrete settings (settings changed, or tests)."""
    with _lock:
        _indexes.clear()
        _concrete.clear()
        _resolvers.clear()


settings_keys.TEMPLATE_LOOKUP[:] = [_lookup]
settings_keys.ENTRY_RULES[:] = [entry_problems]
settings_keys.RESOLVER_LOADER[:] = [load_resolver]  # E027 in the settings walk: checks and first use alike
register_reset("issuer_lookup", reset)
