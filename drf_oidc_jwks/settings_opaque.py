"""Parsers of the opaque-token and revocation keys (``INTROSPECTION``, ``OPAQUE_TOKEN_ISSUER``).

Part of the settings table (settings_keys.py), and as dependency-free: the standard library and
settings_values only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import settings_values as v

INTROSPECTION_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
#: Defaults of the keys of one issuer's ``INTROSPECTION`` dict.
INTROSPECTION_DEFAULTS: dict[str, Any] = {
    "CLIENT_ID": None,
    "CLIENT_SECRET": None,
    "AUTH_METHOD": "client_secret_basic",
    "URL": None,
    "CACHE_TTL": 60,
    "INACTIVE_CACHE_TTL": 10,
    "REQUIRE_AUDIENCE": True,
    "MAX_RATE": 20,
    "FOR_JWTS": False,
}


class SecretSetting(Mapping[str, Any]):
    """A read-only settings dict whose repr hides ``CLIENT_SECRET`` (settings end up in logs and tracebacks)."""

    def __init__(self, value: Mapping[str, Any]) -> None:
        self._value = dict(value)

    def __getitem__(self, key: str) -> Any:
        return self._value[key]

    def __iter__(self) -> Any:
        return iter(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "CLIENT_SECRET" else v) for k, v in self._value.items()}
        return f"{type(self).__name__}({shown!r})"


def _introspection_problems(value: Mapping[Any, Any], allow_http: bool) -> list[v.Problem]:
    found = [
        v.Problem(
            "E002",
            f"INTROSPECTION has an unknown key {k!r}.",
            "Remove it." + v.closest(k, list(INTROSPECTION_DEFAULTS)),
        )
        for k in value
        if k not in INTROSPECTION_DEFAULTS
    ]
    for key in ("CLIENT_ID", "CLIENT_SECRET"):
        if not isinstance(value.get(key), str) or not value.get(key):
            # Never the value: it may be the secret.
            found.append(
                v.Problem("E013", f"INTROSPECTION[{key!r}] must be a non-empty string.", "See docs/opaque-tokens.md.")
            )
    if value.get("AUTH_METHOD", "client_secret_basic") not in INTROSPECTION_AUTH_METHODS:
        methods = ", ".join(INTROSPECTION_AUTH_METHODS)
        found.append(
            v.Problem(
                "E013", f"INTROSPECTION['AUTH_METHOD'] must be one of {methods}.", "The default is client_secret_basic."
            )
        )
    endpoint = value.get("URL")
    if endpoint is not None and not (isinstance(endpoint, str) and v.url_allowed(endpoint, allow_http)):
        msg = "INTROSPECTION['URL'] must be an https URL (http for loopback hosts only)."
        found.append(v.Problem("E005", msg, "Remove it to use discovery's introspection_endpoint."))
    for key in ("CACHE_TTL", "INACTIVE_CACHE_TTL", "MAX_RATE"):
        number = value.get(key, INTROSPECTION_DEFAULTS[key])
        if not (isinstance(number, (int, float)) and not isinstance(number, bool) and 0 <= number <= v.MAX_SECONDS):
            found.append(
                v.Problem(
                    "E010",
                    f"INTROSPECTION[{key!r}] must be a number >= 0.",
                    f"The default is {INTROSPECTION_DEFAULTS[key]}.",
                )
            )
    for key in ("REQUIRE_AUDIENCE", "FOR_JWTS"):
        if not isinstance(value.get(key, INTROSPECTION_DEFAULTS[key]), bool):
            found.append(
                v.Problem(
                    "E013",
                    f"INTROSPECTION[{key!r}] must be True or False.",
                    f"The default is {INTROSPECTION_DEFAULTS[key]}.",
                )
            )
    return found


def introspection(value: Any, ctx: v.Context) -> SecretSetting | None:
    """None, or one issuer's ``INTROSPECTION`` dict (client credentials, endpoint, caching, flood bound)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise v.fail("E013", "INTROSPECTION must be a dict or None.", "See docs/opaque-tokens.md.")
    found = _introspection_problems(value, ctx.parsed.get("ALLOW_INSECURE_HTTP") is True)
    if found:
        raise v.InvalidSettingError(*found)
    return SecretSetting(value)


def text(value: Any, ctx: v.Context) -> str:
    """A non-empty string."""
    if isinstance(value, str) and value:
        return value
    raise v.fail("E013", f"{ctx.name} must be a non-empty string, not {value!r}.", "See docs/settings.md.")


def opaque_issuer_problem(chosen: str | None, introspecting: Sequence[str]) -> v.Problem | None:
    """E025: opaque tokens have no single issuer to be introspected at."""
    if chosen is None and len(introspecting) <= 1:
        return None
    if chosen is not None and chosen in introspecting:
        return None
    if chosen is None:
        msg = f"{len(introspecting)} issuers have INTROSPECTION and OPAQUE_TOKEN_ISSUER is not set."
    else:
        msg = f"OPAQUE_TOKEN_ISSUER {chosen!r} names no issuer with INTROSPECTION."
    names = ", ".join(map(repr, introspecting)) or "none"
    return v.Problem(
        "E025", msg, f"Set OPAQUE_TOKEN_ISSUER to the issuer opaque tokens come from (with INTROSPECTION: {names})."
    )
