"""Audience comparison by the MCP canonical URI rule: scheme and host case-insensitive, the rest exact.

``https://API.example.com/mcp`` and ``https://api.example.com/mcp`` name one resource; ``/mcp`` and
``/mcp/`` do not, and neither do two ports (no default port is filled in). An audience that is not an
absolute http(s) URI (a client id, a URN) is compared as an exact string.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["canonical_uri", "audience_matches", "any_audience_matches"]


def canonical_uri(value: str) -> tuple[str, str, int | None, str, str] | None:
    """Return the compared parts of an absolute http(s) URI, or None when ``value`` is not one."""
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if "@" in parts.netloc or parts.fragment:
        return None  # user info or a fragment: no resource identifier has one (RFC 8707 section 2)
    try:
        port = parts.port
    except ValueError:
        return None
    # urlsplit lower-cases hostname already; the scheme is lower-cased here.
    return parts.scheme.lower(), parts.hostname, port, parts.path, parts.query


def audience_matches(aud: object, expected: str) -> bool:
    """Say whether the token's audience value ``aud`` names the ``expected`` audience."""
    if not isinstance(aud, str):
        return False
    if aud == expected:
        return True
    left = canonical_uri(aud)
    return left is not None and left == canonical_uri(expected)


def any_audience_matches(values: Iterable[object], expected: Iterable[str]) -> bool:
    """Say whether any of the token's audiences names any expected audience."""
    wanted = tuple(expected)
    return any(audience_matches(value, e) for value in values for e in wanted)
