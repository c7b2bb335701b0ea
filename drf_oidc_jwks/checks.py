"""System checks, ids ``drf_oidc_jwks.E0nn`` (errors) and ``drf_oidc_jwks.W0nn`` (warnings).

The ``DRF_OIDC_JWKS`` value itself is judged by :func:`drf_oidc_jwks.conf.validate`, the same walk of the
table of keys that first use runs (system checks do not run under gunicorn). The checks defined here add
what only the project around it can tell: the kind of cache holding the JWKS and ``INSTALLED_APPS``.
They are registered by :func:`register` from ``apps.ready``; :func:`require_app` is called by
authentication.py at import, so a project that forgot the app still meets E022.
Every id, its meaning and its fix are listed in :data:`CHECK_IDS` and in docs/checks.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import issuer_lookup  # noqa: F401 - registers the {tenant} rules (E015, W002) with the settings walk
from .conf import APP, APP_MISSING, AUTH_CLASS, Problem, raw_setting, validate

#: Every check id with what it reports: stable, documented in docs/checks.md, one meaning each.
CHECK_IDS: dict[str, str] = {
    "E001": "DRF_OIDC_JWKS is missing or not a dict",
    "E002": "DRF_OIDC_JWKS (or an ISSUERS entry) has an unknown key",
    "E003": "ISSUERS is not a non-empty list of dicts, or names an issuer twice",
    "E004": "an issuer has no ISSUER",
    "E005": "ISSUER, JWKS_URL, USERINFO_URL or INTROSPECTION URL is not https (http: loopback or ALLOW_INSECURE_HTTP)",
    "E006": "AUDIENCE is missing or not a string, a list of strings or None",
    "E007": "ALGORITHMS is empty, holds none/HMAC, or an unsupported algorithm",
    "E008": "PROVIDER is not a known preset",
    "E009": "CLAIMS is not a dict or has a key that is not a Claims attribute",
    "E010": "a numeric setting is not a finite number >= 0 (HTTP_TIMEOUT > 0), or a size is not a whole number",
    "E011": "RESOURCE is not an https URL",
    "E012": "USER_FIELDS, STAFF_ROLES or SUPERUSER_ROLES has the wrong shape",
    "E013": "a boolean, string or list-of-strings setting has the wrong type",
    "E014": "DPOP is not 'allowed', 'required' or 'off', or DPOP_ALGORITHMS holds none/HMAC or an unknown algorithm",
    "E015": "a {tenant} ISSUER cannot be matched safely (TENANTS, TENANT_CLAIM or JWKS_URL wrong for it)",
    "E016": "SCOPE_HIERARCHY is malformed or has a cycle, or SCOPES_SUPPORTED names offline_access",
    "E020": "JWKS_CACHE_ALIAS names no entry of CACHES",
    "E021": "the JWKS cache is a DummyCache, which stores nothing",
    "E022": "JWKSAuthentication is configured but drf_oidc_jwks is not in INSTALLED_APPS",
    "E023": "OPENAPI_SCHEME is neither 'openIdConnect' nor 'bearer'",
    "E024": "USER_CACHE_ALIAS names no entry of CACHES",
    "E025": "several issuers have INTROSPECTION and OPAQUE_TOKEN_ISSUER is unset, or it names none of them",
    "E026": "DPOP_NONCE is True but DPoPNonceMiddleware is not in MIDDLEWARE",
    "E027": "ISSUER_RESOLVER cannot be imported, or is not callable",
    "W001": "AUDIENCE is None: tokens of the issuer for any audience are accepted",
    "W002": 'TENANTS is "*": tokens of every tenant of that identity provider are accepted',
    "W020": "the JWKS cache is a per-process LocMemCache while DEBUG is False",
    "W021": "LEEWAY is over 300 seconds",
    "W022": "JWKS_REFRESH_COOLDOWN is 0: every unknown kid refetches the JWKS",
}

_DUMMY = "django.core.cache.backends.dummy.DummyCache"
_LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
_MIDDLEWARE = "drf_oidc_jwks.middleware.DPoPNonceMiddleware"
# The same caches hold the DPoP replay store: said where DPoP is answered (DPOP not "off").
_DPOP_DUMMY = ' DPoP is answered, and this cache forgets used proofs: every replayed proof passes (or "DPOP": "off").'
_DPOP_LOCMEM = " DPoP is answered: a proof used on one worker would be accepted again by each other worker."


def _message(problem: Problem) -> checks.CheckMessage:
    cls = checks.Error if problem.error else checks.Warning
    return cls(problem.msg, hint=problem.hint or None, id=f"drf_oidc_jwks.{problem.id}")


def _is_backend(backend: Any, path: str) -> bool:
    """Say whether the ``BACKEND`` value is ``path`` or a subclass of it (an import failure is Django's to report)."""
    if backend == path:
        return True
    try:
        cls = import_string(backend) if isinstance(backend, str) else backend
        return isinstance(cls, type) and issubclass(cls, import_string(path))
    except ImportError:
        return False


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report every problem of ``DRF_OIDC_JWKS`` with a hint that says the fix (what first use refuses)."""
    return [_message(p) for p in validate(raw_setting())]


def check_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report a JWKS cache that stores nothing, or is private to each process (a missing alias is E020)."""
    raw = raw_setting()
    alias = raw.get("JWKS_CACHE_ALIAS", "default") if isinstance(raw, Mapping) else "default"
    caches_setting = getattr(settings, "CACHES", {}) or {}
    entry = caches_setting.get(alias) if isinstance(alias, str) and isinstance(caches_setting, Mapping) else None
    backend = entry.get("BACKEND") if isinstance(entry, Mapping) else None
    if _is_backend(backend, _DUMMY):
        problem = Problem(
            "E021",
            f"The JWKS cache CACHES[{alias!r}] is a DummyCache: every request would fetch the JWKS again.",
            "Point JWKS_CACHE_ALIAS at a real cache: Redis or Memcached in production, LocMemCache in development."
            + _DPOP_DUMMY * (_dpop_settings() is not None),
        )
        return [_message(problem)]
    if _is_backend(backend, _LOCMEM) and not settings.DEBUG:
        problem = Problem(
            "W020",
            f"The JWKS cache CACHES[{alias!r}] is a LocMemCache: each worker process fetches its own copy.",
            "Use Redis or Memcached (django.core.cache.backends.redis.RedisCache) so all workers and hosts share "
            "one copy, one fetch and one refresh cooldown; a single-process deployment may silence "
            "drf_oidc_jwks.W020." + _DPOP_LOCMEM * (_dpop_settings() is not None),
            error=False,
        )
        return [_message(problem)]
    return []


def _dpop_settings() -> Any:
    """The built settings when some issuer answers DPoP, else None (a broken value is check_settings' to report)."""
    from .conf import get_settings

    try:
        parsed = get_settings()
    except ImproperlyConfigured:
        return None
    return parsed if any(i.dpop != "off" for i in parsed.issuers) else None


def check_dpop(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report ``DPOP_NONCE`` without the middleware that hands nonces out (the cache kinds are check_cache's)."""
    parsed = _dpop_settings()
    if parsed is None or not parsed.dpop_nonce or _MIDDLEWARE in (getattr(settings, "MIDDLEWARE", None) or ()):
        return []
    problem = Problem(
        "E026",
        "DPOP_NONCE is True but DPoPNonceMiddleware is not in MIDDLEWARE: no client would ever get a nonce.",
        f'Add "{_MIDDLEWARE}" to MIDDLEWARE.',
    )
    return [_message(problem)]


def _is_our_class(entry: Any) -> bool:
    """Say whether a DEFAULT_AUTHENTICATION_CLASSES entry is JWKSAuthentication or a subclass of it."""
    if entry == AUTH_CLASS:
        return True
    try:
        cls = import_string(entry) if isinstance(entry, str) else entry
    except ImportError:
        return False  # DRF itself reports an unimportable class
    # By name, not issubclass: this module must not import authentication.py (which imports it).
    return isinstance(cls, type) and any(f"{c.__module__}.{c.__qualname__}" == AUTH_CLASS for c in cls.__mro__)


def check_installed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report JWKSAuthentication in DRF's defaults while the app is not installed.

    Registered both from ``apps.ready`` and by :func:`require_app` (the app's own ready never runs
    without the app); first use (``conf.get_settings``) refuses the same way.
    """
    from django.apps import apps

    drf = getattr(settings, "REST_FRAMEWORK", None) or {}
    classes = drf.get("DEFAULT_AUTHENTICATION_CLASSES", ()) if isinstance(drf, Mapping) else ()
    if apps.is_installed(APP) or not any(_is_our_class(entry) for entry in classes):
        return []
    return [_message(APP_MISSING)]


def require_app() -> None:
    """Called when authentication.py is imported: refuse a project without the app, or have checks see it.

    Imported once apps are ready (DRF loading its authentication classes, typically through the URL
    checks of ``manage.py check`` or the first request): raise E022 with the fix. Imported earlier:
    register :func:`check_installed`, so ``manage.py check`` reports E022.
    """
    from django.apps import apps

    if not apps.ready:
        checks.register(check_installed, APP, checks.Tags.security)
    elif not apps.is_installed(APP):
        raise ImproperlyConfigured(f"drf_oidc_jwks.{APP_MISSING.id}: {APP_MISSING.msg} {APP_MISSING.hint}")


def register() -> None:
    """Register every check (from ``apps.ready``); the security-relevant ones carry ``Tags.security``."""
    checks.register(check_installed, APP, checks.Tags.security)
    checks.register(check_settings, APP, checks.Tags.security)
    checks.register(check_cache, APP, checks.Tags.caches)
    checks.register(check_dpop, APP, checks.Tags.security)


def run_all() -> list[checks.CheckMessage]:
    """Run every drf-oidc-jwks check now (for ``manage.py oidc_check``)."""
    return [*check_installed(), *check_settings(), *check_cache(), *check_dpop()]


__all__ = ["CHECK_IDS", "check_cache", "check_dpop", "check_installed", "check_settings", "register", "require_app"]
