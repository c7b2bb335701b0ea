"""System checks, ids ``drf_oidc_jwks.E0nn`` (errors) and ``drf_oidc_jwks.W0nn`` (warnings).

The ``DRF_OIDC_JWKS`` value itself is judged by :func:`drf_oidc_jwks.conf.validate`, which
first use runs too (system checks do not run under gunicorn). The checks defined here look at
the rest of the project: the cache holding the JWKS, ``INSTALLED_APPS`` and DRF's settings.
Every id, its meaning and its fix are listed in :data:`CHECK_IDS` and in docs/checks.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from .conf import _UNSET, GLOBAL_KEYS, SETTING_NAME, validate

#: Every check id with what it reports: stable, documented in docs/checks.md, one meaning each.
CHECK_IDS: dict[str, str] = {
    "E001": "DRF_OIDC_JWKS is missing or not a dict",
    "E002": "DRF_OIDC_JWKS (or an ISSUERS entry) has an unknown key",
    "E003": "ISSUERS is not a non-empty list of dicts, or names an issuer twice",
    "E004": "an issuer has no ISSUER",
    "E005": "ISSUER or JWKS_URL is not https (http only for loopback hosts or with ALLOW_INSECURE_HTTP)",
    "E006": "AUDIENCE is missing or not a string, a list of strings or None",
    "E007": "ALGORITHMS is empty, holds none/HMAC, or an unsupported algorithm",
    "E008": "PROVIDER is not a known preset",
    "E009": "CLAIMS is not a dict or has a key that is not a Claims attribute",
    "E010": "a numeric setting is not a number >= 0 (HTTP_TIMEOUT > 0)",
    "E011": "RESOURCE is not an https URL",
    "E012": "USER_FIELDS, STAFF_ROLES or SUPERUSER_ROLES has the wrong shape",
    "E020": "JWKS_CACHE_ALIAS names no entry of CACHES",
    "E021": "the JWKS cache is a DummyCache, which stores nothing",
    "E022": "JWKSAuthentication is configured but drf_oidc_jwks is not in INSTALLED_APPS",
    "E023": "OPENAPI_SCHEME is neither 'openIdConnect' nor 'bearer'",
    "W001": "AUDIENCE is None: tokens of the issuer for any audience are accepted",
    "W020": "the JWKS cache is a per-process LocMemCache while DEBUG is False",
    "W021": "LEEWAY is over 300 seconds",
    "W022": "JWKS_REFRESH_COOLDOWN is 0: every unknown kid refetches the JWKS",
}

_APP = "drf_oidc_jwks"
_AUTH_CLASS = "drf_oidc_jwks.authentication.JWKSAuthentication"
_DUMMY = "django.core.cache.backends.dummy.DummyCache"
_LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
OPENAPI_SCHEMES = ("openIdConnect", "bearer")


def _message(code: str, msg: str, hint: str, *, error: bool = True) -> checks.CheckMessage:
    cls = checks.Error if error else checks.Warning
    return cls(msg, hint=hint or None, id=f"drf_oidc_jwks.{code}")


def _raw() -> Any:
    return getattr(settings, SETTING_NAME, _UNSET)


def _global(raw: Any, key: str) -> Any:
    return raw.get(key, GLOBAL_KEYS[key]) if isinstance(raw, Mapping) else GLOBAL_KEYS[key]


def _is_backend(backend: Any, path: str) -> bool:
    """Say whether the ``BACKEND`` value is ``path`` or a subclass of it (an import failure is Django's to report)."""
    if backend == path:
        return True
    try:
        cls = import_string(backend) if isinstance(backend, str) else backend
        return isinstance(cls, type) and issubclass(cls, import_string(path))
    except ImportError:
        return False


@checks.register(_APP)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report every problem of ``DRF_OIDC_JWKS`` with a hint that says the fix."""
    raw = _raw()
    messages = [_message(p.id, p.msg, p.hint, error=p.error) for p in validate(raw)]
    if not isinstance(raw, Mapping):
        return messages
    scheme = raw.get("OPENAPI_SCHEME", GLOBAL_KEYS.get("OPENAPI_SCHEME", "openIdConnect"))
    if scheme not in OPENAPI_SCHEMES:
        messages.append(
            _message(
                "E023",
                f"OPENAPI_SCHEME is {scheme!r}.",
                'Use "openIdConnect" (the schema points at the issuer\'s discovery document) or "bearer" '
                "(Swagger UI asks for a pasted token).",
            )
        )
    leeway = raw.get("LEEWAY", GLOBAL_KEYS["LEEWAY"])
    if isinstance(leeway, (int, float)) and not isinstance(leeway, bool) and leeway > 300:
        messages.append(
            _message(
                "W021",
                f"LEEWAY is {leeway:g} seconds: expired tokens stay accepted that long.",
                "Fix the clocks (NTP) instead; 30 to 60 seconds absorbs ordinary drift.",
                error=False,
            )
        )
    if raw.get("JWKS_REFRESH_COOLDOWN", GLOBAL_KEYS["JWKS_REFRESH_COOLDOWN"]) == 0:
        messages.append(
            _message(
                "W022",
                "JWKS_REFRESH_COOLDOWN is 0: every token with an unknown kid makes a request to the identity provider.",
                "Keep the default of 60 seconds: a rotated key is still picked up by its first token.",
                error=False,
            )
        )
    return messages


@checks.register(_APP, checks.Tags.caches)
def check_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report a JWKS cache alias that is missing, stores nothing, or is private to each process."""
    alias = _global(_raw(), "JWKS_CACHE_ALIAS")
    caches_setting = getattr(settings, "CACHES", {}) or {}
    if not isinstance(alias, str) or alias not in caches_setting:
        known = ", ".join(repr(a) for a in caches_setting) or "none"
        return [
            _message(
                "E020",
                f"JWKS_CACHE_ALIAS {alias!r} is not an entry of CACHES (entries: {known}).",
                f'Add CACHES[{alias!r}], or set "JWKS_CACHE_ALIAS" in {SETTING_NAME} to one of the existing entries.',
            )
        ]
    backend = caches_setting[alias].get("BACKEND") if isinstance(caches_setting[alias], Mapping) else None
    if _is_backend(backend, _DUMMY):
        return [
            _message(
                "E021",
                f"The JWKS cache CACHES[{alias!r}] is a DummyCache: every request would fetch the JWKS again.",
                "Point JWKS_CACHE_ALIAS at a real cache: Redis or Memcached in production, LocMemCache in development.",
            )
        ]
    if _is_backend(backend, _LOCMEM) and not settings.DEBUG:
        return [
            _message(
                "W020",
                f"The JWKS cache CACHES[{alias!r}] is a LocMemCache: each worker process fetches its own copy.",
                "Use Redis or Memcached (django.core.cache.backends.redis.RedisCache) so all workers and hosts share "
                "one copy, one fetch and one refresh cooldown; a single-process deployment may silence "
                "drf_oidc_jwks.W020.",
                error=False,
            )
        ]
    return []


def _configures_authentication() -> bool:
    """Say whether DRF's DEFAULT_AUTHENTICATION_CLASSES holds JWKSAuthentication or a subclass."""
    from .authentication import JWKSAuthentication

    drf = getattr(settings, "REST_FRAMEWORK", None) or {}
    classes = drf.get("DEFAULT_AUTHENTICATION_CLASSES", ()) if isinstance(drf, Mapping) else ()
    for entry in classes:
        if entry == _AUTH_CLASS:
            return True
        try:
            cls = import_string(entry) if isinstance(entry, str) else entry
        except ImportError:
            continue  # DRF itself reports an unimportable class
        if isinstance(cls, type) and issubclass(cls, JWKSAuthentication):
            return True
    return False


@checks.register(_APP)
def check_installed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report JWKSAuthentication in DRF's defaults while the app is not installed.

    Registered from here, this runs whenever the module was imported; the same
    problem also fails the first verification (``conf.get_settings``), which is
    what a project without the app actually meets.
    """
    from django.apps import apps

    if apps.is_installed(_APP) or not _configures_authentication():
        return []
    return [app_missing_message()]


def app_missing_message() -> checks.CheckMessage:
    """The E022 message (also raised at first use as ImproperlyConfigured)."""
    return _message(
        "E022",
        f"{_AUTH_CLASS} is used but {_APP!r} is not in INSTALLED_APPS: its system checks, settings reload "
        "(override_settings) and user models are missing.",
        f'Add "{_APP}" to INSTALLED_APPS (after "rest_framework").',
    )


def run_all() -> list[checks.CheckMessage]:
    """Run every drf-oidc-jwks check now (for ``manage.py oidc_check``)."""
    return [*check_installed(), *check_settings(), *check_cache()]
