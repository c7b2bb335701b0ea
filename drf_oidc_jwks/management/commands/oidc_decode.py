"""``manage.py oidc_decode <token>``: verify a token exactly as a request would, and explain the answer.

Prints the (unverified) header and payload, then either the ``Claims`` a view would get and the
user the token maps to, or the stable refusal code with the precise reason. Reads the token from
stdin when none is given (``-`` too), so it stays out of shell history. Without ``--sync`` nothing
is written: the user is looked up read-only.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from rest_framework import exceptions as drf_exceptions

from drf_oidc_jwks import dpop_auth
from drf_oidc_jwks.authentication import JWKSAuthentication
from drf_oidc_jwks.claims import Claims
from drf_oidc_jwks.conf import Settings, get_settings
from drf_oidc_jwks.exceptions import REGISTRY, KeySourceError, TokenError
from drf_oidc_jwks.tokens import read_unverified, verify_token

#: What usually causes each refusal (docs/troubleshooting.md); the status comes from the error registry.
_LIKELY: dict[str, str] = {
    "missing_token": "the Authorization header says Bearer but carries no token",
    "malformed_token": "not a compact JWS: truncated when copied, an opaque (non-JWT) access token, or a JWE",
    "unsupported_algorithm": "the token's alg is not in ALGORITHMS (Better Auth signs EdDSA by default)",
    "unknown_key": "the kid is not in the JWKS even after a refresh: another environment's or issuer's key",
    "invalid_signature": "the token was altered, or signed by a key the IdP never published under that kid",
    "token_expired": "the client kept using an old token: refresh it; or the clocks disagree (see LEEWAY)",
    "token_not_yet_valid": "the issuer's clock is ahead of this host's: fix NTP or raise LEEWAY",
    "invalid_issuer": "iss differs from every configured ISSUER (a trailing slash counts)",
    "invalid_audience": "the token was issued for another API: request it with this API's audience/resource",
    "missing_claim": "a claim of REQUIRED_CLAIMS is absent (ID tokens and some client tokens lack one)",
    "invalid_token_type": "typ is not in ALLOWED_TYPES: an ID token sent where an access token belongs",
    "sender_constrained": "a DPoP or mTLS-bound token (cnf claim) sent as a plain bearer token",
    "user_inactive": "the Django user this identity maps to has is_active=False",
    "invalid_dpop_proof": "the DPoP proof does not match the request (htm/htu behind a proxy), is stale or replayed",
    "use_dpop_nonce": "DPOP_NONCE is on: retry with the nonce of the DPoP-Nonce response header",
    "dpop_required": 'DPOP is "required" for this issuer: the client sent a Bearer token without a DPoP proof',
    "token_inactive": "the IdP's introspection endpoint answered active: false (revoked, expired or unknown there)",
    "token_revoked": "a logout or oidc_revoke covered this token's sub, sid or jti after it was issued",
    "insufficient_user_authentication": "HasAuthLevel: the token's acr or auth_time is not strong or recent enough",
    "idp_unavailable": "no keys: the JWKS cannot be fetched and none is cached (run manage.py oidc_check)",
    "insufficient_scope": "REQUIRED_SCOPES or the view's HasScope names a scope the token lacks",
    "role_required": "HasRole found none of the required roles in the token (check PROVIDER and CLAIMS)",
    "org_role_required": "HasOrgRole: the caller's role in the active organization is not a required one",
    "permission_required": "HasPermission found none of the required permissions (Auth0 RBAC permissions)",
    "tenant_required": "the view needs an active tenant and the token names none",
    "tenant_not_allowed": "the tenant header selects an organization outside the token's organization_ids",
    "tenant_mismatch": "the request body names a tenant other than the active one",
}

#: For each refusal code: the HTTP status a request gets and what usually causes it.
CAUSES: dict[str, tuple[int, str]] = {code: (REGISTRY[code].status, text) for code, text in _LIKELY.items()}

_TIME_CLAIMS = ("exp", "nbf", "iat", "auth_time")
_INTERNAL_SLOTS = ("raw", "header", "paths")


def read_token(value: str | None) -> str:
    """The token from the argument or stdin, without a ``Bearer`` prefix or surrounding blanks."""
    raw = sys.stdin.read() if value in (None, "-") else value
    parts = (raw or "").split(None, 1)
    if parts and parts[0].lower() == "bearer":
        parts = parts[1:]
    return parts[0].strip() if parts else ""


def _when(value: Any, now: float) -> dict[str, Any] | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        utc = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None
    delta = value - now
    relative = f"in {delta:.0f}s" if delta >= 0 else f"{-delta:.0f}s ago"
    return {"utc": utc, "relative": relative}


def _plain(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def claims_attributes(claims: Claims) -> dict[str, Any]:
    """The ``Claims`` attributes a view reads (``request.auth.roles``...), as plain data."""
    out: dict[str, Any] = {}
    for name in type(claims).__slots__:
        if name not in _INTERNAL_SLOTS:
            out[name] = _plain(getattr(claims, name, None))
    return out


def authenticator() -> JWKSAuthentication:
    """The project's own JWKSAuthentication (subclass) from DRF's defaults, so its overrides apply."""
    from rest_framework.settings import api_settings

    for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if isinstance(cls, type) and issubclass(cls, JWKSAuthentication):
            return cls()
    return JWKSAuthentication()


def _refusal(code: str, description: str, reason: str, s: Settings | None, iss: Any = None) -> dict[str, Any]:
    status, cause = CAUSES.get(code, (401, ""))
    refusal: dict[str, Any] = {
        "code": code,
        "status": status,
        "description": description,
        "reason": reason,
        "likely_cause": cause,
    }
    if s is not None:
        context = _context(code, iss, s)
        if context:
            refusal["context"] = context
    return refusal


def _context(code: str, iss: Any, s: Settings) -> str:
    """More of what the settings and the cache say, for the codes where it tells the fix."""
    if code == "invalid_issuer":
        resolver = f"; then ISSUER_RESOLVER {s.issuer_resolver} (its answer is logged)" if s.issuer_resolver else ""
        return "configured issuers: " + ", ".join(repr(i.issuer) for i in s.issuers) + resolver
    issuer = s.issuer_for(iss)
    if issuer is None:
        return ""
    if code == "unsupported_algorithm":
        return f"ALGORITHMS of {issuer.issuer}: {list(issuer.algorithms)}"
    if code == "invalid_audience":
        return f"AUDIENCE of {issuer.issuer}: {list(issuer.audience or ())}"
    if code in ("token_inactive", "token_revoked"):
        return _revocation_context(code, issuer, s)
    if code == "unknown_key":
        from drf_oidc_jwks.jwks import get_client

        kids = get_client(issuer).known_kids()
        cooldown = s.jwks_refresh_cooldown
        return f"the JWKS of {issuer.issuer} holds kids {kids}; an unknown kid refetches at most every {cooldown:g}s"
    return ""


def _opaque_issuer(raw: str, s: Settings) -> Any:
    """The issuer an opaque token is introspected at (None for a JWS, or with no introspection configured)."""
    from drf_oidc_jwks.introspection import looks_like_jws
    from drf_oidc_jwks.opaque import opaque_issuer

    return None if looks_like_jws(raw) else opaque_issuer(s)


def _revocation_context(code: str, issuer: Any, s: Settings) -> str:
    if code == "token_revoked":
        return (
            f"revocations of {issuer.issuer} (back-channel logout, oidc_revoke) are remembered {s.revocation_ttl:g}s "
            f"and reach every worker within REVOCATION_POLL ({s.revocation_poll:g}s); a new token works"
        )
    if issuer.introspection is None:
        return ""
    from drf_oidc_jwks.opaque import introspector_for

    ttl = issuer.introspection.get("CACHE_TTL", 60)
    try:
        endpoint = introspector_for(issuer).endpoint()
    except Exception as exc:  # noqa: BLE001 - the context is a hint; the refusal stands either way
        endpoint = f"(endpoint unknown: {type(exc).__name__})"
    return f"introspected at {endpoint}; active answers are cached up to CACHE_TTL ({ttl}s)"


def describe_user(claims: Claims, s: Settings) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Say which user the claims map to, reading only; return (user, refusal or None)."""
    if claims.is_machine:
        return {"kind": "service principal", "note": "client credentials: no Django user (docs/users.md)"}, None
    if not s.sync_users:
        return {"kind": "TokenUser", "pk": claims.sub, "note": "SYNC_USERS is False: no database"}, None
    from drf_oidc_jwks import users
    from drf_oidc_jwks.models import OIDCIdentity

    values = _plain(users.mapped_values(claims, s))
    try:
        identity = OIDCIdentity.objects.select_related("user").filter(issuer=claims.issuer, subject=claims.sub).first()
    except DatabaseError as exc:
        return {"kind": "unknown", "note": f"the database cannot be read ({type(exc).__name__}): run migrate"}, None
    if identity is None:
        return {
            "kind": "new",
            "note": "no user yet for (issuer, sub): the first request creates one (--sync does it now)",
            "fields": values,
        }, None
    user = identity.user
    info = {
        "kind": "existing",
        "pk": user.pk,
        "username": user.get_username(),
        "is_active": user.is_active,
        "up_to_date": identity.fingerprint == users.fingerprint(claims, s),
        "fields": values,
    }
    if not user.is_active:
        return info, _refusal("user_inactive", "The user account is inactive.", "is_active is False", s)
    return info, None


def sync_user(auth: JWKSAuthentication, claims: Claims) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Resolve the user as a request does, and load it (creating or updating it)."""
    try:
        user = auth.get_user(claims)
        pk = user.pk  # a synced user is lazy: using it is what writes
    except TokenError as exc:
        return {}, _refusal(exc.code, exc.description, exc.reason, None)
    except drf_exceptions.AuthenticationFailed as exc:
        code = getattr(exc.detail, "code", "invalid_token")
        return {}, _refusal(str(code), str(exc.detail), str(exc.detail), None)
    return {"kind": type(user).__name__, "pk": pk, "username": user.get_username(), "synced": True}, None


def explain_proof(raw: str, claims: Claims, proof: str, method: str, url: str, s: Settings) -> dict[str, Any] | None:
    """Run the checks a DPoP request's proof meets, without recording it; the refusal, or None."""
    from django.core.cache import caches

    from drf_oidc_jwks.dpop import check_binding, check_proof
    from drf_oidc_jwks.dpop_store import NonceIssuer, replay_key
    from drf_oidc_jwks.exceptions import InvalidDPoPProof

    issuer = s.issuer_for(claims.issuer)
    if issuer is None or issuer.dpop == "off":
        reason = 'DPOP is "off" for this issuer: a DPoP header is left to other authentication classes'
        return _refusal("invalid_dpop_proof", InvalidDPoPProof.description, reason, s)
    nonces = NonceIssuer() if s.dpop_nonce else None
    try:
        checked = check_proof(
            proof,
            method=method,
            url=url,
            access_token=raw,
            algorithms=issuer.dpop_algorithms,
            max_age=issuer.dpop_proof_max_age,
            leeway=s.leeway,
            nonce_checker=nonces.checker() if nonces is not None else None,
        )
        check_binding(claims.raw, checked)
        if caches[s.jwks_cache_alias].get(replay_key(checked.jkt, checked.jti)) is not None:
            raise InvalidDPoPProof("jti already used: a replayed proof", description="The DPoP proof was already used.")
    except TokenError as exc:
        return _refusal(exc.code, exc.description, exc.reason, s)
    return None


def decode(
    raw: str, *, sync: bool = False, proof: str | None = None, method: str = "GET", url: str = ""
) -> dict[str, Any]:
    """Verify ``raw`` as a request would (a DPoP one when ``proof`` is given) and return what ``oidc_decode`` prints."""
    s = get_settings()
    now = time.time()
    result: dict[str, Any] = {"accepted": False}
    introspected_at = _opaque_issuer(raw, s)
    if introspected_at is not None:  # an opaque token: its answer is what there is to show
        result["introspected_at"], iss = introspected_at.issuer, introspected_at.issuer
    else:
        try:
            parsed = read_unverified(raw, s.max_token_bytes)
        except TokenError as exc:
            result["refusal"] = _refusal(exc.code, exc.description, exc.reason, s)
            return result
        result["header"], result["payload"], iss = parsed.header, parsed.payload, parsed.payload.get("iss")
        result["times"] = {n: _when(parsed.payload.get(n), now) for n in _TIME_CLAIMS if n in parsed.payload}
    auth = authenticator()
    try:
        claims = verify_token(raw, dpop=True) if proof is not None else auth.get_validated_token(raw)
        if proof is None:
            dpop_auth.check_bearer(s, claims)
    except TokenError as exc:
        result["refusal"] = _refusal(exc.code, exc.description, exc.reason, s, iss)
        return result
    except KeySourceError as exc:
        result["refusal"] = _refusal(
            "idp_unavailable",
            "The identity provider is unavailable; try again shortly.",
            f"{exc.reason} (Retry-After {max(1, round(exc.retry_after))}s)",
            s,
        )
        return result
    result["claims"] = claims_attributes(claims)
    result["claim_paths"] = {k: _plain(v) for k, v in claims.paths.items()}
    refused = explain_proof(raw, claims, proof, method, url, s) if proof is not None else None
    if refused is not None:
        result["refusal"] = refused
        return result
    missing = [scope for scope in s.required_scopes if scope not in claims.scopes]
    if missing:
        result["refusal"] = _refusal(
            "insufficient_scope", "The token lacks a required scope.", f"REQUIRED_SCOPES {missing} not in scopes", s
        )
        return result
    user, refusal = sync_user(auth, claims) if sync else describe_user(claims, s)
    result["user"] = user
    if refusal is not None:
        result["refusal"] = refusal
        return result
    result["accepted"] = True
    return result


class Command(BaseCommand):
    help = (
        "Verify a bearer token exactly as a request would: print its header and claims, the Claims attributes and "
        "the user it maps to, or the stable refusal code and the precise reason. Exit 1 when refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", nargs="?", help="the token (default, or -: read it from stdin)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument(
            "--sync", action="store_true", help="create or update the Django user as a request would (writes)"
        )
        # DPoP (docs/dpop.md): explain a refused DPoP request from its proof, method and URL.
        parser.add_argument("--proof", help="the request's DPoP header: check it as the API did (nothing recorded)")
        parser.add_argument("--method", default="GET", help="the request's method, for --proof (default GET)")
        parser.add_argument("--url", help="the URL the client called, for --proof (as the API sees it behind a proxy)")

    def handle(self, *args: Any, **options: Any) -> None:
        raw = read_token(options["token"])
        if not raw:
            raise CommandError("no token given (pass it as an argument or on stdin)", returncode=2)
        if options["proof"] is not None and not options["url"]:
            raise CommandError("--proof needs --url: the URL the client called", returncode=2)
        result = decode(
            raw, sync=options["sync"], proof=options["proof"], method=options["method"], url=options["url"] or ""
        )
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, default=str, ensure_ascii=False))
        else:
            self.print_result(result)
        if not result["accepted"]:
            raise CommandError(f"token refused: {result['refusal']['code']}", returncode=1)

    def print_result(self, result: dict[str, Any]) -> None:
        """Print the result for a person."""
        w = self.stdout.write
        if "introspected_at" in result:
            w(f"Opaque token: introspected at {result['introspected_at']}")
        if "header" in result:
            w("Header (unverified)")
            w(_indent(json.dumps(result["header"], indent=2, ensure_ascii=False)))
            w("Payload (unverified)")
            w(_indent(json.dumps(result["payload"], indent=2, ensure_ascii=False)))
            for name, when in result["times"].items():
                if when is not None:
                    w(f"  {name}: {when['utc']} ({when['relative']})")
        refusal = result.get("refusal")
        if "claims" in result:
            w("Claims (request.auth)")
            for name, value in result["claims"].items():
                w(f"  {name}: {value!r}")
        if "user" in result and result["user"]:
            w("User (request.user)")
            for name, value in result["user"].items():
                w(f"  {name}: {value!r}")
        if refusal is None:
            w(self.style.SUCCESS("ACCEPTED: a request with this token is authenticated."))
            return
        w(self.style.ERROR(f"REFUSED: {refusal['code']} ({refusal['status']})"))
        w(f"  description: {refusal['description']}")
        w(f"  reason:      {refusal['reason']}")
        if refusal.get("context"):
            w(f"  context:     {refusal['context']}")
        if refusal["likely_cause"]:
            w(f"  likely:      {refusal['likely_cause']}")
        w(f"  see: docs/troubleshooting.md#{refusal['code']}")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
