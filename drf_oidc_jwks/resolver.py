"""``ISSUER_RESOLVER``: issuers looked up at run time (tenants kept in a database), cached per process.

The resolver is the user's ``resolve(unverified_iss, request) -> dict | None``. Its answer is one
issuer's settings, validated exactly like an ``ISSUERS`` entry by the ``build`` function given to
:class:`ResolverCache` before anything uses it, so no URL it names is fetched unvalidated.

Outcomes, each cached in this process:

* settings: used for ``ISSUER_RESOLVER_CACHE_TTL`` seconds (default 300);
* None, or settings that fail validation: 401 ``invalid_issuer`` for ``ISSUER_RESOLVER_NEGATIVE_TTL``
  seconds (default 60), logged (invalid settings at ERROR: that is a bug in the resolver);
* the resolver raised: 503 ``idp_unavailable`` with ``Retry-After`` for ``ISSUER_RESOLVER_FAILURE_TTL``
  seconds (default 5), logged at WARNING.

A flood of distinct unknown issuers costs one resolver call per issuer per period: unknown and known
issuers are kept in separate bounded maps, so the flood never evicts a known tenant, and concurrent
requests for one issuer wait for a single call.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, NamedTuple, TypeVar

from django.core.exceptions import ImproperlyConfigured

from .exceptions import InvalidIssuer, KeySourceError
from .logfields import safe

__all__ = [
    "DEFAULT_TTL",
    "DEFAULT_NEGATIVE_TTL",
    "DEFAULT_FAILURE_TTL",
    "DEFAULT_SIZE",
    "ResolverCache",
    "current_request",
    "handing_request",
    "load_resolver",
    "plausible_issuer",
]

logger = logging.getLogger("drf_oidc_jwks")

DEFAULT_TTL = 300.0
DEFAULT_NEGATIVE_TTL = 60.0
DEFAULT_FAILURE_TTL = 5.0
DEFAULT_SIZE = 1024
#: Longest ``iss`` handed to a resolver.
MAX_ISSUER_LENGTH = 1024

T = TypeVar("T")
Resolve = Callable[[str, Any], Any]

# An absolute http(s) URL of printable ASCII with no whitespace, quotes or braces: anything else is no issuer.
_PLAUSIBLE = re.compile(r"https?://[!#-z|~]+")


# The request being authenticated, for the resolver's second argument: verify_token's signature carries
# no request, and a context variable follows the request through threads and asyncio tasks alike.
_request: contextvars.ContextVar[Any] = contextvars.ContextVar("drf_oidc_jwks_request", default=None)


@contextmanager
def handing_request(request: Any) -> Iterator[None]:
    """Hand ``request`` to ``ISSUER_RESOLVER`` for tokens verified inside this block (JWKSAuthentication does)."""
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


def current_request() -> Any:
    """The request being authenticated (see :func:`handing_request`), or None outside one."""
    return _request.get()


def plausible_issuer(iss: object) -> bool:
    """Say whether ``iss`` could be an issuer at all (a bounded http(s) URL); only those reach the resolver."""
    return isinstance(iss, str) and len(iss) <= MAX_ISSUER_LENGTH and bool(_PLAUSIBLE.fullmatch(iss))


def load_resolver(path: object) -> Resolve:
    """Import the ``ISSUER_RESOLVER`` dotted path; ImproperlyConfigured naming the key when it is not a callable."""
    from django.utils.module_loading import import_string

    if not isinstance(path, str) or not path:
        raise ImproperlyConfigured(f"ISSUER_RESOLVER must be a dotted path to a function, not {path!r}.")
    try:
        func = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"ISSUER_RESOLVER {path!r} cannot be imported: {exc}") from None
    if not callable(func):
        raise ImproperlyConfigured(f"ISSUER_RESOLVER {path!r} is not callable.")
    resolve: Resolve = func
    return resolve


class _Outcome(NamedTuple):
    until: float
    settings: Any = None
    #: "unknown" (401) or "failed" (503); empty for settings.
    refusal: str = ""


def _put(store: dict[str, _Outcome], key: str, value: _Outcome, maxsize: int) -> None:
    store.pop(key, None)
    while len(store) >= maxsize:
        store.pop(next(iter(store)))  # oldest first: dicts keep insertion order
    store[key] = value


class ResolverCache(Generic[T]):
    """Call ``resolve`` at most once per issuer per period; return validated settings or raise a clean error."""

    def __init__(
        self,
        resolve: Resolve,
        build: Callable[[Mapping[str, Any]], T],
        *,
        ttl: float = DEFAULT_TTL,
        negative_ttl: float = DEFAULT_NEGATIVE_TTL,
        failure_ttl: float = DEFAULT_FAILURE_TTL,
        maxsize: int = DEFAULT_SIZE,
        wait_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolve, self.build = resolve, build
        self.ttl, self.negative_ttl, self.failure_ttl = ttl, negative_ttl, failure_ttl
        self.maxsize = max(1, maxsize)
        self.wait_timeout = wait_timeout
        self.clock = clock
        #: How many times the resolver was called (for tests and the benchmark).
        self.calls = 0
        self._known: dict[str, _Outcome] = {}
        self._unknown: dict[str, _Outcome] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def lookup(self, iss: object, request: Any = None) -> T:
        """Return the settings for the unverified ``iss``; raise InvalidIssuer (401) or KeySourceError (503)."""
        if not plausible_issuer(iss):
            raise InvalidIssuer("iss is not an http(s) URL: not handed to ISSUER_RESOLVER")
        key: str = iss  # type: ignore[assignment]  # checked by plausible_issuer
        while True:
            with self._lock:
                hit = self._cached(key)
                if hit is not None:
                    return self._answer(hit)
                event = self._inflight.get(key)
                if event is None:
                    event = self._inflight[key] = threading.Event()
                    break
            # Another thread is resolving this issuer: wait for its answer rather than call again.
            if not event.wait(self.wait_timeout):
                raise KeySourceError("ISSUER_RESOLVER is still resolving this issuer", retry_after=self.failure_ttl)
        try:
            outcome = self._resolve(key, request)
            with self._lock:
                store = self._known if not outcome.refusal else self._unknown
                _put(store, key, outcome, self.maxsize)
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            event.set()
        return self._answer(outcome)

    def peek(self, iss: object) -> T | None:
        """The settings already resolved for ``iss`` and still fresh, else None; never calls the resolver."""
        hit = self._known.get(iss) if isinstance(iss, str) else None
        if hit is None or self.clock() >= hit.until:
            return None
        settings: T = hit.settings
        return settings

    def expires_in(self, iss: str) -> float:
        """Seconds until the settings resolved for ``iss`` are asked for again (0 when none are held)."""
        hit = self._known.get(iss)
        return max(0.0, hit.until - self.clock()) if hit is not None else 0.0

    def _cached(self, key: str) -> _Outcome | None:
        now = self.clock()
        for store in (self._known, self._unknown):
            hit = store.get(key)
            if hit is not None:
                if now < hit.until:
                    return hit
                store.pop(key, None)
        return None

    def _answer(self, outcome: _Outcome) -> T:
        if outcome.refusal == "failed":
            remaining = max(1.0, outcome.until - self.clock())
            raise KeySourceError("ISSUER_RESOLVER failed for this issuer", retry_after=remaining)
        if outcome.refusal:
            raise InvalidIssuer("ISSUER_RESOLVER does not know this issuer")
        settings: T = outcome.settings
        return settings

    def _resolve(self, iss: str, request: Any) -> _Outcome:
        now = self.clock()
        self.calls += 1
        try:
            raw = self.resolve(iss, request)
        except Exception as exc:  # noqa: BLE001 - the user's resolver failing must be a 503, never a 500
            logger.warning("ISSUER_RESOLVER raised %s for iss=%s", type(exc).__name__, safe(iss), exc_info=True)
            return _Outcome(now + self.failure_ttl, refusal="failed")
        if raw is None:
            logger.info("ISSUER_RESOLVER does not know iss=%s", safe(iss))
            return _Outcome(now + self.negative_ttl, refusal="unknown")
        problem = self._problem(iss, raw)
        if problem is None:
            try:
                return _Outcome(now + self.ttl, self.build(raw))
            except Exception as exc:  # noqa: BLE001 - ImproperlyConfigured, or any failure of validation
                problem = safe(str(exc), 400)
        logger.error("ISSUER_RESOLVER returned invalid settings for iss=%s: %s", safe(iss), problem)
        return _Outcome(now + self.negative_ttl, refusal="unknown")

    @staticmethod
    def _problem(iss: str, raw: object) -> str | None:
        if not isinstance(raw, Mapping):
            return f"a {type(raw).__name__}, not a dict of issuer settings"
        if raw.get("ISSUER") != iss:
            # The resolver must answer for this very issuer: a template or a neighbour would widen trust.
            return "its ISSUER is not the token's iss"
        if "AUDIENCE" not in raw:
            return "no AUDIENCE (give the audience, or None to opt out explicitly)"
        return None

    def clear(self) -> None:
        """Forget every cached outcome (settings changed, or tests)."""
        with self._lock:
            self._known.clear()
            self._unknown.clear()

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)
