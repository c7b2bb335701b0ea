"""The ``DRF_OIDC_JWKS`` setting, validated and frozen into typed objects.

Settings are read in running code only, through :func:`get_settings`, whose
cache is cleared on Django's ``setting_changed`` signal so ``override_settings``
works. The same :func:`validate` feeds the system checks and the first use, because
system checks do not run under gunicorn.
"""

from __future__ import annotations

import difflib
import ipaddress
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

SETTING_NAME = "DRF_OIDC_JWKS"

#: Asymmetric JWS algorithms this library can verify.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

PROVIDERS = ("generic", "better-auth", "auth0", "okta", "keycloak", "entra", "cognito")

#: Keys that may appear at the top level and in each entry of ``ISSUERS``.
ISSUER_KEYS: dict[str, Any] = {
    "ISSUER": None,
    "JWKS_URL": None,
    "AUDIENCE": None,  # required; see _REQUIRED below
    "ALGORITHMS": ("RS256",),
    "PROVIDER": "generic",
    "CLAIMS": {},
    "REQUIRED_CLAIMS": ("exp", "sub"),
    "ALLOWED_TYPES": None,
    "USERINFO": False,
    "USERINFO_URL": None,
}

#: Keys that only make sense once per deployment.
GLOBAL_KEYS: dict[str, Any] = {
    "ISSUERS": None,
    "LEEWAY": 30,
    "JWKS_CACHE_ALIAS": "default",
    "JWKS_CACHE_TTL": 300,
    "JWKS_MIN_TTL": 60,
    "JWKS_MAX_TTL": 86400,
    "JWKS_MAX_STALE": 21600,
    "JWKS_REFRESH_COOLDOWN": 60,
    "JWKS_FAILURE_BACKOFF": 5,
    "JWKS_MAX_BYTES": 512 * 1024,
    "HTTP_TIMEOUT": 5.0,
    "ALLOW_INSECURE_HTTP": False,
    "MAX_TOKEN_BYTES": 16 * 1024,
    "MIN_RSA_KEY_SIZE": 2048,
    "TOKEN_CACHE_TTL": 60,
    "TOKEN_CACHE_SIZE": 10000,
    "SYNC_USERS": True,
    "REALM": "api",
    "RESOURCE": None,
    "RESOURCE_DOCUMENTATION": None,
    "REQUIRED_SCOPES": (),
    "OPENAPI_SCHEME": "openIdConnect",
    # User sync (docs/users.md)
    "USER_FIELDS": {"email": "email", "first_name": "given_name", "last_name": "family_name"},
    "LINK_BY_VERIFIED_EMAIL": False,
    "STAFF_ROLES": (),
    "SUPERUSER_ROLES": (),
    "SYNC_GROUPS": False,
    "USER_CACHE_TTL": 60,
    "USERINFO_CACHE_TTL": 300,
    "USER_LOCAL_CACHE_TTL": 5,
    "USER_CACHE_ALIAS": "default",
}

ALL_KEYS = {**ISSUER_KEYS, **GLOBAL_KEYS}

#: User fields the token may never write: local deactivation, passwords and the primary key stay
#: local; staff and superuser flags only through STAFF_ROLES / SUPERUSER_ROLES.
PROTECTED_FIELDS = frozenset({"password", "is_active", "last_login", "date_joined", "is_staff", "is_superuser"})

_UNSET: Any = object()

_HMAC_OR_NONE = {"none", "HS256", "HS384", "HS512"}


@dataclass(frozen=True)
class IssuerSettings:
    """Everything needed to verify tokens of one issuer."""

    issuer: str
    jwks_url: str | None
    audience: tuple[str, ...] | None
    algorithms: tuple[str, ...]
    provider: str
    claims: Mapping[str, Any]
    required_claims: tuple[str, ...]
    allowed_types: tuple[str, ...] | None
    userinfo: bool = False
    userinfo_url: str | None = None

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class Settings:
    """The validated ``DRF_OIDC_JWKS`` setting."""

    issuers: tuple[IssuerSettings, ...]
    leeway: float
    jwks_cache_alias: str
    jwks_cache_ttl: float
    jwks_min_ttl: float
    jwks_max_ttl: float
    jwks_max_stale: float
    jwks_refresh_cooldown: float
    jwks_failure_backoff: float
    jwks_max_bytes: int
    http_timeout: float
    allow_insecure_http: bool
    max_token_bytes: int
    min_rsa_key_size: int
    token_cache_ttl: float
    token_cache_size: int
    sync_users: bool
    realm: str
    resource: str | None
    resource_documentation: str | None
    required_scopes: tuple[str, ...]
    user_fields: Mapping[str, Any]
    link_by_verified_email: bool
    staff_roles: frozenset[str]
    superuser_roles: frozenset[str]
    sync_groups: bool
    user_cache_ttl: float
    userinfo_cache_ttl: float
    user_local_cache_ttl: float
    user_cache_alias: str
    by_issuer: Mapping[str, IssuerSettings] = field(repr=False, default_factory=dict)
    #: The drf-spectacular security scheme: "openIdConnect" (discovery URL) or "bearer" (a pasted JWT).
    openapi_scheme: str = "openIdConnect"

    def issuer_for(self, iss: Any) -> IssuerSettings | None:
        """Return the configured issuer whose ``ISSUER`` equals ``iss`` exactly."""
        if not isinstance(iss, str):
            return None
        return self.by_issuer.get(iss)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the setting; ``id`` is the system check id suffix."""

    id: str
    msg: str
    hint: str
    error: bool = True


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_allowed(url: str, allow_insecure_http: bool) -> bool:
    """Say whether the library may fetch ``url``: https, or http on loopback / when allowed."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme == "http":
        return bool(parts.hostname) and (allow_insecure_http or is_loopback_host(parts.hostname))
    return False


def _closest(name: str) -> str:
    match = difflib.get_close_matches(name, list(ALL_KEYS), n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def _as_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def validate(raw: Any) -> list[Problem]:
    """Return every problem with the ``DRF_OIDC_JWKS`` value ``raw`` (empty when fine)."""
    problems: list[Problem] = []
    if raw is _UNSET or raw is None:
        return [
            Problem(
                "E001",
                f"The {SETTING_NAME} setting is missing.",
                f'Add {SETTING_NAME} = {{"ISSUER": "https://auth.example.com", '
                f'"AUDIENCE": "https://api.example.com"}} to your settings.',
            )
        ]
    if not isinstance(raw, Mapping):
        return [Problem("E001", f"{SETTING_NAME} must be a dict.", "Give it a dict of UPPER_CASE keys.")]

    for key in raw:
        if key not in ALL_KEYS:
            problems.append(
                Problem("E002", f"{SETTING_NAME} has an unknown key {key!r}.", f"Remove it.{_closest(str(key))}")
            )

    allow_http = bool(raw.get("ALLOW_INSECURE_HTTP", False))
    entries: list[tuple[str, Mapping[str, Any]]] = []
    issuers = raw.get("ISSUERS")
    if issuers is not None:
        if not isinstance(issuers, Sequence) or isinstance(issuers, str) or not issuers:
            problems.append(
                Problem(
                    "E003",
                    "ISSUERS must be a non-empty list of dicts.",
                    'Give one dict per issuer: "ISSUERS": [{"ISSUER": "https://a.example.com", "AUDIENCE": "..."}].',
                )
            )
        else:
            for i, entry in enumerate(issuers):
                if not isinstance(entry, Mapping):
                    problems.append(
                        Problem("E003", f"ISSUERS[{i}] must be a dict.", 'e.g. {"ISSUER": "https://a.example.com"}.')
                    )
                    continue
                for key in entry:
                    if key not in ISSUER_KEYS:
                        problems.append(
                            Problem(
                                "E002",
                                f"ISSUERS[{i}] has a key {key!r} that is not per-issuer.",
                                "Per-issuer keys: " + ", ".join(ISSUER_KEYS) + "." + _closest(str(key)),
                            )
                        )
                merged = {k: raw[k] for k in ISSUER_KEYS if k in raw and k not in ("ISSUER", "JWKS_URL")}
                merged.update(entry)
                entries.append((f"ISSUERS[{i}]", merged))
    else:
        entries.append((SETTING_NAME, raw))

    seen: set[str] = set()
    for where, entry in entries:
        issuer = entry.get("ISSUER")
        if not issuer or not isinstance(issuer, str):
            problems.append(
                Problem(
                    "E004",
                    f"{where} has no ISSUER.",
                    'Set "ISSUER" to the exact "iss" value your identity provider puts in its tokens.',
                )
            )
        else:
            if issuer in seen:
                problems.append(
                    Problem("E003", f"{where}: issuer {issuer!r} is configured twice.", "Keep one entry per issuer.")
                )
            seen.add(issuer)
            if not url_allowed(issuer, allow_http):
                problems.append(
                    Problem(
                        "E005",
                        f"{where}: ISSUER {issuer!r} is not an https URL (http is allowed for loopback hosts only).",
                        'Use https, or set "ALLOW_INSECURE_HTTP": True for a trusted internal network.',
                    )
                )
        jwks_url = entry.get("JWKS_URL")
        if jwks_url is not None and (not isinstance(jwks_url, str) or not url_allowed(jwks_url, allow_http)):
            problems.append(
                Problem(
                    "E005",
                    f"{where}: JWKS_URL {jwks_url!r} is not an https URL (http is allowed for loopback hosts only).",
                    'Use https, or set "ALLOW_INSECURE_HTTP": True for a trusted internal network.',
                )
            )
        if "AUDIENCE" not in entry:
            problems.append(
                Problem(
                    "E006",
                    f"{where} has no AUDIENCE.",
                    'Set "AUDIENCE" to the "aud" value your API\'s tokens carry (a string or a list), '
                    'or "AUDIENCE": None to accept tokens of this issuer for any audience.',
                )
            )
        else:
            aud = entry["AUDIENCE"]
            if aud is None:
                problems.append(
                    Problem(
                        "W001",
                        f"{where}: AUDIENCE is None: tokens of this issuer for any audience are accepted.",
                        'Set "AUDIENCE" to this API\'s identifier unless every token of the issuer is meant for it.',
                        error=False,
                    )
                )
            elif not (isinstance(aud, str) and aud) and not (
                isinstance(aud, Sequence) and aud and all(isinstance(a, str) and a for a in aud)
            ):
                problems.append(
                    Problem(
                        "E006",
                        f"{where}: AUDIENCE must be a string, a list of strings, or None, not {aud!r}.",
                        'e.g. "AUDIENCE": "https://api.example.com" or ["https://api.example.com", "my-client-id"].',
                    )
                )
        algs = entry.get("ALGORITHMS", ISSUER_KEYS["ALGORITHMS"])
        if isinstance(algs, str) or not isinstance(algs, Sequence) or not algs:
            problems.append(
                Problem(
                    "E007",
                    f"{where}: ALGORITHMS must be a non-empty list.",
                    'e.g. "ALGORITHMS": ["RS256"] (add "EdDSA" for Better Auth\'s default keys).',
                )
            )
        else:
            for alg in algs:
                if alg in _HMAC_OR_NONE or (isinstance(alg, str) and alg.lower() == "none"):
                    problems.append(
                        Problem(
                            "E007",
                            f"{where}: ALGORITHMS holds {alg!r}, which a resource server must never accept.",
                            "Remove it: 'none' is unsigned, and HMAC would turn a public key into a shared secret.",
                        )
                    )
                elif alg not in SUPPORTED_ALGORITHMS:
                    problems.append(
                        Problem(
                            "E007",
                            f"{where}: ALGORITHMS holds unsupported {alg!r}.",
                            "Supported: " + ", ".join(sorted(SUPPORTED_ALGORITHMS)) + ".",
                        )
                    )
        provider = entry.get("PROVIDER", "generic")
        if provider not in PROVIDERS:
            problems.append(
                Problem(
                    "E008",
                    f"{where}: unknown PROVIDER {provider!r}.",
                    "Use one of: " + ", ".join(PROVIDERS) + ".",
                )
            )
        claims = entry.get("CLAIMS", {})
        if not isinstance(claims, Mapping):
            problems.append(
                Problem("E009", f"{where}: CLAIMS must be a dict.", 'e.g. "CLAIMS": {"roles": "realm_access.roles"}.')
            )
        else:
            from .claim_paths import CLAIM_ATTRIBUTES, normalise_path

            for key, path in claims.items():
                try:
                    normalise_path(path)
                except TypeError as exc:
                    problems.append(Problem("E009", f"{where}: CLAIMS[{key!r}]: {exc}.", "See docs/claims.md."))
                if key not in CLAIM_ATTRIBUTES:
                    close = difflib.get_close_matches(str(key), CLAIM_ATTRIBUTES, n=1)
                    problems.append(
                        Problem(
                            "E009",
                            f"{where}: CLAIMS has an unknown key {key!r}.",
                            "Keys: "
                            + ", ".join(CLAIM_ATTRIBUTES)
                            + "."
                            + (f" Did you mean {close[0]!r}?" if close else ""),
                        )
                    )

    for key in (
        "LEEWAY",
        "JWKS_CACHE_TTL",
        "JWKS_MIN_TTL",
        "JWKS_MAX_TTL",
        "JWKS_MAX_STALE",
        "JWKS_REFRESH_COOLDOWN",
        "JWKS_FAILURE_BACKOFF",
        "JWKS_MAX_BYTES",
        "HTTP_TIMEOUT",
        "MAX_TOKEN_BYTES",
        "MIN_RSA_KEY_SIZE",
        "TOKEN_CACHE_TTL",
        "TOKEN_CACHE_SIZE",
        "USER_CACHE_TTL",
        "USERINFO_CACHE_TTL",
        "USER_LOCAL_CACHE_TTL",
    ):
        value = raw.get(key, GLOBAL_KEYS[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            problems.append(
                Problem(
                    "E010",
                    f"{key} must be a number >= 0, not {value!r}.",
                    f"Remove it for the default, {GLOBAL_KEYS[key]!r}.",
                )
            )
    if raw.get("HTTP_TIMEOUT", 1) == 0:
        problems.append(Problem("E010", "HTTP_TIMEOUT must be more than 0.", "e.g. 5 (seconds for discovery and JWKS)"))
    fields = raw.get("USER_FIELDS", {})
    if not isinstance(fields, Mapping) or not all(isinstance(k, str) and k for k in fields):
        problems.append(Problem("E012", "USER_FIELDS must be a dict of user field -> claim.", "See docs/users.md."))
    else:
        for name in sorted(PROTECTED_FIELDS & set(fields)):
            problems.append(
                Problem("E012", f"USER_FIELDS may not write {name!r}.", "Admin flags: STAFF_ROLES, SUPERUSER_ROLES.")
            )
    for key in ("STAFF_ROLES", "SUPERUSER_ROLES"):
        roles = raw.get(key, ())
        if not isinstance(roles, str) and not (isinstance(roles, Sequence) and all(isinstance(r, str) for r in roles)):
            problems.append(Problem("E012", f"{key} must be a list of role names.", "See docs/users.md."))
    resource = raw.get("RESOURCE")
    if resource is not None and (not isinstance(resource, str) or not url_allowed(resource, allow_http)):
        problems.append(
            Problem(
                "E011",
                f"RESOURCE {resource!r} must be an https URL.",
                'Set it to this API\'s identifier, e.g. "https://api.example.com", or remove it.',
            )
        )
    return problems


def _build(raw: Mapping[str, Any]) -> Settings:
    from .claim_paths import resolve_claim_paths

    g = {k: raw.get(k, v) for k, v in GLOBAL_KEYS.items()}
    if raw.get("ISSUERS") is not None:
        entries = []
        for entry in raw["ISSUERS"]:
            merged = {k: raw[k] for k in ISSUER_KEYS if k in raw and k not in ("ISSUER", "JWKS_URL")}
            merged.update(entry)
            entries.append(merged)
    else:
        entries = [dict(raw)]
    issuers = []
    for entry in entries:
        aud = entry["AUDIENCE"]
        if aud is not None and g["RESOURCE"] and g["RESOURCE"] not in _as_tuple(aud):
            # RFC 8707: a token requested for this resource carries the resource URL as its audience.
            aud = (*_as_tuple(aud), g["RESOURCE"])
        types = entry.get("ALLOWED_TYPES")
        issuers.append(
            IssuerSettings(
                issuer=entry["ISSUER"],
                jwks_url=entry.get("JWKS_URL"),
                audience=None if aud is None else _as_tuple(aud),
                algorithms=_as_tuple(entry.get("ALGORITHMS", ISSUER_KEYS["ALGORITHMS"])),
                provider=entry.get("PROVIDER", "generic"),
                claims=resolve_claim_paths(entry.get("PROVIDER", "generic"), entry.get("CLAIMS", {})),
                required_claims=_as_tuple(entry.get("REQUIRED_CLAIMS", ISSUER_KEYS["REQUIRED_CLAIMS"])),
                allowed_types=None if types is None else _as_tuple(types),
                userinfo=bool(entry.get("USERINFO", False)),
                userinfo_url=entry.get("USERINFO_URL"),
            )
        )
    return Settings(
        issuers=tuple(issuers),
        leeway=float(g["LEEWAY"]),
        jwks_cache_alias=g["JWKS_CACHE_ALIAS"],
        jwks_cache_ttl=float(g["JWKS_CACHE_TTL"]),
        jwks_min_ttl=float(g["JWKS_MIN_TTL"]),
        jwks_max_ttl=float(g["JWKS_MAX_TTL"]),
        jwks_max_stale=float(g["JWKS_MAX_STALE"]),
        jwks_refresh_cooldown=float(g["JWKS_REFRESH_COOLDOWN"]),
        jwks_failure_backoff=float(g["JWKS_FAILURE_BACKOFF"]),
        jwks_max_bytes=int(g["JWKS_MAX_BYTES"]),
        http_timeout=float(g["HTTP_TIMEOUT"]),
        allow_insecure_http=bool(g["ALLOW_INSECURE_HTTP"]),
        max_token_bytes=int(g["MAX_TOKEN_BYTES"]),
        min_rsa_key_size=int(g["MIN_RSA_KEY_SIZE"]),
        token_cache_ttl=float(g["TOKEN_CACHE_TTL"]),
        token_cache_size=int(g["TOKEN_CACHE_SIZE"]),
        sync_users=bool(g["SYNC_USERS"]),
        realm=str(g["REALM"]),
        resource=g["RESOURCE"],
        resource_documentation=g["RESOURCE_DOCUMENTATION"],
        required_scopes=_as_tuple(g["REQUIRED_SCOPES"]),
        user_fields=dict(g["USER_FIELDS"]),
        link_by_verified_email=bool(g["LINK_BY_VERIFIED_EMAIL"]),
        staff_roles=frozenset(_as_tuple(g["STAFF_ROLES"])),
        superuser_roles=frozenset(_as_tuple(g["SUPERUSER_ROLES"])),
        sync_groups=bool(g["SYNC_GROUPS"]),
        user_cache_ttl=float(g["USER_CACHE_TTL"]),
        userinfo_cache_ttl=float(g["USERINFO_CACHE_TTL"]),
        user_local_cache_ttl=float(g["USER_LOCAL_CACHE_TTL"]),
        user_cache_alias=str(g["USER_CACHE_ALIAS"]),
        by_issuer={i.issuer: i for i in issuers},
        openapi_scheme=str(g["OPENAPI_SCHEME"]),
    )


_lock = threading.Lock()
_cached: Settings | None = None


def get_settings() -> Settings:
    """Return the validated settings, raising ImproperlyConfigured on the first error."""
    global _cached
    current = _cached
    if current is not None:
        return current
    with _lock:
        if _cached is None:
            from django.apps import apps
            from django.conf import settings as django_settings

            if apps.ready and not apps.is_installed("drf_oidc_jwks"):
                # Without the app its checks never ran and override_settings goes unseen: refuse to run half-set-up.
                from .checks import app_missing_message

                m = app_missing_message()
                raise ImproperlyConfigured(f"{m.id}: {m.msg} {m.hint}")
            raw = getattr(django_settings, SETTING_NAME, _UNSET)
            errors = [p for p in validate(raw) if p.error]
            if errors:
                raise ImproperlyConfigured("; ".join(f"drf_oidc_jwks.{p.id}: {p.msg} {p.hint}".strip() for p in errors))
            _cached = _build(raw)
        return _cached


#: What modules built from the settings (clients, memos, per-process copies): each registers its own reset,
#: so this module never needs to know them (DRF's settings module imports nothing of DRF either).
_resets: dict[str, Callable[[], None]] = {}


def register_reset(name: str, reset: Callable[[], None]) -> None:
    """Have :func:`reset_state` (and every settings change) call ``reset``; ``name`` keeps it registered once."""
    _resets[name] = reset


def reset_state() -> None:
    """Forget the cached settings and everything built from them in this process (settings changed, or tests)."""
    global _cached
    with _lock:
        _cached = None
    for reset in list(_resets.values()):
        reset()


def reload_settings(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget the cached settings and what was built from them."""
    if setting in (SETTING_NAME, "CACHES", "INSTALLED_APPS"):
        reset_state()
