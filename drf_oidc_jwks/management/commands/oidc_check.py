"""``manage.py oidc_check``: fetch discovery and the JWKS now, as configured, and say what would refuse tokens.

The live fetch goes through a private :class:`~drf_oidc_jwks.jwks.JWKSClient` whose cache is a
throw-away one, so checking never changes what the running workers share (no new entry, no failure
backoff); the shared cache is only read (the client's snapshot), to report what it holds. Each issuer's
verdict says what the server answers: the keys it verifies with, stale keys until when, or the refusal
code tokens get.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from drf_oidc_jwks.checks import run_all
from drf_oidc_jwks.conf import IssuerSettings, Settings, get_settings
from drf_oidc_jwks.exceptions import KeySourceError
from drf_oidc_jwks.fetching import FetchResult, http_fetch
from drf_oidc_jwks.jwks import JWKSClient
from drf_oidc_jwks.keys import KeySet, PublicKey, parse_key
from drf_oidc_jwks.keystore import CacheSnapshot

#: Algorithm families, to say which ALGORITHMS entry a key of the JWKS could serve.
_FAMILY_HINT = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}


def redact(location: Any) -> Any:
    """Hide passwords in a cache LOCATION (``redis://:secret@host`` -> ``redis://:***@host``)."""
    if isinstance(location, (list, tuple)):
        return [redact(item) for item in location]
    if not isinstance(location, str) or "@" not in location:
        return location
    parts = urlsplit(location)
    if parts.password is None:
        return location
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class _Recorder:
    """A fetcher that remembers what it was asked and what it got, for the report."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, url: str, *, timeout: float, max_bytes: int, allow_insecure_http: bool) -> FetchResult:
        started = time.monotonic()
        call: dict[str, Any] = {"url": url}
        self.calls.append(call)
        try:
            result = http_fetch(url, timeout=timeout, max_bytes=max_bytes, allow_insecure_http=allow_insecure_http)
        except KeySourceError as exc:
            call["error"] = exc.reason
            raise
        finally:
            call["ms"] = round((time.monotonic() - started) * 1000, 1)
        call["document"] = result.document
        call["max_age"] = result.max_age
        return result


def describe_key(key: PublicKey, algorithms: tuple[str, ...]) -> dict[str, Any]:
    """One key of the JWKS as the report shows it."""
    return {
        "kid": key.kid,
        "kty": key.kty,
        "alg": key.alg,
        "crv": key.crv,
        "size": key.size,
        "verifies": [alg for alg in algorithms if key.allows(alg)],
    }


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).isoformat(timespec="seconds")


def _cached(snapshot: CacheSnapshot, now: float) -> dict[str, Any]:
    """The shared cache's state for the report, relative to ``now``."""
    entry = snapshot.jwks
    held: dict[str, Any] = {"jwks": None}
    if entry is not None:
        held["jwks"] = {
            "version": entry.version,
            "keys": len(entry.kids),
            "kids": list(entry.kids),
            "fetched_ago": round(now - entry.fetched_at, 1),
            "fresh_for": round(entry.fresh_until - now, 1),
            "stale_for": round(entry.stale_until - now, 1),
            "fresh_until": _utc(entry.fresh_until),
            "stale_until": _utc(entry.stale_until),
        }
    held["discovered_jwks_uri"] = snapshot.discovered_jwks_uri
    backoff = snapshot.failure_backoff_until
    held["failure_backoff_for"] = round(backoff - now, 1) if backoff is not None and backoff > now else None
    held["refresh_in_progress"] = snapshot.refresh_in_progress
    held["unknown_kid_cooldown"] = snapshot.unknown_kid_cooldown
    return held


def _probe(issuer: IssuerSettings, s: Settings, report: dict[str, Any]) -> tuple[KeySet | None, _Recorder]:
    """Fetch discovery and the JWKS now through a throw-away cache; note a failure in ``report``."""
    recorder = _Recorder()
    scratch = LocMemCache(f"drf-oidc-jwks-check-{uuid.uuid4().hex}", {})
    probe = JWKSClient(issuer, s, fetch=recorder, cache=scratch)
    try:
        return probe.refresh(None, wait=True), recorder
    except KeySourceError as exc:
        where = recorder.calls[-1]["url"] if recorder.calls else issuer.jwks_url or issuer.discovery_url
        reason = exc.reason
        document = recorder.calls[-1].get("document") if recorder.calls else None
        if reason == "discovery document names another issuer" and isinstance(document, Mapping):
            report["discovered_issuer"] = str(document.get("issuer"))[:200]
            reason += f": {report['discovered_issuer']!r}, expected {issuer.issuer!r}"
        report["fetch_error"] = f"{reason} ({where})"
        report["fetch_failed_at"] = where
        report["fetch_reason"] = exc.reason
        return None, recorder
    finally:
        scratch.clear()


def _skipped_keys(jwks_doc: Any, s: Settings) -> list[dict[str, Any]]:
    skipped = []
    raw_keys = jwks_doc.get("keys") if isinstance(jwks_doc, Mapping) else None
    for index, jwk in enumerate(raw_keys if isinstance(raw_keys, list) else []):
        try:
            parse_key(jwk, s.min_rsa_key_size)
        except ValueError as exc:
            kid = jwk.get("kid") if isinstance(jwk, Mapping) else None
            skipped.append({"index": index, "kid": kid, "reason": str(exc)})
    return skipped


def check_issuer(issuer: IssuerSettings, s: Settings, cache_ok: bool, per_process: bool = False) -> dict[str, Any]:
    """Fetch discovery and the JWKS of ``issuer`` now and judge whether its tokens can be verified.

    ``per_process``: the JWKS cache is a per-process LocMemCache, so the server's keys are out of sight.
    """
    report: dict[str, Any] = {
        "issuer": issuer.issuer,
        "discovery_url": None if issuer.jwks_url else issuer.discovery_url,
        "jwks_url": issuer.jwks_url,
        "audience": list(issuer.audience) if issuer.audience is not None else None,
        "algorithms": list(issuer.algorithms),
        "provider": issuer.provider,
        "errors": [],
        "warnings": [],
    }
    if cache_ok:
        report["cache"] = _cached(JWKSClient(issuer, s).snapshot(), time.time())  # reads only
    keyset, recorder = _probe(issuer, s, report)
    report["requests"] = [{k: v for k, v in c.items() if k != "document"} for c in recorder.calls]
    if not issuer.jwks_url:
        discovered = [c for c in recorder.calls if c["url"] == issuer.discovery_url and "document" in c]
        if discovered:
            doc = discovered[0]["document"]
            report["jwks_uri"] = doc.get("jwks_uri") if isinstance(doc, Mapping) else None
    else:
        report["jwks_uri"] = issuer.jwks_url
    report["skipped_keys"] = _skipped_keys(recorder.calls[-1].get("document") if recorder.calls else None, s)
    if keyset is None:
        _judge_without_keys(report, issuer, s, per_process)
    else:
        _judge_keys(report, keyset, issuer)
    if issuer.introspection is not None:
        report["introspection"] = probe_introspection(issuer, report)
    return report


def probe_introspection(issuer: IssuerSettings, report: dict[str, Any]) -> dict[str, Any]:
    """Introspect a random token with the client credentials: a working endpoint answers ``active: false``."""
    from drf_oidc_jwks.exceptions import KeySourceError
    from drf_oidc_jwks.opaque import introspector_for

    introspector = introspector_for(issuer)
    found: dict[str, Any] = {"endpoint": None, "auth_method": (issuer.introspection or {}).get("AUTH_METHOD")}
    started, problem = time.monotonic(), None
    try:
        found["endpoint"] = introspector.endpoint()
        found["active"] = introspector.probe().get("active")
        if found["active"] is not False:
            problem = "introspection endpoint did not answer active: false for a random token"
    except KeySourceError as exc:
        found["error"] = exc.reason
        problem = f"introspection endpoint: {exc.reason} (opaque tokens would answer 503)"
    found["ms"] = round((time.monotonic() - started) * 1000)
    if problem is not None:
        report["errors"].append(problem)
        report["status"] = "failing"
    return found


def _judge_keys(report: dict[str, Any], keyset: KeySet, issuer: IssuerSettings) -> None:
    report["keys"] = [describe_key(k, issuer.algorithms) for k in keyset.keys]
    report["fresh_for"] = round(keyset.fresh_until - keyset.fetched_at, 1)
    usable = {alg: [k.kid for k in keyset.keys if k.allows(alg)] for alg in issuer.algorithms}
    report["verdict"] = "tokens signed with the keys above are verified"
    if not any(usable.values()):
        families = sorted({_FAMILY_HINT.get(k.kty, k.kty) if k.alg is None else k.alg for k in keyset.keys})
        report["errors"].append(
            f"no key of the JWKS can verify {', '.join(issuer.algorithms)}: every token is refused "
            f"(unsupported_algorithm); the JWKS holds keys for {', '.join(families)}: add that to ALGORITHMS"
        )
        report["verdict"] = "every token is refused with 401 unsupported_algorithm"
    else:
        for alg, kids in usable.items():
            if not kids:
                report["warnings"].append(f"ALGORITHMS allows {alg} but no key of the JWKS can verify it")
    if len(keyset.keys) > 1 and any(k.kid is None for k in keyset.keys):
        report["warnings"].append("several keys and some without kid: tokens without kid are refused (unknown_key)")
    report["status"] = "failing" if report["errors"] else "ok"


def _judge_without_keys(report: dict[str, Any], issuer: IssuerSettings, s: Settings, per_process: bool) -> None:
    """Say what the server answers when no keys can be fetched now: it depends on why, and on the cache."""
    error, held = report["fetch_error"], (report.get("cache") or {}).get("jwks")
    report["status"] = "failing"
    named = report.get("discovered_issuer")
    no_discovery = report["fetch_reason"] == "HTTP 404" and report["fetch_failed_at"] == issuer.discovery_url
    if named is not None or no_discovery:
        # A wrong ISSUER: the tokens the IdP mints carry another iss, refused before any key is needed.
        real = repr(named) if named is not None else "another issuer"
        report["verdict"] = f"tokens issued by {real} are refused with 401 invalid_issuer"
        fix = f"set ISSUER to exactly {named!r}" if named is not None else "compare ISSUER with a token's iss"
        report["errors"].append(
            f"ISSUER {issuer.issuer!r} does not lead to its issuer's keys ({error}): tokens issued by {real} "
            f"are refused with 401 invalid_issuer, and tokens naming {issuer.issuer!r} are answered 503 "
            f"idp_unavailable; {fix} (manage.py oidc_decode <token> shows a token's iss)"
        )
    elif held is not None and held["stale_for"] > 0 and held["keys"] > 0:
        report["status"] = "degraded"
        report["verdict"] = f"stale keys are served until {held['stale_until']}, then 503 idp_unavailable"
        report["warnings"].append(
            f"the identity provider cannot be reached now: {error}; the cached keys keep serving tokens with "
            f"known kids {held['kids']} until {held['stale_until']} (in {held['stale_for']:.0f}s; fresh until "
            f"{held['fresh_until']}), then every token is answered 503 idp_unavailable unless it is back"
        )
    elif per_process:
        window = s.jwks_cache_ttl + s.jwks_max_stale
        report["verdict"] = (
            f"a server process that fetched keys less than {window:.0f}s ago serves them; one holding none "
            "answers 503 idp_unavailable"
        )
        report["errors"].append(
            f"no keys: {error}; every token is answered 503 idp_unavailable by a server process that holds no "
            f"keys. The JWKS cache is a per-process LocMemCache, so this command cannot see the keys the server's "
            f"processes hold: each keeps serving the keys it fetched for up to JWKS_CACHE_TTL + JWKS_MAX_STALE "
            f"({window:.0f}s) after that fetch"
        )
    else:
        report["verdict"] = "every token is answered 503 idp_unavailable"
        report["errors"].append(f"no keys: {error}; every token is answered 503 idp_unavailable")


def build_report() -> dict[str, Any]:
    """Everything ``oidc_check`` prints, as data."""
    report: dict[str, Any] = {"checks": [], "issuers": [], "errors": []}
    for message in run_all():
        if message.is_silenced():
            continue
        report["checks"].append(
            {
                "id": message.id,
                "level": "error" if message.is_serious() else "warning",
                "msg": message.msg,
                "hint": message.hint,
            }
        )
    try:
        s = get_settings()
    except ImproperlyConfigured as exc:
        report["errors"].append(f"settings: {exc}")
        report["ok"] = False
        return report
    alias = s.jwks_cache_alias
    cache_conf = (getattr(django_settings, "CACHES", {}) or {}).get(alias)
    cache_report: dict[str, Any] = {"alias": alias}
    cache_ok = False
    if isinstance(cache_conf, Mapping):
        cache_report["backend"] = cache_conf.get("BACKEND")
        cache_report["location"] = redact(cache_conf.get("LOCATION", ""))
        try:
            caches[alias].get("drf_oidc_jwks:check")
            cache_ok = True
        except Exception as exc:  # noqa: BLE001 - any backend failure is reported, not raised
            cache_report["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            report["errors"].append(f"cache {alias!r} cannot be read: {cache_report['error']}")
    else:
        cache_report["error"] = "not in CACHES"
    report["cache"], report["resolver"] = cache_report, s.issuer_resolver
    per_process = str(cache_report.get("backend", "")).endswith("LocMemCache")
    for issuer in s.issuers:
        report["issuers"].append(check_issuer(issuer, s, cache_ok, per_process))
    serious = [c for c in report["checks"] if c["level"] == "error"]
    report["ok"] = not serious and not report["errors"] and all(i["status"] != "failing" for i in report["issuers"])
    return report


def _seconds(value: float) -> str:
    return f"{value:.0f}s"


class Command(BaseCommand):
    # The report runs and prints this app's checks itself: Django's banner would print each twice.
    requires_system_checks: list[str] = []
    help = (
        "Resolve discovery and the JWKS of every configured issuer now, show the keys, the cache and the "
        "system checks; exit 1 when tokens would be refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        report = build_report()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=str))
        else:
            self.print_report(report)
        if not report["ok"]:
            raise CommandError("tokens would be refused: see above", returncode=1)

    def print_report(self, report: dict[str, Any]) -> None:
        """Print the report for a person."""
        w = self.stdout.write
        w("System checks")
        if not report["checks"]:
            w("  no problems")
        for c in report["checks"]:
            w(f"  {c['level'].upper()} {c['id']}: {c['msg']}")
            if c["hint"]:
                w(f"      fix: {c['hint']}")
        for error in report["errors"]:
            w(f"ERROR {error}")
        cache = report.get("cache")
        if cache:
            w("")
            w(f"JWKS cache: CACHES[{cache['alias']!r}]")
            if "backend" in cache:
                w(f"  backend:  {cache['backend']}")
                w(f"  location: {cache['location']}")
            if "error" in cache:
                w(f"  ERROR {cache['error']}")
            if str(cache.get("backend", "")).endswith("LocMemCache"):
                w("  (a LocMemCache lives in each process: this command sees its own, not the server's)")
        for issuer in report["issuers"]:
            self.print_issuer(issuer)
        if report.get("resolver"):  # not called: with no token there is no iss to ask it about
            w(f"\nISSUER_RESOLVER {report['resolver']}: asked for every iss no configured issuer accepts")
        w("")
        if report["ok"] and any(i["status"] == "degraded" for i in report["issuers"]):
            w(self.style.WARNING("DEGRADED: cached keys verify tokens while the IdP is unreachable (see verdicts)."))
        elif report["ok"]:
            w(self.style.SUCCESS("OK: tokens of every configured issuer can be verified."))
        else:
            w(self.style.ERROR("FAILING: tokens would be refused (see the errors above)."))

    def print_issuer(self, i: dict[str, Any]) -> None:
        """Print one issuer's section."""
        w = self.stdout.write
        w("")
        w(f"Issuer {i['issuer']}")
        aud = "None (any audience: W001)" if i["audience"] is None else ", ".join(i["audience"])
        w(f"  audience:   {aud}")
        w(f"  algorithms: {', '.join(i['algorithms'])}    provider: {i['provider']}")
        if i["discovery_url"]:
            w(f"  discovery:  {i['discovery_url']}")
        w(f"  jwks_uri:   {i.get('jwks_uri') or '(not resolved)'}")
        for r in i["requests"]:
            outcome = r.get("error") or "200 OK"
            w(f"    GET {r['url']} -> {outcome} in {r['ms']} ms")
        probe = i.get("introspection")
        if probe is not None:
            outcome = probe.get("error") or f"active: {json.dumps(probe.get('active'))}"
            w(f"  introspection: {probe['endpoint'] or '(not resolved)'}")
            method = probe["auth_method"] or "client_secret_basic"
            w(f"    POST a random token ({method}) -> {outcome} in {probe['ms']} ms")
        if "keys" in i:
            w(f"  keys ({len(i['keys'])}, fresh for {_seconds(i['fresh_for'])} after a fetch):")
            for k in i["keys"]:
                size = f"{k['size']} bits" if k["size"] else k["crv"]
                verifies = ", ".join(k["verifies"]) or "none of ALGORITHMS"
                w(f"    kid={k['kid']}  kty={k['kty']}  alg={k['alg'] or '-'}  size={size}  verifies: {verifies}")
        for k in i["skipped_keys"]:
            w(f"    skipped key #{k['index']} (kid={k['kid']}): {k['reason']}")
        held = i.get("cache")
        if held is not None:
            jwks = held["jwks"]
            if jwks is None:
                w("  cache holds: no JWKS yet (the first request fetches it)")
            else:
                state = "fresh" if jwks["fresh_for"] > 0 else ("stale" if jwks["stale_for"] > 0 else "expired")
                w(
                    f"  cache holds: version {jwks['version']}, {jwks['keys']} key(s) {jwks['kids']}, "
                    f"fetched {_seconds(jwks['fetched_ago'])} ago, {state} "
                    f"(fresh for {_seconds(max(0, jwks['fresh_for']))}, "
                    f"usable for {_seconds(max(0, jwks['stale_for']))})"
                )
            if held["failure_backoff_for"]:
                w(f"  cache holds: a failed fetch, no retry for {_seconds(held['failure_backoff_for'])}")
            if held["unknown_kid_cooldown"]:
                w("  cache holds: the unknown-kid refresh cooldown is running")
        for warning in i["warnings"]:
            w(self.style.WARNING(f"  WARNING {warning}"))
        for error in i["errors"]:
            w(self.style.ERROR(f"  ERROR {error}"))
        w(f"  verdict: {i['verdict']}")
        w(f"  status: {i['status']}")
