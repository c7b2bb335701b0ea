"""``WWW-Authenticate`` challenges (RFC 6750, RFC 9470, RFC 9728) and a parser for RFC 9110's grammar.

Every parameter is sent as a quoted-string, escaped by :func:`quote`; ``error_description`` is first
narrowed to RFC 6750's character set and ``scope`` to its scope-tokens. Values come from the
configuration and the library's own descriptions, never from a token. Parameters go in a fixed order
with ``scope`` before ``error_description``, so even a client that scans with a regular expression
(the MCP Python SDK does) finds the real one first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

__all__ = [
    "Challenge",
    "bearer_challenge",
    "insufficient_scope_challenge",
    "step_up_challenge",
    "parse_challenges",
    "quote",
    "description_text",
    "scope_text",
    "required_scopes_for",
    "WELL_KNOWN",
    "metadata_url",
]

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def metadata_url(resource: str) -> str:
    """Where RFC 9728 puts the metadata of ``resource``: the well-known path, then the resource's path."""
    parts = urlsplit(resource)
    suffix = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN + suffix, "", ""))


_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NOT_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def quote(value: str) -> str:
    """Render ``value`` as an RFC 9110 quoted-string: ``\\`` and ``"`` escaped, controls and non-ASCII replaced."""
    # ASCII only: a header Django would have to MIME-encode is one no client parses as sent.
    text = _CTL.sub(" ", value).encode("ascii", "replace").decode("ascii")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def description_text(text: str) -> str:
    """Narrow a description to RFC 6750's ``error_description`` characters (printable ASCII, no ``"`` or ``\\``)."""
    return _NOT_DESCRIPTION.sub("?", text.replace('"', "'").replace("\\", "/"))


def scope_text(scopes: Iterable[str]) -> str:
    """Join the scopes RFC 6750 can carry (scope-tokens), in order, once each."""
    return " ".join(dict.fromkeys(s for s in scopes if isinstance(s, str) and _SCOPE_TOKEN.fullmatch(s)))


def bearer_challenge(
    realm: str,
    *,
    error: str | None = None,
    scope: Iterable[str] = (),
    acr_values: Iterable[str] = (),
    max_age: int | None = None,
    error_description: str | None = None,
    resource_metadata: str | None = None,
    scheme: str = "Bearer",
) -> str:
    """One challenge: ``Bearer realm="…", error="…", scope="…", …``; empty values are left out."""
    params: list[tuple[str, str]] = [("realm", realm)]
    if error:
        params.append(("error", error))
    scopes = scope_text(scope)
    if scopes:
        params.append(("scope", scopes))
    acr = scope_text(acr_values)  # acr values share the scope-token syntax (RFC 9470 section 3)
    if acr:
        params.append(("acr_values", acr))
    if max_age is not None:
        params.append(("max_age", str(int(max_age))))
    if error_description:
        params.append(("error_description", description_text(error_description)))
    if resource_metadata:
        params.append(("resource_metadata", resource_metadata))
    return scheme + " " + ", ".join(f"{name}={quote(value)}" for name, value in params)


def insufficient_scope_challenge(
    realm: str, scopes: Iterable[str], description: str, resource_metadata: str | None = None
) -> str:
    """The 403 challenge (RFC 6750 3.1): ``error="insufficient_scope"``, ``scope``, ``error_description``, metadata."""
    return bearer_challenge(
        realm,
        error="insufficient_scope",
        scope=scopes,
        error_description=description,
        resource_metadata=resource_metadata,
    )


def step_up_challenge(
    realm: str,
    acr_values: Iterable[str],
    max_age: int | None,
    description: str,
    resource_metadata: str | None = None,
) -> str:
    """The RFC 9470 challenge: ``error="insufficient_user_authentication"`` with ``acr_values`` and ``max_age``."""
    return bearer_challenge(
        realm,
        error="insufficient_user_authentication",
        acr_values=acr_values,
        max_age=max_age,
        error_description=description,
        resource_metadata=resource_metadata,
    )


# ---------------------------------------------------------------------------
# RFC 9110 section 11.6.1: WWW-Authenticate = #challenge


class Challenge(NamedTuple):
    """One parsed challenge: the scheme, its parameters (names lower-cased) or its token68."""

    scheme: str
    params: dict[str, str]
    token68: str | None = None


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_SCHEME_RE = re.compile(_TOKEN)
_PARAM_RE = re.compile(rf"({_TOKEN})[ \t]*=[ \t]*(?:({_TOKEN})|({_QUOTED}))")
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
_OWS_COMMAS = re.compile(r"[ \t,]*")
_OWS = re.compile(r"[ \t]*")


def _unquote(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value strictly; ValueError naming the position of the first error."""
    out: list[Challenge] = []
    pos = _OWS_COMMAS.match(header, 0).end()  # type: ignore[union-attr]  # matches the empty string
    while pos < len(header):
        scheme = _SCHEME_RE.match(header, pos)
        if scheme is None:
            raise ValueError(f"expected an auth-scheme at {pos}")
        pos = scheme.end()
        params: dict[str, str] = {}
        token68: str | None = None
        if pos < len(header) and header[pos] == " ":
            pos = _OWS.match(header, pos).end()  # type: ignore[union-attr]
            t68 = None if _PARAM_RE.match(header, pos) else _TOKEN68_RE.match(header, pos)
            if t68 is not None:
                token68, pos = t68.group(0), t68.end()
            else:
                pos = _parse_params(header, pos, params)
        elif pos < len(header) and header[pos] not in ", \t":
            raise ValueError(f"unexpected {header[pos]!r} after the auth-scheme at {pos}")
        out.append(Challenge(scheme.group(0), params, token68))
        pos = _OWS_COMMAS.match(header, pos).end()  # type: ignore[union-attr]
    return out


def _parse_params(header: str, pos: int, params: dict[str, str]) -> int:
    """Read ``#auth-param`` from ``pos`` until the next challenge or the end; return where it stopped."""
    while True:
        param = _PARAM_RE.match(header, pos)
        if param is None:
            if params or pos >= len(header) or header[pos] == ",":
                return pos  # the next challenge starts here (or an empty parameter list ends this one)
            raise ValueError(f"expected an auth-param or token68 at {pos}")
        name = param.group(1).lower()
        if name in params:
            raise ValueError(f"parameter {name!r} given twice in one challenge")
        params[name] = param.group(2) if param.group(2) is not None else _unquote(param.group(3))
        pos = _OWS.match(header, param.end()).end()  # type: ignore[union-attr]
        if pos >= len(header):
            return pos
        if header[pos] != ",":
            raise ValueError(f"expected ',' at {pos}")
        pos = _OWS_COMMAS.match(header, pos).end()  # type: ignore[union-attr]
        if pos >= len(header) or not _PARAM_RE.match(header, pos):
            return pos


# ---------------------------------------------------------------------------
# What the 401 names: the scopes the endpoint requires


def _scope_permissions(permission: Any, negated: bool = False) -> Iterable[Any]:
    from rest_framework.permissions import AND, NOT, OR

    # HasScope and its subclasses, known by the view attribute they read (importing permissions.py here
    # would make a cycle: its HasAuthLevel builds its challenge with this module).
    if getattr(type(permission), "view_attribute", None) == "required_scopes" and hasattr(permission, "get_required"):
        if not negated:
            yield permission
    elif isinstance(permission, (AND, OR)):
        # The stubs do not declare the operands DRF keeps on its composed permissions.
        yield from _scope_permissions(getattr(permission, "op1", None), negated)
        yield from _scope_permissions(getattr(permission, "op2", None), negated)
    elif isinstance(permission, NOT):
        # ``~HasScope("x")`` asks for the absence of x: asking the client for x would be wrong.
        yield from _scope_permissions(getattr(permission, "op1", None), not negated)


def required_scopes_for(request: Request, view: APIView | None, required_scopes: Sequence[str] = ()) -> tuple[str, ...]:
    """The scopes this request needs: ``REQUIRED_SCOPES``, then every scope the view's ``HasScope`` asks for here."""
    from django.core.exceptions import ImproperlyConfigured

    found = list(required_scopes)
    if view is None:
        return tuple(dict.fromkeys(found))
    try:
        permissions = view.get_permissions()
    except Exception:  # noqa: BLE001 - a challenge must be answered even when the view cannot build its permissions
        permissions = []
    for permission in permissions:
        for scope_permission in _scope_permissions(permission):
            try:
                requirement = scope_permission.get_required(request, view)
            except ImproperlyConfigured:
                continue  # the permission itself will refuse the request, with its own message
            found.extend(s for group in requirement for s in group)
    return tuple(dict.fromkeys(found))
