"""The ``DRF_OIDC_JWKS`` setting, validated and frozen into typed objects.

Settings are read in running code only, through :func:`get_settings`, whose
cache is cleared on Django's ``setting_changed`` signal so ``override_settings``
works. One walk of the table of keys (settings_keys.py) both judges and builds the
value: :func:`validate` feeds the system checks, :func:`get_settings` the first use
(system checks do not run under gunicorn), and both report the same problems.

This module is a leaf: it imports only Django and the package's dependency-free modules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .settings_keys import (
    ALL_KEYS,
    ENTRY_RULES,
    GLOBAL_KEYS,
    GLOBAL_TABLE,
    ISSUER_KEYS,
    ISSUER_TABLE,
    TABLE,
    IssuerSettings,
    Key,
    Settings,
    first_issuer,
    issuer_entries,
    merge_issuer_keys,
    resolver_only,
)
from .settings_opaque import opaque_issuer_problem
from .settings_values import (
    PROTECTED_FIELDS,
    PROVIDERS,
    SUPPORTED_ALGORITHMS,
    Context,
    InvalidSettingError,
    Problem,
    closest,
    is_loopback_host,
    url_allowed,
)

__all__ = [
    "ALL_KEYS",
    "APP_MISSING",
    "GLOBAL_KEYS",
    "ISSUER_KEYS",
    "PROTECTED_FIELDS",
    "PROVIDERS",
    "SETTING_NAME",
    "SUPPORTED_ALGORITHMS",
    "TABLE",
    "UNSET",
    "IssuerSettings",
    "Problem",
    "Settings",
    "build",
    "first_issuer",
    "get_settings",
    "is_loopback_host",
    "merge_issuer_keys",
    "parse",
    "parse_issuer",
    "raw_setting",
    "register_reset",
    "reload_settings",
    "reset_state",
    "url_allowed",
    "validate",
]

SETTING_NAME = "DRF_OIDC_JWKS"
APP = "drf_oidc_jwks"
AUTH_CLASS = "drf_oidc_jwks.authentication.JWKSAuthentication"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: What :func:`raw_setting` returns when the project has no ``DRF_OIDC_JWKS`` at all.
UNSET: Any = _Unset()

#: E022: the system check and the first use say the same (the app is what registers checks and reloads).
APP_MISSING = Problem(
    "E022",
    f"{AUTH_CLASS} is used but {APP!r} is not in INSTALLED_APPS: its system checks, settings reload "
    "(override_settings) and user models are missing.",
    f'Add "{APP}" to INSTALLED_APPS (after "rest_framework").',
)


def raw_setting() -> Any:
    """The project's ``DRF_OIDC_JWKS`` value as written (``UNSET`` when absent)."""
    from django.conf import settings

    return getattr(settings, SETTING_NAME, UNSET)


def _caches() -> Mapping[str, Any] | None:
    from django.conf import settings

    caches = getattr(settings, "CACHES", None) if settings.configured else None
    return caches if isinstance(caches, Mapping) else None


def _shape(raw: Any) -> list[Problem]:
    """E001 for a missing or non-dict value, E002 for every unknown key (top level and ISSUERS entries)."""
    if raw is UNSET or raw is None:
        example = '{"ISSUER": "https://auth.example.com", "AUDIENCE": "https://api.example.com"}'
        return [
            Problem(
                "E001", f"The {SETTING_NAME} setting is missing.", f"Add {SETTING_NAME} = {example} to your settings."
            )
        ]
    if not isinstance(raw, Mapping):
        return [Problem("E001", f"{SETTING_NAME} must be a dict.", "Give it a dict of UPPER_CASE keys.")]
    problems = [
        Problem("E002", f"{SETTING_NAME} has an unknown key {k!r}.", f"Remove it.{closest(k, list(ALL_KEYS))}")
        for k in raw
        if k not in ALL_KEYS
    ]
    entries = raw.get("ISSUERS")
    for i, entry in enumerate(entries if isinstance(entries, (list, tuple)) else ()):
        for k in entry if isinstance(entry, Mapping) else ():
            if k not in ISSUER_KEYS:
                hint = "Per-issuer keys: " + ", ".join(ISSUER_KEYS) + "." + closest(k, list(ISSUER_KEYS))
                problems.append(Problem("E002", f"ISSUERS[{i}] has a key {k!r} that is not per-issuer.", hint))
    return problems


def _walk(
    table: tuple[Key, ...], raw: Mapping[str, Any], parsed: dict[str, Any], where: str | None
) -> tuple[dict[str, Any], list[Problem]]:
    """Parse every key of ``table`` from ``raw`` (its default when absent); ``parsed`` gains each built value."""
    caches = _caches()
    built: dict[str, Any] = {}
    problems: list[Problem] = []
    for k in table:
        try:
            value = k.parse(raw.get(k.name, k.default), Context(k.name, k.default, parsed, caches))
        except InvalidSettingError as exc:
            problems.extend(_at(where, p) for p in exc.problems)
            continue
        parsed[k.name] = built[k.name] = value
        warning = k.warn(value) if k.warn else None
        if warning is not None:
            problems.append(_at(where, warning))
    return built, problems


def _at(where: str | None, p: Problem) -> Problem:
    """Say which issuer a problem is about: "ISSUERS[1] has no ISSUER.", "DRF_OIDC_JWKS: ALGORITHMS ..."."""
    if not where:
        return p
    # A message starting in lower case continues the sentence after the place ("has no AUDIENCE.").
    joint = " " if p.msg[:1].islower() else ": "
    return Problem(p.id, where + joint + p.msg, p.hint, p.error)


def parse(raw: Any) -> tuple[list[Problem], Settings | None]:
    """Judge and build ``raw`` in one walk: every problem, and the settings when none is an error."""
    problems = _shape(raw)
    if not isinstance(raw, Mapping):
        return problems, None
    top, found = _walk(GLOBAL_TABLE, raw, {}, None)
    problems += found
    issuers: list[IssuerSettings] = []
    seen: set[str] = set()
    if resolver_only(raw):  # ISSUER_RESOLVER alone: the per-issuer keys given here are what answers inherit
        problems += _walk(tuple(k for k in ISSUER_TABLE if k.name in raw), raw, dict(top), None)[1]
    for where, entry in issuer_entries(raw) if "ISSUERS" in top and not resolver_only(raw) else ():
        values, found = _walk(ISSUER_TABLE, entry, dict(top), where)
        problems += found
        if values.get("ISSUER") in seen:
            msg = f"{where}: issuer {values['ISSUER']!r} is configured twice."
            problems.append(Problem("E003", msg, "Keep one entry per issuer."))
        seen.add(values.get("ISSUER", ""))
        if all(k.name in values for k in ISSUER_TABLE):
            problems += [p for rule in ENTRY_RULES for p in rule(values, where)]
            issuers.append(IssuerSettings(**{k.attr: values[k.name] for k in ISSUER_TABLE}))
    if "OPAQUE_TOKEN_ISSUER" in top:  # opaque tokens need one issuer to be introspected at
        found_opaque = opaque_issuer_problem(top["OPAQUE_TOKEN_ISSUER"], [i.issuer for i in issuers if i.introspection])
        problems += [found_opaque] if found_opaque else []
    if any(p.error for p in problems):
        return problems, None
    kwargs = {k.attr: top[k.name] for k in GLOBAL_TABLE}
    kwargs.update(issuers=tuple(issuers), by_issuer={i.issuer: i for i in issuers if "{tenant}" not in i.issuer})
    return problems, Settings(**kwargs)


def parse_issuer(raw: Mapping[str, Any], entry: Any, where: str = "ISSUER_RESOLVER") -> IssuerSettings:
    """Build one issuer's settings (an ``ISSUER_RESOLVER`` answer) exactly like an ``ISSUERS`` entry of ``raw``.

    ImproperlyConfigured names every error (and the key); warnings are left out.
    """
    if not isinstance(entry, Mapping):
        raise ImproperlyConfigured(f"drf_oidc_jwks.E003: {where} gave a {type(entry).__name__}, not a dict.")
    problems = [
        Problem("E002", f"{where} has a key {k!r} that is not per-issuer.", closest(k, list(ISSUER_KEYS)).strip())
        for k in entry
        if k not in ISSUER_KEYS
    ]
    top = _walk(GLOBAL_TABLE, raw, {}, None)[0]
    values, found = _walk(ISSUER_TABLE, merge_issuer_keys(raw, entry), dict(top), where)
    problems += found
    if all(k.name in values for k in ISSUER_TABLE):
        problems += [p for rule in ENTRY_RULES for p in rule(values, where)]
    errors = [p for p in problems if p.error]
    if errors:
        raise _refusal(errors)
    return IssuerSettings(**{k.attr: values[k.name] for k in ISSUER_TABLE})


def validate(raw: Any) -> list[Problem]:
    """Return every problem with the ``DRF_OIDC_JWKS`` value ``raw`` (empty when fine)."""
    return parse(raw)[0]


def _refusal(problems: list[Problem]) -> ImproperlyConfigured:
    return ImproperlyConfigured("; ".join(f"drf_oidc_jwks.{p.id}: {p.msg} {p.hint}".strip() for p in problems))


def build(raw: Any) -> Settings:
    """Build the settings from ``raw``, raising ImproperlyConfigured naming every error."""
    problems, built = parse(raw)
    if built is None:
        raise _refusal([p for p in problems if p.error])
    return built


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

            if apps.ready and not apps.is_installed(APP):
                # Without the app its checks never ran and override_settings goes unseen: refuse to run half-set-up.
                raise _refusal([APP_MISSING])
            _cached = build(raw_setting())
        return _cached


#: What modules built from the settings (clients, memos, per-process copies): each registers its own reset,
#: so this module never needs to know them (DRF's settings module imports nothing of DRF either).
_resets: dict[str, Callable[[], None]] = {}
#: Django setting -> the names of the resets that also depend on it (``register_reset``'s ``django_settings``).
_resets_on: dict[str, set[str]] = {}


def register_reset(name: str, reset: Callable[[], None], *, django_settings: Iterable[str] = ()) -> None:
    """Have :func:`reset_state` (and every settings change) call ``reset``; ``name`` keeps it registered once.

    ``django_settings``: other Django settings ``reset`` depends on; a change of one of them calls it too.
    """
    _resets[name] = reset
    for setting in django_settings:
        _resets_on.setdefault(setting, set()).add(name)


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
        return
    for name in _resets_on.get(setting, ()):
        _resets[name]()
