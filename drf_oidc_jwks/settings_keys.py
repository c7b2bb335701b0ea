"""The table of ``DRF_OIDC_JWKS`` keys: one typed field per key, declared with :func:`key`.

Validation, construction and the docs test all walk this one table (:data:`GLOBAL_TABLE`,
:data:`ISSUER_TABLE`), so whatever passes validation is exactly what gets built. Adding a key is one
field here (name, default, parser, optional warning) and one row in docs/settings.md.
Dependency-free: the standard library, settings_values and claim_paths only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import settings_values as v
from .claim_paths import ClaimPath
from .settings_opaque import (
    introspection,
    text,
)

_KEY = "drf_oidc_jwks.key"


@dataclass(frozen=True)
class Key:
    """One settings key: its name, default, parser and optional warning, and where it lives."""

    name: str
    default: Any
    parse: v.Parse
    warn: Callable[[Any], v.Problem | None] | None = None
    #: False for keys an ISSUERS entry never takes from the top level (each entry names its own).
    inherited: bool = True
    scope: str = ""  # "global" or "issuer", filled in from the class holding the field
    attr: str = ""  # the attribute of Settings / IssuerSettings it builds
    doc: str = ""  # the docs page and anchor of its row


def key(
    name: str,
    default: Any,
    parse: v.Parse,
    *,
    warn: Callable[[Any], v.Problem | None] | None = None,
    inherited: bool = True,
) -> Any:
    """Declare the settings key ``name`` as the field it builds (the default applies when the key is absent)."""
    return field(metadata={_KEY: Key(name, default, parse, warn, inherited)})


# --- Many tenants per identity provider (docs/multi-tenant.md): TENANTS, TENANT_CLAIM


def tenants(value: Any, ctx: v.Context) -> tuple[str, ...] | str | None:
    """``TENANTS``: None, ``"*"`` (any tenant) or a non-empty list of tenants (E003)."""
    if value is None or value == "*":
        return value  # type: ignore[no-any-return]
    if isinstance(value, (list, tuple)) and value and all(isinstance(t, str) and t for t in value):
        return tuple(value)
    raise v.fail("E003", f'TENANTS must be a list of tenants or "*", not {value!r}.', 'e.g. ["contoso", "fabrikam"].')


def tenant_claim(value: Any, ctx: v.Context) -> str | None:
    """``TENANT_CLAIM``: None or a claim name (E003)."""
    if value is None or (isinstance(value, str) and value):
        return value
    raise v.fail("E003", f"TENANT_CLAIM must be a claim name, not {value!r}.", 'e.g. "tid" (Entra ID).')


#: Filled by drf_oidc_jwks.issuer_lookup: the concrete settings of a templated issuer (conf stays a leaf).
TEMPLATE_LOOKUP: list[Callable[[Settings, str], IssuerSettings | None]] = []
#: Filled likewise: rules over one issuer entry's built values (E015, W002), run by the settings walk.
ENTRY_RULES: list[Callable[[Mapping[str, Any], str], list[v.Problem]]] = []


@dataclass(frozen=True)
class IssuerSettings:
    """Everything needed to verify tokens of one issuer: the per-issuer keys."""

    issuer: str = key("ISSUER", v.REQUIRED, v.issuer, inherited=False)
    jwks_url: str | None = key("JWKS_URL", None, v.optional(v.url("E005")), inherited=False)
    audience: tuple[str, ...] | None = key("AUDIENCE", v.REQUIRED, v.audience, warn=v.audience_warning)
    algorithms: tuple[str, ...] = key("ALGORITHMS", ("RS256",), v.algorithms)
    provider: str = key("PROVIDER", "generic", v.choice("E008", v.PROVIDERS))
    claims: Mapping[str, ClaimPath] = key("CLAIMS", {}, v.claims)
    required_claims: tuple[str, ...] = key("REQUIRED_CLAIMS", ("exp", "sub"), v.names())
    allowed_types: tuple[str, ...] | None = key("ALLOWED_TYPES", None, v.optional(v.names()))
    userinfo: bool = key("USERINFO", False, v.flag)
    userinfo_url: str | None = key("USERINFO_URL", None, v.optional(v.url("E005")))
    # Opaque tokens and revocation (docs/opaque-tokens.md, docs/revocation.md)
    #: Client credentials are per identity provider, so an ISSUERS entry never inherits them.
    introspection: Mapping[str, Any] | None = key("INTROSPECTION", None, introspection, inherited=False)
    backchannel_logout_audience: tuple[str, ...] | None = key(
        "BACKCHANNEL_LOGOUT_AUDIENCE", None, v.optional(v.names())
    )
    # DPoP, RFC 9449 (docs/dpop.md)
    dpop: str = key("DPOP", "allowed", v.choice("E014", v.DPOP_MODES))
    dpop_algorithms: tuple[str, ...] = key("DPOP_ALGORITHMS", ("ES256", "EdDSA", "RS256", "PS256"), v.dpop_algorithms)
    dpop_proof_max_age: float = key("DPOP_PROOF_MAX_AGE", 300, v.seconds(positive=True))
    # Many tenants per identity provider: {tenant} in ISSUER (and JWKS_URL)
    tenants: tuple[str, ...] | str | None = key("TENANTS", None, tenants, inherited=False)
    tenant_claim: str | None = key("TENANT_CLAIM", None, tenant_claim, inherited=False)

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def long_leeway(value: Any) -> v.Problem | None:
    """W021: a leeway over five minutes keeps expired tokens alive."""
    if value <= 300:
        return None
    return v.Problem(
        "W021",
        f"LEEWAY is {value:g} seconds: expired tokens stay accepted that long.",
        "Fix the clocks (NTP) instead; 30 to 60 seconds absorbs ordinary drift.",
        error=False,
    )


def no_cooldown(value: Any) -> v.Problem | None:
    """W022: without a cooldown every unknown kid is a request to the IdP."""
    if value != 0:
        return None
    return v.Problem(
        "W022",
        "JWKS_REFRESH_COOLDOWN is 0: every token with an unknown kid makes a request to the identity provider.",
        "Keep the default of 60 seconds: a rotated key is still picked up by its first token.",
        error=False,
    )


# --- Scope hierarchies (SCOPE_HIERARCHY, SCOPES_SUPPORTED): the rule lives here so conf stays a leaf


def hierarchy_problems(raw: object) -> list[str]:
    """Say what is wrong with a ``SCOPE_HIERARCHY`` value (empty when fine): its shape, then any cycle."""
    if not isinstance(raw, Mapping):
        return ['SCOPE_HIERARCHY must be a dict {"broader": ["narrower", ...]}.']
    problems = []
    for broader, narrower in raw.items():
        if not isinstance(broader, str) or not broader or " " in broader:
            problems.append(f"SCOPE_HIERARCHY key {broader!r} is not a scope (a non-empty string without spaces).")
        if isinstance(narrower, str) or not isinstance(narrower, Sequence | frozenset | set):
            problems.append(f"SCOPE_HIERARCHY[{broader!r}] must be a list of scopes.")
        elif not all(isinstance(s, str) and s and " " not in s for s in narrower):
            problems.append(f"SCOPE_HIERARCHY[{broader!r}] must hold scopes (non-empty strings without spaces).")
    if not problems:
        cycle = find_cycle(raw)
        if cycle:
            problems.append("SCOPE_HIERARCHY has a cycle: " + " -> ".join(cycle) + ".")
    return problems


def find_cycle(raw: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return one cycle of the hierarchy as a path (``["a", "b", "a"]``), or None."""
    graph = {k: list(v) for k, v in raw.items()}
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        # Iterative depth-first search: a deep hierarchy must not hit the recursion limit.
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(graph.get(start, ()))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if child in on_path:
                return [*path[path.index(child) :], child]
            if child not in done:
                path.append(child)
                on_path.add(child)
                stack.append(iter(graph.get(child, ())))
    return None


def scope_hierarchy(value: Any, ctx: v.Context) -> dict[str, tuple[str, ...]]:
    """``SCOPE_HIERARCHY``: a dict of scope -> list of the scopes it implies, without a cycle (E016)."""
    problems = hierarchy_problems(value)
    if problems:
        raise v.fail(
            "E016",
            " ".join(problems),
            'Map each broader scope to the narrower ones it grants: {"admin": ["reports:write"]}; never back.',
        )
    return {broader: tuple(narrower) for broader, narrower in value.items()}


def scopes_supported_list(value: Any, ctx: v.Context) -> tuple[str, ...]:
    """``SCOPES_SUPPORTED``: a list of scopes, never ``offline_access`` (E016: no scope of this resource)."""
    scopes: tuple[str, ...] = v.names()(value, ctx)
    if "offline_access" in scopes:
        raise v.fail(
            "E016",
            "SCOPES_SUPPORTED names offline_access, which asks the authorization server for a refresh token.",
            "Remove offline_access: it is no scope of this resource and is never advertised.",
        )
    return scopes


_seconds, _positive = v.seconds(), v.seconds(positive=True)


# --- ISSUER_RESOLVER (docs/multi-tenant.md): issuers looked up at run time, cached per process


#: Filled by drf_oidc_jwks.issuer_lookup: imports an ``ISSUER_RESOLVER`` path (ImproperlyConfigured when it cannot).
RESOLVER_LOADER: list[Callable[[str], object]] = []


def resolver_path(value: Any, ctx: v.Context) -> str | None:
    """``ISSUER_RESOLVER``: None or a dotted path (E013) to a function that imports (E027)."""
    if value is None:
        return None
    try:
        path: str = v.dotted_path(value, ctx)
    except v.InvalidSettingError:
        raise v.fail(
            "E013", f"ISSUER_RESOLVER must be a dotted import path, not {value!r}.", 'e.g. "myapp.tenants.resolve".'
        ) from None
    for load in RESOLVER_LOADER:
        try:
            load(path)
        except Exception as exc:  # noqa: BLE001 - whatever importing the user's module raises is this key's error
            hint = "Point ISSUER_RESOLVER at a function resolve(unverified_iss, request) -> dict or None."
            raise v.fail("E027", f"{type(exc).__name__}: {exc}"[:300], hint) from None
    return path


def resolver_only(raw: Mapping[str, Any]) -> bool:
    """Whether ``ISSUER_RESOLVER`` is the only source of issuers (neither ``ISSUER`` nor ``ISSUERS`` given)."""
    return raw.get("ISSUER_RESOLVER") is not None and "ISSUER" not in raw and raw.get("ISSUERS") is None


@dataclass(frozen=True)
class Settings:
    """The validated ``DRF_OIDC_JWKS`` setting: the deployment-wide keys, and the issuers."""

    issuers: tuple[IssuerSettings, ...] = key("ISSUERS", None, v.issuers)
    leeway: float = key("LEEWAY", 30, _seconds, warn=long_leeway)
    jwks_cache_alias: str = key("JWKS_CACHE_ALIAS", "default", v.cache_alias("E020"))
    jwks_cache_ttl: float = key("JWKS_CACHE_TTL", 300, _seconds)
    jwks_min_ttl: float = key("JWKS_MIN_TTL", 60, _seconds)
    jwks_max_ttl: float = key("JWKS_MAX_TTL", 86400, _seconds)
    jwks_max_stale: float = key("JWKS_MAX_STALE", 21600, _seconds)
    jwks_refresh_cooldown: float = key("JWKS_REFRESH_COOLDOWN", 60, _seconds, warn=no_cooldown)
    jwks_failure_backoff: float = key("JWKS_FAILURE_BACKOFF", 5, _seconds)
    jwks_max_bytes: int = key("JWKS_MAX_BYTES", 512 * 1024, v.count)
    http_timeout: float = key("HTTP_TIMEOUT", 5.0, _positive)
    allow_insecure_http: bool = key("ALLOW_INSECURE_HTTP", False, v.flag)
    max_token_bytes: int = key("MAX_TOKEN_BYTES", 16 * 1024, v.count)
    min_rsa_key_size: int = key("MIN_RSA_KEY_SIZE", 2048, v.count)
    token_cache_ttl: float = key("TOKEN_CACHE_TTL", 60, _seconds)
    token_cache_size: int = key("TOKEN_CACHE_SIZE", 10000, v.count)
    sync_users: bool = key("SYNC_USERS", True, v.flag)
    realm: str = key("REALM", "api", v.header_text)
    resource: str | None = key("RESOURCE", None, v.optional(v.url("E011")))
    resource_documentation: str | None = key("RESOURCE_DOCUMENTATION", None, v.optional(v.header_text))
    required_scopes: tuple[str, ...] = key("REQUIRED_SCOPES", (), v.names())
    #: The drf-spectacular security scheme: "openIdConnect" (discovery URL) or "bearer" (a pasted JWT).
    openapi_scheme: str = key("OPENAPI_SCHEME", "openIdConnect", v.choice("E023", v.OPENAPI_SCHEMES))
    # User sync (docs/users.md)
    user_fields: Mapping[str, Any] = key(
        "USER_FIELDS", {"email": "email", "first_name": "given_name", "last_name": "family_name"}, v.user_fields
    )
    link_by_verified_email: bool = key("LINK_BY_VERIFIED_EMAIL", False, v.flag)
    staff_roles: frozenset[str] = key("STAFF_ROLES", (), v.names("E012", as_set=True))
    superuser_roles: frozenset[str] = key("SUPERUSER_ROLES", (), v.names("E012", as_set=True))
    sync_groups: bool = key("SYNC_GROUPS", False, v.flag)
    user_cache_ttl: float = key("USER_CACHE_TTL", 60, _seconds)
    userinfo_cache_ttl: float = key("USERINFO_CACHE_TTL", 300, _seconds)
    user_local_cache_ttl: float = key("USER_LOCAL_CACHE_TTL", 5, _seconds)
    user_cache_alias: str = key("USER_CACHE_ALIAS", "default", v.cache_alias("E024"))
    user_sync_class: str = key("USER_SYNC_CLASS", "drf_oidc_jwks.users.UserSync", v.dotted_path)
    # Operations (docs/operations.md)
    jwks_refresh_ahead: float = key("JWKS_REFRESH_AHEAD", 30, _seconds)
    # Opaque tokens and revocation (docs/opaque-tokens.md, docs/revocation.md)
    revocation_ttl: float = key("REVOCATION_TTL", 86400, _seconds)
    revocation_poll: float = key("REVOCATION_POLL", 5, _seconds)
    opaque_token_issuer: str | None = key("OPAQUE_TOKEN_ISSUER", None, v.optional(text))
    # DPoP, RFC 9449 (docs/dpop.md): proofs must carry a server nonce (DPoPNonceMiddleware hands them out)
    dpop_nonce: bool = key("DPOP_NONCE", False, v.flag)
    # Scope hierarchies and scopes_supported (docs/authorization.md, MCP authorization 2026-07-28)
    scope_hierarchy: Mapping[str, tuple[str, ...]] = key("SCOPE_HIERARCHY", {}, scope_hierarchy)
    scopes_supported: tuple[str, ...] = key("SCOPES_SUPPORTED", (), scopes_supported_list)
    # ISSUER_RESOLVER (docs/multi-tenant.md#a-resolver-over-a-django-model)
    issuer_resolver: str | None = key("ISSUER_RESOLVER", None, resolver_path)
    issuer_resolver_cache_ttl: float = key("ISSUER_RESOLVER_CACHE_TTL", 300, _seconds)
    issuer_resolver_negative_ttl: float = key("ISSUER_RESOLVER_NEGATIVE_TTL", 60, _seconds)
    issuer_resolver_failure_ttl: float = key("ISSUER_RESOLVER_FAILURE_TTL", 5, _seconds)
    issuer_resolver_cache_size: int = key("ISSUER_RESOLVER_CACHE_SIZE", 1024, v.count)
    # Per-process copies of user states (docs/users.md): at most this many identities per process (LRU)
    user_local_cache_size: int = key("USER_LOCAL_CACHE_SIZE", 10000, v.count)
    by_issuer: Mapping[str, IssuerSettings] = field(repr=False, default_factory=dict)

    def issuer_for(self, iss: Any) -> IssuerSettings | None:
        """Return the configured issuer whose ``ISSUER`` is ``iss`` (exactly, else by a ``{tenant}`` template)."""
        if not isinstance(iss, str):
            return None
        found = self.by_issuer.get(iss)
        if found is None and TEMPLATE_LOOKUP:
            # {tenant} issuers: the concrete settings of the tenant that iss names, when one is allowed.
            return TEMPLATE_LOOKUP[0](self, iss)
        return found


def _table(cls: type, scope: str, doc: str) -> tuple[Key, ...]:
    return tuple(
        replace(f.metadata[_KEY], scope=scope, attr=f.name, doc=doc) for f in fields(cls) if _KEY in f.metadata
    )


#: The deployment-wide keys, in the order they are parsed (a parser may read keys parsed before it).
GLOBAL_TABLE = _table(Settings, "global", "settings.md#deployment-wide-keys")
#: The keys valid at the top level and in each ``ISSUERS`` entry, parsed after the deployment-wide ones.
ISSUER_TABLE = _table(IssuerSettings, "issuer", "settings.md#per-issuer-keys")
TABLE = GLOBAL_TABLE + ISSUER_TABLE

#: Key name -> default (``REQUIRED`` for a key without one).
ISSUER_KEYS: dict[str, Any] = {k.name: k.default for k in ISSUER_TABLE}
GLOBAL_KEYS: dict[str, Any] = {k.name: k.default for k in GLOBAL_TABLE}
ALL_KEYS: dict[str, Any] = {**ISSUER_KEYS, **GLOBAL_KEYS}


def merge_issuer_keys(top: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """One ``ISSUERS`` entry with the per-issuer keys it inherits from the top level (the entry wins)."""
    merged = {k.name: top[k.name] for k in ISSUER_TABLE if k.inherited and k.name in top}
    merged.update(entry)
    return merged


def issuer_entries(raw: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Each issuer's keys with where they were written: the ``ISSUERS`` entries merged, or the top level."""
    entries = raw.get("ISSUERS")
    if entries is None:
        return [("DRF_OIDC_JWKS", raw)]
    if not isinstance(entries, (list, tuple)):
        return []
    return [(f"ISSUERS[{i}]", merge_issuer_keys(raw, e)) for i, e in enumerate(entries) if isinstance(e, Mapping)]


def first_issuer(raw: Any) -> dict[str, Any]:
    """The per-issuer keys of the first issuer of a ``DRF_OIDC_JWKS`` value (tolerant of a broken one)."""
    if not isinstance(raw, Mapping):
        return {}
    entries = raw.get("ISSUERS")
    first = entries[0] if isinstance(entries, (list, tuple)) and entries else None
    merged = merge_issuer_keys(raw, first) if isinstance(first, Mapping) else dict(raw)
    return {name: value for name, value in merged.items() if name in ISSUER_KEYS}
