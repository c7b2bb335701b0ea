"""What each ``DRF_OIDC_JWKS`` value may be: parsers returning the built value or raising InvalidSettingError.

Dependency-free (the standard library and claim_paths only), so the settings stay a leaf of the package.
A parser never coerces: a value builds to exactly what was given (a list becomes a tuple, one string a
one-item tuple) or is refused with a check id, a message naming the key and a hint that says the fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .claim_paths import CLAIM_ATTRIBUTES, resolve_claim_paths

#: Asymmetric JWS algorithms this library can verify.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
PROVIDERS = ("generic", "better-auth", "auth0", "okta", "keycloak", "entra", "cognito")
OPENAPI_SCHEMES = ("openIdConnect", "bearer")
#: ``DPOP`` per issuer: DPoP accepted beside Bearer, required, or not answered (docs/dpop.md).
DPOP_MODES = ("allowed", "required", "off")

#: User fields the token may never write: local deactivation, passwords and the primary key stay
#: local; staff and superuser flags only through STAFF_ROLES / SUPERUSER_ROLES.
PROTECTED_FIELDS = frozenset({"password", "is_active", "last_login", "date_joined", "is_staff", "is_superuser"})

#: Ten years: a longer TTL or timeout is a mistake, and huge numbers overflow socket and cache timeouts.
MAX_SECONDS = 10 * 365 * 86400
#: 2 GiB, two billion entries: a larger size limit is no limit, and overflows the reads it bounds.
MAX_COUNT = 2**31 - 1

_HMAC_OR_NONE = {"none", "HS256", "HS384", "HS512"}
# Printable ASCII without quotes or backslashes: these values end up inside WWW-Authenticate quoted strings.
_HEADER_SAFE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]*( [\x21\x23-\x5b\x5d-\x7e]+)*")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the setting; ``id`` is the system check id suffix."""

    id: str
    msg: str
    hint: str
    error: bool = True


class InvalidSettingError(Exception):
    """Raised by a parser: the value is refused for these problems."""

    def __init__(self, *problems: Problem) -> None:
        super().__init__(*problems)
        self.problems = problems


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a key that has none: its parser is handed this when the key is absent.
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Context:
    """What a parser may look at besides its own value."""

    name: str
    default: Any
    #: Values built before this one: the deployment-wide keys, then this issuer's keys in table order.
    parsed: Mapping[str, Any]
    #: Django's CACHES setting, so a cache alias is checked where it is read (None: Django not configured).
    caches: Mapping[str, Any] | None


Parse = Callable[[Any, Context], Any]


def fail(check_id: str, msg: str, hint: str) -> InvalidSettingError:
    """An :class:`InvalidSettingError` holding one problem."""
    return InvalidSettingError(Problem(check_id, msg, hint))


def is_loopback_host(host: str | None) -> bool:
    """Say whether ``host`` is localhost, a ``.localhost`` name or a loopback address."""
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
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # an invalid IPv6 literal or port
        return False
    if parts.scheme == "https":
        return bool(host)
    if parts.scheme == "http":
        return bool(host) and (allow_insecure_http or is_loopback_host(host))
    return False


def closest(name: Any, names: Sequence[str]) -> str:
    """`` Did you mean 'X'?`` for the known name closest to ``name``, or an empty string."""
    match = difflib.get_close_matches(str(name), list(names), n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seconds(*, positive: bool = False) -> Parse:
    """A finite number of seconds, ``>= 0`` (``> 0`` when ``positive``), at most :data:`MAX_SECONDS`."""

    def parse(value: Any, ctx: Context) -> Any:
        # NaN compares False with everything, so this also refuses NaN; inf fails the upper bound.
        if _is_number(value) and (value > 0 if positive else value >= 0) and value <= MAX_SECONDS:
            return value
        bound = "> 0" if positive else ">= 0"
        raise fail(
            "E010",
            f"{ctx.name} must be a finite number of seconds {bound} and at most {MAX_SECONDS}, not {value!r}.",
            f"Remove it for the default, {ctx.default!r}.",
        )

    return parse


def count(value: Any, ctx: Context) -> int:
    """A whole number from 0 to :data:`MAX_COUNT` (bytes, bits, entries): a fraction is refused, never truncated."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    raise fail(
        "E010",
        f"{ctx.name} must be a whole number from 0 to {MAX_COUNT}, not {value!r}.",
        f"Remove it for the default, {ctx.default!r}.",
    )


def flag(value: Any, ctx: Context) -> bool:
    """Exactly True or False: ``"no"`` or ``0`` is refused rather than read as a boolean."""
    if isinstance(value, bool):
        return value
    raise fail(
        "E013",
        f"{ctx.name} must be True or False, not {value!r}.",
        f"Write True or False; the default is {ctx.default!r}.",
    )


def header_text(value: Any, ctx: Context) -> str:
    """A string that can stand in an HTTP header's quoted string."""
    if isinstance(value, str) and _HEADER_SAFE.fullmatch(value):
        return value
    raise fail(
        "E013",
        f"{ctx.name} must be a string of printable ASCII without quotes or backslashes, not {value!r}.",
        f"e.g. {ctx.default!r}.",
    )


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def dotted_path(value: Any, ctx: Context) -> str:
    """A dotted import path (``package.module.Name``); importing it is left to first use, which names the key."""
    if isinstance(value, str) and _DOTTED.fullmatch(value):
        return value
    raise fail("E013", f"{ctx.name} must be a dotted import path, not {value!r}.", f"e.g. {ctx.default!r}.")


def optional(parse: Parse) -> Parse:
    """``None``, or what ``parse`` accepts."""

    def parse_optional(value: Any, ctx: Context) -> Any:
        return None if value is None else parse(value, ctx)

    return parse_optional


def choice(check_id: str, choices: Sequence[str]) -> Parse:
    """One of ``choices``, exactly."""

    def parse(value: Any, ctx: Context) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise fail(
            check_id,
            f"{ctx.name} must be one of {', '.join(map(repr, choices))}, not {value!r}.",
            "Use one of: " + ", ".join(choices) + "." + (closest(value, choices) if isinstance(value, str) else ""),
        )

    return parse


def names(check_id: str = "E013", *, as_set: bool = False) -> Parse:
    """One non-empty string or a list of them, built as a tuple (or a frozenset when ``as_set``)."""

    def parse(value: Any, ctx: Context) -> tuple[str, ...] | frozenset[str]:
        items = (value,) if isinstance(value, str) else value
        if isinstance(items, (list, tuple)) and all(isinstance(i, str) and i for i in items):
            return frozenset(items) if as_set else tuple(items)
        raise fail(
            check_id,
            f"{ctx.name} must be a list of non-empty strings, not {value!r}.",
            f"e.g. {list(ctx.default or ()) or ['admin']!r}.",
        )

    return parse


def url(check_id: str, what: str = "an https URL") -> Parse:
    """A URL the library may fetch or publish: https, http only for loopback hosts or with ALLOW_INSECURE_HTTP."""

    def parse(value: Any, ctx: Context) -> str:
        allow_http = ctx.parsed.get("ALLOW_INSECURE_HTTP") is True
        if isinstance(value, str) and _HEADER_SAFE.fullmatch(value) and url_allowed(value, allow_http):
            return value
        raise fail(
            check_id,
            f"{ctx.name} {value!r} is not {what} (http is allowed for loopback hosts only).",
            'Use https, or set "ALLOW_INSECURE_HTTP": True for a trusted internal network.',
        )

    return parse


def cache_alias(check_id: str) -> Parse:
    """The name of an entry of Django's ``CACHES``."""

    def parse(value: Any, ctx: Context) -> str:
        if isinstance(value, str) and value and (ctx.caches is None or value in ctx.caches):
            return value
        known = ", ".join(repr(a) for a in ctx.caches or ()) or "none"
        raise fail(
            check_id,
            f"{ctx.name} {value!r} is not an entry of CACHES (entries: {known}).",
            f'Add CACHES[{value!r}], or set "{ctx.name}" in DRF_OIDC_JWKS to one of the existing entries.',
        )

    return parse


def issuer(value: Any, ctx: Context) -> str:
    """The exact ``iss``: a non-empty https URL (http for loopback hosts)."""
    if value is REQUIRED or not isinstance(value, str) or not value:
        raise fail(
            "E004",
            "has no ISSUER.",
            'Set "ISSUER" to the exact "iss" value your identity provider puts in its tokens.',
        )
    return str(url("E005")(value, ctx))


def audience(value: Any, ctx: Context) -> tuple[str, ...] | None:
    """A string or a non-empty list of strings; None opts out of the audience check (with W001)."""
    if value is REQUIRED:
        raise fail(
            "E006",
            "has no AUDIENCE.",
            'Set "AUDIENCE" to the "aud" value your API\'s tokens carry (a string or a list), '
            'or "AUDIENCE": None to accept tokens of this issuer for any audience.',
        )
    if value is None:
        return None
    items = (value,) if isinstance(value, str) else value
    if not (isinstance(items, (list, tuple)) and items and all(isinstance(a, str) and a for a in items)):
        raise fail(
            "E006",
            f"AUDIENCE must be a string, a list of strings, or None, not {value!r}.",
            'e.g. "AUDIENCE": "https://api.example.com" or ["https://api.example.com", "my-client-id"].',
        )
    resource = ctx.parsed.get("RESOURCE")
    # RFC 8707: a token requested for this resource carries the resource URL as its audience.
    return (*items, resource) if resource and resource not in items else tuple(items)


def audience_warning(value: Any) -> Problem | None:
    """W001 for ``AUDIENCE: None``."""
    if value is not None:
        return None
    return Problem(
        "W001",
        "AUDIENCE is None: tokens of this issuer for any audience are accepted.",
        'Set "AUDIENCE" to this API\'s identifier unless every token of the issuer is meant for it.',
        error=False,
    )


def algorithms(value: Any, ctx: Context) -> tuple[str, ...]:
    """A non-empty list of supported asymmetric algorithms: none and HMAC are refused."""
    if not isinstance(value, (list, tuple)) or not value:
        raise fail(
            "E007",
            "ALGORITHMS must be a non-empty list.",
            'e.g. "ALGORITHMS": ["RS256"] (add "EdDSA" for Better Auth\'s default keys).',
        )
    problems = []
    for alg in value:
        if isinstance(alg, str) and (alg in _HMAC_OR_NONE or alg.lower() == "none"):
            problems.append(
                Problem(
                    "E007",
                    f"ALGORITHMS holds {alg!r}, which a resource server must never accept.",
                    "Remove it: 'none' is unsigned, and HMAC would turn a public key into a shared secret.",
                )
            )
        elif not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS:
            hint = "Supported: " + ", ".join(sorted(SUPPORTED_ALGORITHMS)) + "."
            problems.append(Problem("E007", f"ALGORITHMS holds unsupported {alg!r}.", hint))
    if problems:
        raise InvalidSettingError(*problems)
    return tuple(value)


def _segments(path: Any) -> bool:
    return isinstance(path, (list, tuple)) and bool(path) and all(isinstance(s, str) for s in path)


def _path_problem(path: Any) -> str | None:
    """Why ``path`` is not a claim path (a string, a list of string segments, a list of such), or None."""
    if isinstance(path, str):
        return None
    if isinstance(path, (list, tuple)) and path:
        # Segments of one path, or several paths (strings or segment lists): see claim_paths.normalise_path.
        if all(isinstance(p, str) for p in path):
            return None
        if all(
            isinstance(p, str) or (isinstance(p, (list, tuple)) and p and all(isinstance(s, str) for s in p))
            for p in path
        ):
            return None
    return f"a claim path is a string or a non-empty list of strings (or of such lists), not {path!r}"


def claims(value: Any, ctx: Context) -> dict[str, Any]:
    """``{Claims attribute: path or None}`` over the ``PROVIDER`` preset."""
    if not isinstance(value, Mapping):
        raise fail("E009", "CLAIMS must be a dict.", 'e.g. "CLAIMS": {"roles": "realm_access.roles"}.')
    problems = []
    for key, path in value.items():
        reason = None if path is None else _path_problem(path)
        if reason:
            problems.append(Problem("E009", f"CLAIMS[{key!r}]: {reason}.", "See docs/claims.md."))
        if key not in CLAIM_ATTRIBUTES:
            hint = "Keys: " + ", ".join(CLAIM_ATTRIBUTES) + "." + closest(key, CLAIM_ATTRIBUTES)
            problems.append(Problem("E009", f"CLAIMS has an unknown key {key!r}.", hint))
    if problems:
        raise InvalidSettingError(*problems)
    provider = ctx.parsed.get("PROVIDER", "generic")
    return resolve_claim_paths(provider if provider in PROVIDERS else "generic", value)


def user_fields(value: Any, ctx: Context) -> dict[str, Any]:
    """``{user field: Claims attribute or claim path}``, never writing a protected field."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise fail("E012", "USER_FIELDS must be a dict of user field -> claim.", "See docs/users.md.")
    problems = [
        Problem("E012", f"USER_FIELDS may not write {name!r}.", "Admin flags: STAFF_ROLES, SUPERUSER_ROLES.")
        for name in sorted(PROTECTED_FIELDS & set(value))
    ]
    for name, path in value.items():
        reason = _path_problem(path)
        if reason:
            problems.append(Problem("E012", f"USER_FIELDS[{name!r}]: {reason}.", "See docs/users.md."))
    if problems:
        raise InvalidSettingError(*problems)
    return dict(value)


def issuers(value: Any, ctx: Context) -> Any:
    """None, or a non-empty list of dicts (each entry is then walked like the top level)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value:
        raise fail(
            "E003",
            "ISSUERS must be a non-empty list of dicts.",
            'Give one dict per issuer: "ISSUERS": [{"ISSUER": "https://a.example.com", "AUDIENCE": "..."}].',
        )
    problems = [
        Problem("E003", f"ISSUERS[{i}] must be a dict.", 'e.g. {"ISSUER": "https://a.example.com"}.')
        for i, entry in enumerate(value)
        if not isinstance(entry, Mapping)
    ]
    if problems:
        raise InvalidSettingError(*problems)
    return tuple(value)


def dpop_algorithms(value: Any, ctx: Context) -> tuple[str, ...]:
    """A non-empty list of asymmetric proof algorithms: a proof is signed with the client's own key pair."""
    items = value if isinstance(value, (list, tuple)) else ()
    if items and all(isinstance(a, str) and a in SUPPORTED_ALGORITHMS for a in items):
        return tuple(items)
    raise fail(
        "E014",
        f"DPOP_ALGORITHMS must be a non-empty list of asymmetric algorithms, not {value!r} (HMAC and none never).",
        "Supported: "
        + ", ".join(sorted(SUPPORTED_ALGORITHMS))
        + '; the default is ["ES256", "EdDSA", "RS256", "PS256"].',
    )
