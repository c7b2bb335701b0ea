"""OAuth 2.0 Token Introspection (RFC 7662) for opaque access tokens, cached in Django's shared cache.

An :class:`Introspector` asks one issuer's introspection endpoint whether a token is active, with
explicit inputs (endpoint, client credentials, limits), and holds the answer to the rules a JWT's
claims are held to (``tokens.validate_claims``). Answers live in the shared cache under the token's
SHA-256, never the token: active ones until the earlier of ``CACHE_TTL`` and ``exp``, inactive ones
for ``INACTIVE_CACHE_TTL``, failures never. Cache misses reach the IdP at most ``MAX_RATE`` times per
second per issuer, counted across every process that shares the cache (see docs/opaque-tokens.md).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from django.core.cache import BaseCache

from . import signals
from .conf import IssuerSettings, register_reset, url_allowed
from .dpop import check_confirmation
from .exceptions import InvalidTokenType, KeySourceError, MalformedToken, SenderConstrained, TokenInactive
from .fetching import HTTPResult, request_json
from .settings_opaque import INTROSPECTION_AUTH_METHODS, INTROSPECTION_DEFAULTS
from .settings_opaque import introspection as parse_introspection
from .settings_values import Context, InvalidSettingError
from .tokens import read_unverified, validate_claims

logger = logging.getLogger("drf_oidc_jwks")

AUTH_METHODS = INTROSPECTION_AUTH_METHODS
#: Defaults of the keys of one issuer's ``INTROSPECTION`` setting (docs/opaque-tokens.md).
DEFAULTS: dict[str, Any] = INTROSPECTION_DEFAULTS

#: Largest introspection answer read (RFC 7662 answers are a few hundred bytes).
MAX_ANSWER_BYTES = 64 * 1024

# RFC 6750 2.1 b64token: what a bearer token may hold; anything else never reaches the IdP.
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


@dataclass(frozen=True)
class IntrospectionConfig:
    """One issuer's ``INTROSPECTION`` setting, validated."""

    client_id: str
    client_secret: str
    auth_method: str = "client_secret_basic"
    url: str | None = None
    cache_ttl: float = 60
    inactive_cache_ttl: float = 10
    require_audience: bool = True
    max_rate: float = 20
    for_jwts: bool = False

    def __repr__(self) -> str:
        # Never the secret: settings objects end up in logs and tracebacks.
        return f"IntrospectionConfig(client_id={self.client_id!r}, auth_method={self.auth_method!r}, url={self.url!r})"

    @classmethod
    def from_setting(cls, value: Mapping[str, Any]) -> IntrospectionConfig:
        """Build from an ``INTROSPECTION`` dict already checked by :func:`problems`."""
        v = {**DEFAULTS, **value}
        return cls(
            client_id=str(v["CLIENT_ID"]),
            client_secret=str(v["CLIENT_SECRET"]),
            auth_method=str(v["AUTH_METHOD"]),
            url=v["URL"],
            cache_ttl=float(v["CACHE_TTL"]),
            inactive_cache_ttl=float(v["INACTIVE_CACHE_TTL"]),
            require_audience=bool(v["REQUIRE_AUDIENCE"]),
            max_rate=float(v["MAX_RATE"]),
            for_jwts=bool(v["FOR_JWTS"]),
        )


def problems(value: Any, allow_insecure_http: bool) -> list[str]:
    """What is wrong with an ``INTROSPECTION`` value (empty when fine), one sentence each, naming the key."""
    try:
        parse_introspection(value, Context("INTROSPECTION", None, {"ALLOW_INSECURE_HTTP": allow_insecure_http}, None))
    except InvalidSettingError as exc:
        return [p.msg for p in exc.problems]
    return []


def looks_like_jws(raw: str) -> bool:
    """Say whether ``raw`` has the shape of a compact JWS (else it is an opaque token)."""
    if raw.count(".") != 2:
        return False
    try:
        return "alg" in read_unverified(raw, len(raw)).header
    except Exception:  # noqa: BLE001 - any failure to read it means it is not a JWS
        return False


def check_opaque(raw: str, max_bytes: int) -> None:
    """Refuse, before any request, what cannot be a bearer token: too long, or characters RFC 6750 excludes."""
    if len(raw) > max_bytes:
        raise MalformedToken(f"token is {len(raw)} bytes, limit {max_bytes}", description="The token is too large.")
    if not _B64TOKEN.match(raw):
        raise MalformedToken("opaque token holds characters a bearer token cannot")


def check_bound_answer(answer: Mapping[str, Any], *, dpop: bool) -> None:
    """An answer binding the token (``cnf``, or ``token_type`` DPoP: RFC 9449 6.2) takes the DPoP rules.

    As Bearer it is refused ``sender_constrained``; with the DPoP scheme its ``cnf.jkt`` is checked against the
    proof (:func:`drf_oidc_jwks.dpop.check_binding`), which refuses an answer naming no ``jkt``.
    """
    check_confirmation(answer, dpop=dpop)
    token_type = answer.get("token_type")
    if not dpop and isinstance(token_type, str) and token_type.lower() == "dpop":
        raise SenderConstrained("introspection answer says token_type DPoP")


def token_digest(raw: str) -> str:
    """The SHA-256 of a token, hex: the only form in which a token is stored or logged."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


T = TypeVar("T")


def _payload(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    return answer


class Requester(Protocol):
    def __call__(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        max_bytes: int,
        allow_insecure_http: bool,
        form: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> HTTPResult: ...


class RateLimiter:
    """At most ``rate`` acquisitions per one-second window: per process, and across processes via the cache.

    The shared count is a per-window ``cache.incr`` (atomic on Redis and Memcached); when the cache is
    unreachable each process still holds itself to ``rate``.
    """

    def __init__(self, cache: BaseCache, prefix: str, rate: float, clock: Callable[[], float] = time.time) -> None:
        self.cache, self.prefix, self.rate, self.clock = cache, prefix, rate, clock
        self._lock = threading.Lock()
        self._window = -1
        self._local = 0

    def acquire(self) -> None:
        """Count one request to the IdP; raise KeySourceError (503, Retry-After) when over the bound."""
        now = self.clock()
        window = math.floor(now)
        retry = max(0.001, window + 1 - now)
        with self._lock:
            if window != self._window:
                self._window, self._local = window, 0
            self._local += 1
            local = self._local
        if local > self.rate:
            raise KeySourceError("introspection rate limit reached (this process)", retry_after=retry)
        try:
            shared = self._incr(f"{self.prefix}rate:{window}")
        except Exception as exc:  # noqa: BLE001 - a cache outage leaves the per-process bound
            logger.warning("introspection rate counter unavailable: %s", type(exc).__name__)
            return
        if shared > self.rate:
            raise KeySourceError("introspection rate limit reached (all processes)", retry_after=retry)

    def _incr(self, key: str) -> int:
        try:
            return int(self.cache.incr(key))
        except ValueError:  # no counter for this window yet
            if self.cache.add(key, 1, 3):
                return 1
            return int(self.cache.incr(key))


class Introspector:
    """Introspect opaque tokens at one issuer's endpoint; answers shared through ``cache``."""

    def __init__(
        self,
        issuer: IssuerSettings,
        config: IntrospectionConfig,
        *,
        cache: BaseCache,
        leeway: float,
        http_timeout: float,
        allow_insecure_http: bool,
        max_bytes: int = MAX_ANSWER_BYTES,
        memo_size: int = 10000,
        discover: Callable[[], Mapping[str, Any]] | None = None,
        post: Requester = request_json,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer, self.config, self.cache = issuer, config, cache
        self.leeway, self.http_timeout, self.allow_insecure_http = leeway, http_timeout, allow_insecure_http
        self.max_bytes, self.post, self.clock, self.memo_size = max_bytes, post, clock, memo_size
        self._memo: dict[str, tuple[Any, Any, float, Mapping[str, Any]]] = {}
        self._memo_lock = threading.Lock()
        self._discover = discover
        self._endpoint = config.url
        issuer_id = hashlib.sha256(issuer.issuer.encode()).hexdigest()[:24]
        self.prefix = f"drf_oidc_jwks:introspection:v1:{issuer_id}:"
        self.limiter = RateLimiter(cache, self.prefix, config.max_rate, clock)
        # The rules a JWT's claims follow; "aud" is ours to decide (REQUIRE_AUDIENCE), not REQUIRED_CLAIMS'.
        required = tuple(c for c in issuer.required_claims if c != "aud")
        self._rules = dataclasses.replace(issuer, required_claims=required)
        self._rules_no_aud = dataclasses.replace(self._rules, audience=None)
        #: HTTP requests made to the introspection endpoint by this object (for checks and tests).
        self.request_count = 0

    def endpoint(self) -> str:
        """The introspection endpoint: ``URL``, else discovery's ``introspection_endpoint``."""
        if self._endpoint is not None:
            return self._endpoint
        if self._discover is None:
            raise KeySourceError("no introspection URL and no discovery")
        url = self._discover().get("introspection_endpoint")
        if not isinstance(url, str) or not url_allowed(url, self.allow_insecure_http):
            raise KeySourceError("discovery document has no acceptable introspection_endpoint")
        self._endpoint = url
        return url

    def introspect(self, raw: str, *, dpop: bool = False) -> Mapping[str, Any]:
        """Return the checked active answer for ``raw``; raise TokenError (401) or KeySourceError (503).

        ``dpop``: the token came with the DPoP scheme, so a ``cnf.jkt`` binding is left to the proof check.
        """
        return self.introspect_as(raw, _payload, dpop=dpop)

    def introspect_as(self, raw: str, build: Callable[[Mapping[str, Any]], T], *, dpop: bool = False) -> T:
        """Like :meth:`introspect`, returning ``build(answer)``, memoised in-process with the answer (e.g. Claims)."""
        now = self.clock()
        digest = token_digest(raw)
        memo = self._memo.get(digest)
        if memo is not None and memo[0] is build and now < memo[2]:
            check_bound_answer(memo[3], dpop=dpop)  # memoised from a DPoP request, now perhaps as Bearer
            value: T = memo[1]
            return value
        key = self.prefix + digest
        answer, until = self._cached(key, now)
        if answer is None:
            answer = self._fetch(raw)
            until = self._store(key, answer, now)
        if answer.get("active") is not True:
            raise TokenInactive("the introspection endpoint answered active: false")
        payload = self.check(answer, now, dpop=dpop)
        check_bound_answer(payload, dpop=dpop)
        built = build(payload)
        if until is not None and self.memo_size > 0:
            self._remember(digest, (build, built, until, payload))
        return built

    def _remember(self, digest: str, entry: tuple[Any, Any, float, Mapping[str, Any]]) -> None:
        # Checked answers kept in-process no longer than in the shared cache (until <= exp, <= CACHE_TTL):
        # a hit then costs one dict lookup, and no answer outlives the bound the shared cache keeps.
        with self._memo_lock:
            memo = self._memo
            while len(memo) >= self.memo_size:
                memo.pop(next(iter(memo)), None)
            memo[digest] = entry

    def check(self, answer: Mapping[str, Any], now: float, *, dpop: bool = False) -> Mapping[str, Any]:
        """Hold an active answer to a JWT's rules; return it as the payload ``Claims`` are built from."""
        payload = dict(answer)
        # Absent iss: the answer came from this issuer's own endpoint, with our client credentials.
        payload.setdefault("iss", self.issuer.issuer)
        token_type = payload.get("token_type")
        if isinstance(token_type, str) and token_type.lower() == "refresh_token":
            raise InvalidTokenType("introspection answer says token_type refresh_token")
        rules = self._rules if "aud" in payload or self.config.require_audience else self._rules_no_aud
        validate_claims(payload, rules, self.leeway, now, dpop=dpop)
        return MappingProxyType(payload)

    def probe(self) -> Mapping[str, Any]:
        """Introspect a random token (no cache, no rate limit): the endpoint and credentials work when it answers."""
        return self._request(base64.urlsafe_b64encode(hashlib.sha256(str(time.time_ns()).encode()).digest()).decode())

    # -- internals --

    def _cached(self, key: str, now: float) -> tuple[Mapping[str, Any] | None, float | None]:
        try:
            entry = self.cache.get(key)
        except Exception as exc:  # noqa: BLE001 - a cache outage is a miss, never a 500
            logger.warning("introspection cache read failed: %s", type(exc).__name__)
            return None, None
        if not isinstance(entry, dict) or not isinstance(entry.get("answer"), dict):
            return None, None
        until = entry.get("until")
        if not isinstance(until, (int, float)) or until <= now:
            return None, None  # backends keep entries to the next whole second
        answer: Mapping[str, Any] = entry["answer"]
        return answer, float(until)

    def _store(self, key: str, answer: Mapping[str, Any], now: float) -> float | None:
        if answer.get("active") is True:
            ttl = self.config.cache_ttl
            exp = answer.get("exp")
            if isinstance(exp, (int, float)) and not isinstance(exp, bool) and math.isfinite(exp):
                ttl = min(ttl, exp - now)
            stored: dict[str, Any] = dict(answer)  # "active" is True: this branch reads it
        else:
            ttl = self.config.inactive_cache_ttl
            stored = {"active": False}  # nothing else of an inactive answer is kept
        if ttl <= 0:
            return None
        try:
            self.cache.set(key, {"answer": stored, "until": now + ttl}, max(1, math.ceil(ttl)))
        except Exception as exc:  # noqa: BLE001
            logger.warning("introspection cache write failed: %s", type(exc).__name__)
        return now + ttl

    def _fetch(self, raw: str) -> Mapping[str, Any]:
        self.limiter.acquire()
        return self._request(raw)

    def _request(self, raw: str) -> Mapping[str, Any]:
        url = self.endpoint()
        form = {"token": raw, "token_type_hint": "access_token"}
        credentials: tuple[str, str] | None = (self.config.client_id, self.config.client_secret)
        if self.config.auth_method == "client_secret_post" and credentials is not None:
            form.update(client_id=credentials[0], client_secret=credentials[1])
            credentials = None
        self.request_count += 1
        started = time.monotonic()
        result = self.post(
            "POST",
            url,
            form=form,
            basic_auth=credentials,  # fetching form-encodes both parts first (RFC 6749 2.3.1)
            timeout=self.http_timeout,
            max_bytes=self.max_bytes,
            allow_insecure_http=self.allow_insecure_http,
        )
        if signals.listened(signals.introspection_called):
            seconds = time.monotonic() - started
            signals.emit(
                signals.introspection_called,
                Introspector,
                issuer=self.issuer.issuer,
                status=result.status,
                seconds=seconds,
            )
        if result.status != 200:
            raise KeySourceError(f"HTTP {result.status}")
        answer = result.document
        if not result.is_json or not isinstance(answer, Mapping) or not _finite(answer):
            raise KeySourceError("introspection answer is not a JSON object")
        return answer


def _finite(answer: Mapping[str, Any]) -> bool:
    # JSON has no NaN or Infinity: an answer using them is not from a conforming endpoint.
    try:
        json.dumps(answer, allow_nan=False)
    except ValueError:
        return False
    return True


_introspectors: dict[str, Introspector] = {}
_lock = threading.Lock()


def get_introspector(issuer: IssuerSettings, config: IntrospectionConfig) -> Introspector:
    """This process's introspector for ``issuer`` (kept until settings change), built from the settings."""
    found = _introspectors.get(issuer.issuer)
    if found is not None and found.issuer is issuer and found.config == config:
        return found
    from django.core.cache import caches

    from .conf import get_settings
    from .jwks import get_client

    s = get_settings()
    with _lock:
        found = Introspector(
            issuer,
            config,
            cache=caches[s.jwks_cache_alias],
            leeway=s.leeway,
            http_timeout=s.http_timeout,
            allow_insecure_http=s.allow_insecure_http,
            discover=lambda: get_client(issuer).discovery(),
        )
        _introspectors[issuer.issuer] = found
    return found


def reset_introspectors() -> None:
    """Forget every introspector of this process (settings changed, or tests)."""
    with _lock:
        _introspectors.clear()


register_reset("introspection.introspectors", reset_introspectors)
