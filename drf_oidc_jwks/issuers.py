"""Templated issuers: one ``ISSUERS`` entry for every tenant of a multi-tenant identity provider.

``"https://login.microsoftonline.com/{tenant}/v2.0"`` matches every issuer of that shape whose
``{tenant}`` part is allowed by ``TENANTS``. ``{tenant}`` stands for exactly one non-empty path
segment (or one host label) made of URL-safe characters only, so a matched tenant can be put into
a ``JWKS_URL`` or a discovery URL without changing its host or escaping its path.

Nothing here makes a network request: :class:`IssuerIndex` finds the rule for an unverified ``iss``
from configuration alone (exact issuers in a dict, then the templates in order), so an issuer no
rule accepts is refused before any key is fetched. The key-set identity (:attr:`IssuerMatch.keyset_id`)
is the concrete JWKS URL: without ``{tenant}`` in ``JWKS_URL`` every tenant shares one key set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, TypeVar
from urllib.parse import urlsplit

from .exceptions import InvalidIssuer

__all__ = [
    "TENANT",
    "ANY_TENANT",
    "IssuerTemplate",
    "IssuerRule",
    "IssuerMatch",
    "IssuerIndex",
    "TemplateProblem",
    "compile_template",
    "exact_match",
    "is_template",
    "match",
    "check_tenant_claim",
    "template_problems",
]

#: The placeholder in ``ISSUER`` and ``JWKS_URL``.
TENANT = "{tenant}"
#: ``TENANTS`` value allowing any tenant.
ANY_TENANT = "*"

# RFC 3986 unreserved characters only: no "/", "%", "?", "#", "@" or ":" can move a substituted
# URL to another path, host or query. A leading "." is refused so "." and ".." never match.
_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,254}")
# One DNS label (letters, digits, hyphens; no dot, so a tenant cannot add a level to the host).
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

T = TypeVar("T")


def is_template(value: object) -> bool:
    """Say whether an ``ISSUER`` or ``JWKS_URL`` value holds the ``{tenant}`` placeholder."""
    return isinstance(value, str) and TENANT in value


@dataclass(frozen=True)
class IssuerTemplate:
    """A compiled ``ISSUER`` template: the text around ``{tenant}`` and where it stands."""

    template: str
    prefix: str
    suffix: str
    kind: Literal["path", "host"]
    #: Allowed tenants; None means any (``TENANTS: "*"``).
    tenants: frozenset[str] | None

    def tenant_of(self, iss: object) -> str | None:
        """Return the ``{tenant}`` part of ``iss`` when it has this shape (allowed or not), else None."""
        if not isinstance(iss, str) or len(iss) <= len(self.prefix) + len(self.suffix):
            return None
        if not (iss.startswith(self.prefix) and iss.endswith(self.suffix)):
            return None
        tenant = iss[len(self.prefix) : len(iss) - len(self.suffix)]
        pattern = _SEGMENT if self.kind == "path" else _LABEL
        return tenant if pattern.fullmatch(tenant) else None

    def match(self, iss: object) -> str | None:
        """Return the tenant when ``iss`` has this shape and its tenant is allowed, else None."""
        tenant = self.tenant_of(iss)
        if tenant is None or (self.tenants is not None and tenant not in self.tenants):
            return None
        return tenant

    def concrete(self, tenant: str) -> str:
        """The issuer of ``tenant``."""
        return f"{self.prefix}{tenant}{self.suffix}"


def _placement(template: str) -> Literal["path", "host"]:
    """Where the single ``{tenant}`` stands: a whole path segment or a whole host label; ValueError otherwise."""
    marker = "tenantplaceholder0"
    parts = urlsplit(template.replace(TENANT, marker))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("a templated ISSUER must be an http(s) URL with a host")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("{tenant} issuers take no query, fragment or user info")
    if marker in parts.netloc:
        host = parts.hostname
        if marker not in host:
            raise ValueError("{tenant} cannot stand for the port")
        if marker not in host.split(".") or host.split(".")[-1] == marker:
            raise ValueError("{tenant} in the host must be a whole label, below the domain (e.g. {tenant}.auth0.com)")
        return "host"
    if marker not in parts.path.split("/"):
        raise ValueError("{tenant} must be a whole path segment (e.g. https://login.example.com/{tenant}/v2.0)")
    return "path"


def compile_template(template: str, tenants: Iterable[str] | str | None) -> IssuerTemplate:
    """Compile an ``ISSUER`` holding exactly one ``{tenant}``; ValueError (with the reason) when it cannot be."""
    if not isinstance(template, str) or template.count(TENANT) != 1:
        raise ValueError("a templated ISSUER holds {tenant} exactly once")
    if "{" in template.replace(TENANT, "") or "}" in template.replace(TENANT, ""):
        raise ValueError("the only placeholder an ISSUER may hold is {tenant}")
    kind = _placement(template)
    if tenants is None:
        raise ValueError('a templated ISSUER needs TENANTS: a list of tenants, or "*" for any')
    if isinstance(tenants, str):
        if tenants != ANY_TENANT:
            raise ValueError('TENANTS must be a list of tenants, or "*" for any')
        allowed: frozenset[str] | None = None
    else:
        allowed = frozenset(tenants)
        pattern = _SEGMENT if kind == "path" else _LABEL
        bad = sorted(t for t in allowed if not isinstance(t, str) or not pattern.fullmatch(t))
        if bad or not allowed:
            raise ValueError(f"TENANTS must be a non-empty list of {kind} {'segments' if kind == 'path' else 'labels'}")
    prefix, _, suffix = template.partition(TENANT)
    return IssuerTemplate(template, prefix, suffix, kind, allowed)


def match(template: IssuerTemplate | str, iss: object, tenants: Iterable[str] | str = ANY_TENANT) -> str | None:
    """Return the tenant of ``iss`` under ``template`` (a compiled one, or a string compiled with ``tenants``)."""
    compiled = template if isinstance(template, IssuerTemplate) else compile_template(template, tenants)
    return compiled.match(iss)


def check_tenant_claim(payload: Mapping[str, Any], claim: str | None, tenant: str | None) -> None:
    """Raise ``invalid_issuer`` unless ``payload[claim]`` equals the ``{tenant}`` part of ``iss`` exactly."""
    if claim is None or tenant is None:
        return
    value = payload.get(claim)
    if not isinstance(value, str) or value != tenant:
        # Entra signs every tenant's tokens with one key set, so the signature does not bind a token to
        # the tenant its iss names; the tenant claim must agree (as Microsoft.Identity.Web checks).
        raise InvalidIssuer(f"{claim} is not the tenant of iss", description="The token's tenant is not trusted.")


# Frozen dataclasses, not NamedTuples: a generic NamedTuple needs Python 3.11.
@dataclass(frozen=True)
class IssuerRule(Generic[T]):
    """One configured issuer: its settings object, and (when templated) its compiled template."""

    settings: T
    issuer: str
    template: IssuerTemplate | None = None
    #: ``JWKS_URL`` as configured (may hold ``{tenant}``); None for discovery.
    jwks_url: str | None = None
    tenant_claim: str | None = None


@dataclass(frozen=True)
class IssuerMatch(Generic[T]):
    """What an unverified ``iss`` selected: the rule's settings and the concrete issuer, tenant and key set."""

    settings: T
    #: The concrete issuer (``request.auth.issuer``; users are keyed by it).
    issuer: str
    #: The ``{tenant}`` part, None for an exact issuer.
    tenant: str | None
    #: The concrete JWKS URL, None when the key set is found by discovery of :attr:`issuer`.
    jwks_url: str | None
    #: The key-set identity to key JWKS clients and cache entries by: equal for every tenant that shares keys.
    keyset_id: str
    tenant_claim: str | None

    def check_payload(self, payload: Mapping[str, Any]) -> None:
        """Apply ``TENANT_CLAIM`` to a verified payload (``invalid_issuer`` on mismatch)."""
        check_tenant_claim(payload, self.tenant_claim, self.tenant)


def _keyset(rule: IssuerRule[Any], issuer: str, tenant: str | None) -> tuple[str | None, str]:
    url = rule.jwks_url
    if url is None:
        # Discovery is per concrete issuer: its document must name that very issuer.
        return None, "discovery:" + issuer
    if tenant is not None and TENANT in url:
        url = url.replace(TENANT, tenant)
    return url, "jwks:" + url


def exact_match(settings: T, issuer: str, jwks_url: str | None) -> IssuerMatch[T]:
    """The match of one concrete issuer found elsewhere (``ISSUER_RESOLVER``): same key-set identity rules."""
    url, keyset_id = _keyset(IssuerRule(settings, issuer, None, jwks_url), issuer, None)
    return IssuerMatch(settings, issuer, None, url, keyset_id, None)


class IssuerIndex(Generic[T]):
    """Find the rule for an unverified ``iss``: exact issuers in O(1), then the templates in order."""

    def __init__(self, rules: Sequence[IssuerRule[T]]) -> None:
        self.exact: dict[str, IssuerRule[T]] = {}
        self.templates: tuple[IssuerRule[T], ...] = tuple(r for r in rules if r.template is not None)
        for rule in rules:
            if rule.template is None:
                self.exact.setdefault(rule.issuer, rule)

    def find(self, iss: object) -> IssuerMatch[T] | None:
        """Return the match for ``iss``, or None when no rule accepts it (no network request either way)."""
        if not isinstance(iss, str):
            return None
        rule = self.exact.get(iss)
        if rule is not None:
            url, keyset_id = _keyset(rule, iss, None)
            return IssuerMatch(rule.settings, iss, None, url, keyset_id, rule.tenant_claim)
        for rule in self.templates:
            template = rule.template
            tenant = template.match(iss) if template is not None else None
            if tenant is not None:
                url, keyset_id = _keyset(rule, iss, tenant)
                return IssuerMatch(rule.settings, iss, tenant, url, keyset_id, rule.tenant_claim)
        return None

    def require(self, iss: object) -> IssuerMatch[T]:
        """Like :meth:`find`, raising ``invalid_issuer`` when no rule accepts ``iss``."""
        found = self.find(iss)
        if found is None:
            raise InvalidIssuer("iss is not a configured ISSUER and matches no {tenant} template")
        return found

    def __len__(self) -> int:
        return len(self.exact) + len(self.templates)


class TemplateProblem(NamedTuple):
    """One thing wrong with the tenant keys of an issuer entry (the checks give it an id)."""

    msg: str
    hint: str
    error: bool = True


def template_problems(entry: Mapping[str, Any], where: str) -> list[TemplateProblem]:
    """Check ``ISSUER``/``TENANTS``/``TENANT_CLAIM``/``JWKS_URL`` of one issuer entry for the system checks."""
    issuer, tenants, jwks_url = entry.get("ISSUER"), entry.get("TENANTS"), entry.get("JWKS_URL")
    claim = entry.get("TENANT_CLAIM")
    out: list[TemplateProblem] = []
    if claim is not None and (not isinstance(claim, str) or not claim):
        out.append(TemplateProblem(f"{where}: TENANT_CLAIM must be a claim name.", 'e.g. "TENANT_CLAIM": "tid".'))
    if not is_template(issuer):
        if tenants is not None or claim is not None or is_template(jwks_url):
            out.append(
                TemplateProblem(
                    f"{where}: TENANTS, TENANT_CLAIM and {{tenant}} in JWKS_URL need {{tenant}} in ISSUER.",
                    'e.g. "ISSUER": "https://login.microsoftonline.com/{tenant}/v2.0".',
                )
            )
        return out
    try:
        compiled = compile_template(str(issuer), tenants)
    except ValueError as exc:
        return [*out, TemplateProblem(f"{where}: {exc}.", "See docs/multi-tenant.md.")]
    if isinstance(jwks_url, str) and (jwks_url.count(TENANT) > 1 or "{" in jwks_url.replace(TENANT, "")):
        out.append(TemplateProblem(f"{where}: JWKS_URL holds {{tenant}} at most once.", "See docs/multi-tenant.md."))
    if compiled.tenants is None:
        if jwks_url is None or is_template(jwks_url):
            # Any tenant, and a URL built from it: every made-up tenant in a forged token would cost a fetch.
            out.append(
                TemplateProblem(
                    f'{where}: TENANTS "*" needs a JWKS_URL without {{tenant}} (one key set for all tenants).',
                    "List the tenants, or set JWKS_URL to the provider's common key set.",
                )
            )
        else:
            out.append(
                TemplateProblem(
                    f'{where}: TENANTS is "*": tokens of every tenant of this provider are accepted.',
                    "List the tenants you serve, or check the tenant in your views (TENANT_CLAIM, HasTenant).",
                    error=False,
                )
            )
    return out
