"""Discovery and JWKS fetching, stored in Django's cache, memoised in-process.

One shared copy of each issuer's key set lives in the cache named by
``JWKS_CACHE_ALIAS``; every process keeps the parsed keys of the version it last
saw, so the hot path neither touches the cache nor parses JSON or JWKs while that
version is fresh. Refreshes are single-flight through a lock held in the cache
itself; an unknown ``kid`` refetches at most once per ``JWKS_REFRESH_COOLDOWN``
(also shared through the cache); a failing identity provider leaves the last good
keys serving for ``JWKS_MAX_STALE`` seconds past freshness. See docs/jwks-cache.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from django.core.cache import BaseCache, caches
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import PyJWTError

from .conf import IssuerSettings, Settings, get_settings, register_reset, url_allowed
from .exceptions import KeySourceError, UnknownKey, UnsupportedAlgorithm

logger = logging.getLogger("drf_oidc_jwks")

#: JWK members kept from a published key: public parts only. A published private
#: member (``d``, ``p``...) is dropped, never used.
_PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "key_ops", "n", "e", "crv", "x", "y")

_CURVE_FOR_ALG = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_ALGORITHMS = get_default_algorithms()


def key_allows(kty: str, crv: str | None, declared_alg: str | None, alg: str) -> bool:
    """Say whether a key of this type/curve (and declared ``alg``) may verify ``alg`` tokens.

    A key's own ``alg`` wins; keys without one (Better Auth publishes none) are
    matched by ``kty``/``crv`` so an EC or OKP key can never verify an RS* token.
    """
    if declared_alg is not None and declared_alg != alg:
        return False
    if alg.startswith(("RS", "PS")):
        return kty == "RSA"
    if alg in _CURVE_FOR_ALG:
        return kty == "EC" and crv == _CURVE_FOR_ALG[alg]
    if alg == "EdDSA":
        return kty == "OKP" and crv in ("Ed25519", "Ed448")
    return False


@dataclass(frozen=True)
class PublicKey:
    """One usable verification key of a JWKS."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    size: int | None
    key: Any
    jwk: Mapping[str, Any]

    def allows(self, alg: str) -> bool:
        return key_allows(self.kty, self.crv, self.alg, alg)


def parse_key(jwk: Any, min_rsa_size: int) -> PublicKey:
    """Build a :class:`PublicKey` from one JWK, raising ValueError when it is unusable."""
    if not isinstance(jwk, Mapping):
        raise ValueError("key is not an object")
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        # "oct" keys are refused outright: a symmetric secret has no place in a public JWKS.
        raise ValueError(f"unsupported kty {str(kty)[:16]!r}")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise ValueError("key is not for signatures")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ValueError("key_ops do not allow verify")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid is not a string")
    alg = jwk.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in _ALGORITHMS):  # a list is unhashable: no 500
        raise ValueError(f"unsupported alg {str(alg)[:16]!r}")
    crv = jwk.get("crv")
    public = {k: jwk[k] for k in _PUBLIC_MEMBERS if k in jwk}
    for member in ("n", "e", "crv", "x", "y"):
        if member in public and not isinstance(public[member], str):
            raise ValueError(f"{member} is not a string")
    try:
        if kty == "RSA":
            key = _ALGORITHMS["RS256"].from_jwk(public)
            size = key.key_size
            if size < min_rsa_size:
                raise ValueError(f"RSA key of {size} bits is below the minimum of {min_rsa_size}")
        elif kty == "EC":
            if crv not in ("P-256", "P-384", "P-521"):
                raise ValueError(f"unsupported curve {str(crv)[:16]!r}")
            key = _ALGORITHMS["ES256"].from_jwk(public)
            size = key.curve.key_size
        else:
            if crv not in ("Ed25519", "Ed448"):
                raise ValueError(f"unsupported curve {str(crv)[:16]!r}")
            key = _ALGORITHMS["EdDSA"].from_jwk(public)
            size = None
    except (PyJWTError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"key could not be built: {type(exc).__name__}") from None
    if hasattr(key, "private_numbers"):
        raise ValueError("private key")  # pragma: no cover - private members are stripped above
    return PublicKey(kid=kid, kty=kty, crv=crv, alg=alg, size=size, key=key, jwk=public)


@dataclass(frozen=True)
class KeySet:
    """A parsed JWKS of one version, with its freshness."""

    version: str
    keys: tuple[PublicKey, ...]
    fetched_at: float
    fresh_until: float
    stale_until: float

    def by_kid(self, kid: str | None) -> list[PublicKey]:
        return [k for k in self.keys if k.kid == kid]


def parse_jwks(document: Any, min_rsa_size: int) -> tuple[list[dict[str, Any]], list[PublicKey]]:
    """Return the usable keys of a JWKS document; raise KeySourceError when there are none."""
    if not isinstance(document, Mapping):
        raise KeySourceError("JWKS is not a JSON object")
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list):
        raise KeySourceError("JWKS has no 'keys' list")
    usable: list[PublicKey] = []
    for index, jwk in enumerate(raw_keys[:256]):
        try:
            usable.append(parse_key(jwk, min_rsa_size))
        except ValueError as exc:
            logger.warning("JWKS key %d skipped: %s", index, exc)
    if not usable:
        raise KeySourceError("JWKS holds no usable signing key")
    return [dict(k.jwk) for k in usable], usable


# ---------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class FetchResult:
    document: Any
    max_age: float | None


class Fetcher(Protocol):
    def __call__(self, url: str, *, timeout: float, max_bytes: int, allow_insecure_http: bool) -> FetchResult: ...


_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(no-cache|no-store)(?:$|[,\s=])", re.IGNORECASE)


def parse_max_age(cache_control: str | None) -> float | None:
    """Return the freshness lifetime a ``Cache-Control`` header asks for, or None."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


_session_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_session_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxies or netrc from the environment for key fetches
        _session_local.session = session
    return session


def http_fetch(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    allow_insecure_http: bool,
    headers: Mapping[str, str] | None = None,
) -> FetchResult:
    """GET a JSON document within ``timeout`` seconds in all, at most ``max_bytes`` long.

    Redirects are followed only on the same scheme, host and port, three at most.
    """
    deadline = time.monotonic() + timeout
    for _hop in range(4):
        if not url_allowed(url, allow_insecure_http):
            raise KeySourceError("URL not allowed (https required)")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KeySourceError("timed out")
        try:
            response = _session().get(
                url,
                timeout=(remaining, remaining),
                allow_redirects=False,
                stream=True,
                headers={"Accept": "application/json, application/jwk-set+json", **(headers or {})},
            )
        except requests.RequestException as exc:
            raise KeySourceError(f"request failed: {type(exc).__name__}") from None
        with response:
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("Location", "")
                target = requests.compat.urljoin(url, location)
                a, b = urlsplit(url), urlsplit(target)
                if (a.scheme, a.hostname, a.port) != (b.scheme, b.hostname, b.port):
                    raise KeySourceError("redirect to another host refused")
                url = target
                continue
            if response.status_code != 200:
                raise KeySourceError(f"HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise KeySourceError(f"response larger than {max_bytes} bytes")
            body = bytearray()
            try:
                for chunk in response.iter_content(16384):
                    body += chunk
                    if len(body) > max_bytes:
                        raise KeySourceError(f"response larger than {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise KeySourceError("timed out")
            except requests.RequestException as exc:
                raise KeySourceError(f"reading failed: {type(exc).__name__}") from None
            try:
                document = json.loads(bytes(body))
            except (ValueError, RecursionError):
                raise KeySourceError("response is not JSON") from None
            return FetchResult(document, parse_max_age(response.headers.get("Cache-Control")))
    raise KeySourceError("too many redirects")


# ---------------------------------------------------------------------------
# Client


def _timeout(seconds: float) -> int:
    # Cache backends take whole seconds and read 0 as "expire now".
    return max(1, math.ceil(seconds))


class JWKSClient:
    """Keys of one issuer: shared through Django's cache, memoised in this process."""

    def __init__(
        self,
        issuer: IssuerSettings,
        settings: Settings,
        *,
        fetch: Fetcher = http_fetch,
        clock: Callable[[], float] = time.time,
        cache: BaseCache | None = None,
    ) -> None:
        self.issuer = issuer
        self.settings = settings
        self.fetch = fetch
        self.clock = clock
        self.cache = cache if cache is not None else caches[settings.jwks_cache_alias]
        digest = hashlib.sha256(f"{issuer.issuer}|{issuer.jwks_url or ''}".encode()).hexdigest()[:24]
        self._prefix = f"drf_oidc_jwks:v1:{digest}:"
        self._memo: KeySet | None = None
        self._local_lock = threading.Lock()
        #: How many HTTP requests this client made (discovery and JWKS): for checks and tests.
        self.fetch_count = 0
        #: The failure backoff, also kept here: with the cache down, the shared marker cannot be stored.
        self._failed_until = 0.0

    # -- cache access that never raises: a cache outage degrades, never 500s --

    def _cache_get(self, name: str) -> Any:
        try:
            return self.cache.get(self._prefix + name)
        except Exception as exc:  # noqa: BLE001 - any backend error is an outage
            logger.warning("JWKS cache read failed: %s", type(exc).__name__)
            return None

    def _cache_set(self, name: str, value: Any, timeout: float) -> None:
        try:
            self.cache.set(self._prefix + name, value, _timeout(timeout))
        except Exception as exc:  # noqa: BLE001
            logger.warning("JWKS cache write failed: %s", type(exc).__name__)

    def _cache_add(self, name: str, value: Any, timeout: float) -> bool | None:
        """``cache.add``; None when the cache is unreachable."""
        try:
            return bool(self.cache.add(self._prefix + name, value, _timeout(timeout)))
        except Exception as exc:  # noqa: BLE001
            logger.warning("JWKS cache add failed: %s", type(exc).__name__)
            return None

    def _cache_delete(self, name: str) -> None:
        try:
            self.cache.delete(self._prefix + name)
        except Exception as exc:  # noqa: BLE001
            logger.warning("JWKS cache delete failed: %s", type(exc).__name__)

    # -- key sets --

    def _adopt(self, entry: Any) -> KeySet | None:
        """Turn a shared cache entry into a KeySet, reusing the memo for the same version."""
        if not isinstance(entry, dict) or "version" not in entry:
            return None
        memo = self._memo
        if memo is not None and memo.version == entry["version"] and memo.fetched_at == entry["fetched_at"]:
            return memo
        if memo is not None and memo.version == entry["version"]:
            keys = memo.keys  # same keys, new freshness: keep the parsed objects (and memoised tokens)
        else:
            try:
                keys = tuple(parse_key(jwk, self.settings.min_rsa_key_size) for jwk in entry["keys"])
            except (ValueError, KeyError, TypeError):
                return None
        keyset = KeySet(
            version=entry["version"],
            keys=keys,
            fetched_at=entry["fetched_at"],
            fresh_until=entry["fresh_until"],
            stale_until=entry["stale_until"],
        )
        if memo is None or keyset.fetched_at >= memo.fetched_at:
            self._memo = keyset
        return keyset

    def _shared(self) -> KeySet | None:
        return self._adopt(self._cache_get("jwks"))

    def _newest(self, current: KeySet | None) -> KeySet | None:
        shared = self._shared()
        if shared is not None and (current is None or shared.fetched_at > current.fetched_at):
            return shared
        return current

    def current_keyset(self) -> KeySet:
        """Return fresh keys, else the last good ones within ``JWKS_MAX_STALE``, else raise."""
        keyset = self._memo
        now = self.clock()
        if keyset is not None and now < keyset.fresh_until:
            return keyset
        keyset = self._newest(keyset)
        if keyset is not None and now < keyset.fresh_until:
            return keyset
        try:
            return self.refresh(keyset)
        except KeySourceError as exc:
            if keyset is not None and self.clock() < keyset.stale_until:
                logger.warning(
                    "serving stale JWKS for %s (%.0fs past freshness): %s",
                    self.issuer.issuer,
                    self.clock() - keyset.fresh_until,
                    exc.reason,
                )
                return keyset
            raise

    def refresh(self, current: KeySet | None, *, wait: bool = False) -> KeySet:
        """Fetch a new key set unless another process just did; single-flight through the cache."""
        backoff = self._cache_get("failed")
        if not isinstance(backoff, (int, float)) or backoff < self._failed_until:
            backoff = self._failed_until  # the cache is down (or forgot): still no fetch per request
        if backoff > self.clock():
            raise KeySourceError("identity provider failed recently", retry_after=backoff - self.clock())
        owner = uuid.uuid4().hex
        acquired = self._acquire(owner)
        if not acquired:
            if not wait and current is not None and self.clock() < current.stale_until:
                # Someone else is fetching; keep serving what we have meanwhile.
                raise KeySourceError("refresh in progress elsewhere")
            return self._wait_for_other(current)
        try:
            newer = self._newest(current)
            if newer is not None and newer is not current and self.clock() < newer.fresh_until:
                return newer
            backoff = self._cache_get("failed")
            if isinstance(backoff, (int, float)) and backoff > self.clock():
                # The previous holder of the lock failed while we waited for it: honour its backoff
                # instead of hitting the struggling IdP again at once (tests/test_faults.py, slow IdP).
                raise KeySourceError("identity provider failed recently", retry_after=backoff - self.clock())
            try:
                keyset = self._fetch_and_store()
            except KeySourceError as exc:
                until = self._failed_until = self.clock() + self.settings.jwks_failure_backoff
                self._cache_set("failed", until, self.settings.jwks_failure_backoff)
                exc.retry_after = max(exc.retry_after, self.settings.jwks_failure_backoff)
                logger.warning("JWKS refresh for %s failed: %s", self.issuer.issuer, exc.reason)
                raise
            return keyset
        finally:
            self._release(owner, acquired)

    def _acquire(self, owner: str) -> bool | str:
        ttl = self.settings.http_timeout * 2 + 1
        added = self._cache_add("lock", owner, ttl)
        if added is None:
            # Cache unreachable: single-flight within this process at least.
            return "local" if self._local_lock.acquire(blocking=False) else False
        if not added:
            return False
        # Read back: backends whose add() is not atomic (FileBasedCache) can let two in.
        return self._cache_get("lock") in (owner, None)

    def _release(self, owner: str, acquired: bool | str) -> None:
        if acquired == "local":
            self._local_lock.release()
        elif self._cache_get("lock") == owner:
            self._cache_delete("lock")

    def _wait_for_other(self, current: KeySet | None) -> KeySet:
        deadline = time.monotonic() + self.settings.http_timeout + 0.5
        since = current.fetched_at if current is not None else -1.0
        while time.monotonic() < deadline:
            time.sleep(0.05)
            keyset = self._shared()
            if keyset is not None and keyset.fetched_at > since:
                return keyset
            failed = self._cache_get("failed")
            if isinstance(failed, (int, float)) and failed > self.clock():
                raise KeySourceError("identity provider failed", retry_after=failed - self.clock())
            if self._cache_get("lock") is None:
                keyset = self._shared()  # the holder is done (or the cache is down): last look
                if keyset is not None and keyset.fetched_at > since:
                    return keyset
                break
        raise KeySourceError("timed out waiting for the JWKS", retry_after=self.settings.jwks_failure_backoff)

    def _jwks_url(self, deadline: float) -> str:
        if self.issuer.jwks_url:
            return self.issuer.jwks_url
        cached = self._cache_get("discovery")
        if isinstance(cached, str):
            return cached
        return str(self._discover(deadline)["jwks_uri"])  # a string: checked by _discover

    def discovery(self) -> Mapping[str, Any]:
        """The issuer's discovery document (its ``issuer`` checked), from the shared cache or fetched.

        Raises KeySourceError when it cannot be had within ``HTTP_TIMEOUT``.
        """
        doc = self._cache_get("discovery_doc")
        if isinstance(doc, Mapping):
            return doc
        return self._discover(time.monotonic() + self.settings.http_timeout)

    def _discover(self, deadline: float) -> Mapping[str, Any]:
        self.fetch_count += 1
        result = self.fetch(
            self.issuer.discovery_url,
            timeout=max(0.001, deadline - time.monotonic()),
            max_bytes=self.settings.jwks_max_bytes,
            allow_insecure_http=self.settings.allow_insecure_http,
        )
        doc = result.document
        if not isinstance(doc, Mapping):
            raise KeySourceError("discovery document is not a JSON object")
        if doc.get("issuer") != self.issuer.issuer:
            raise KeySourceError("discovery document names another issuer")
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str) or not url_allowed(uri, self.settings.allow_insecure_http):
            raise KeySourceError("discovery document has no acceptable jwks_uri")
        self._cache_set("discovery", uri, self.settings.jwks_max_ttl)
        self._cache_set("discovery_doc", dict(doc), self.settings.jwks_max_ttl)
        return doc

    def discovery_document(self) -> Mapping[str, Any] | None:
        """The issuer's discovery document as last fetched, when discovery is in use."""
        doc = self._cache_get("discovery_doc")
        return doc if isinstance(doc, Mapping) else None

    def _fetch_and_store(self) -> KeySet:
        s = self.settings
        deadline = time.monotonic() + s.http_timeout
        url = self._jwks_url(deadline)
        self.fetch_count += 1
        try:
            result = self.fetch(
                url,
                timeout=max(0.001, deadline - time.monotonic()),
                max_bytes=s.jwks_max_bytes,
                allow_insecure_http=s.allow_insecure_http,
            )
        except KeySourceError:
            if not self.issuer.jwks_url:
                self._cache_delete("discovery")  # the jwks_uri may have moved: rediscover next time
            raise
        raw_keys, keys = parse_jwks(result.document, s.min_rsa_key_size)
        if result.max_age is None:
            ttl = s.jwks_cache_ttl
        else:
            ttl = min(max(result.max_age, s.jwks_min_ttl), s.jwks_max_ttl)
        now = self.clock()
        version = hashlib.sha256(json.dumps(raw_keys, sort_keys=True).encode()).hexdigest()[:16]
        memo = self._memo
        keyset = KeySet(
            version=version,
            keys=memo.keys if memo is not None and memo.version == version else tuple(keys),
            fetched_at=now,
            fresh_until=now + ttl,
            stale_until=now + ttl + s.jwks_max_stale,
        )
        entry = {
            "version": version,
            "keys": raw_keys,
            "fetched_at": now,
            "fresh_until": keyset.fresh_until,
            "stale_until": keyset.stale_until,
        }
        self._cache_set("jwks", entry, ttl + s.jwks_max_stale)
        self._cache_delete("failed")
        self._failed_until = 0.0
        self._memo = keyset
        logger.info("JWKS for %s fetched: %d key(s), fresh for %.0fs", self.issuer.issuer, len(keys), ttl)
        return keyset

    # -- the questions asked per token --

    def holds(self, key: PublicKey) -> bool:
        """Say whether ``key`` is still in the current key set (for memoised tokens)."""
        keyset = self._memo
        if keyset is None or self.clock() >= keyset.fresh_until:
            keyset = self.current_keyset()
        return any(k is key for k in keyset.keys)

    def get_key(self, kid: str | None, alg: str) -> PublicKey:
        """Return the key that may verify a token with this ``kid`` and ``alg``.

        Raises TokenError (``unknown_key``/``unsupported_algorithm``) or KeySourceError.
        """
        keyset = self.current_keyset()
        if kid is None:
            return self._only_key(keyset, alg)
        found = keyset.by_kid(kid)
        if not found:
            keyset = self._refresh_for_unknown_kid(keyset)
            found = keyset.by_kid(kid)
            if not found:
                raise UnknownKey(f"no key with kid {kid!r}")
        for key in found:
            if key.allows(alg):
                return key
        raise UnsupportedAlgorithm(
            f"key {kid!r} ({found[0].kty}/{found[0].crv or found[0].alg}) cannot verify {alg}",
            description="The token's algorithm does not match its key.",
        )

    def _only_key(self, keyset: KeySet, alg: str) -> PublicKey:
        if len(keyset.keys) != 1:
            raise UnknownKey(
                f"no kid; JWKS holds {len(keyset.keys)} keys",
                description="The token names no key and the issuer has several.",
            )
        key = keyset.keys[0]
        if not key.allows(alg):
            raise UnsupportedAlgorithm(description="The token's algorithm does not match its key.")
        return key

    def _refresh_for_unknown_kid(self, keyset: KeySet) -> KeySet:
        newer = self._newest(keyset)
        if newer is not keyset and newer is not None:
            return newer
        now = self.clock()
        if not self._cache_add("cooldown", now, self.settings.jwks_refresh_cooldown):
            # Refetched recently (by any process): do not let random kids drive traffic. But a refetch
            # in flight, or triggered a moment ago, may bring this very kid (a key rotation met by many
            # requests at once): wait for it, or a token signed with a published key would be refused
            # (tests/test_faults.py, key rotation under load).
            since = self._cache_get("cooldown")
            just_triggered = isinstance(since, (int, float)) and 0 <= now - since < 1.0
            if just_triggered or self._cache_get("lock") is not None:
                try:
                    return self._wait_for_other(keyset)
                except KeySourceError:
                    pass
            return self._newest(keyset) or keyset
        logger.info("unknown kid: refreshing JWKS for %s", self.issuer.issuer)
        return self.refresh(keyset, wait=True)


_clients: dict[str, JWKSClient] = {}
_clients_lock = threading.Lock()


def get_client(issuer: IssuerSettings) -> JWKSClient:
    """Return this process's JWKS client for ``issuer`` (one per issuer, kept until settings change)."""
    client = _clients.get(issuer.issuer)
    if client is None or client.issuer is not issuer:
        with _clients_lock:
            client = _clients.get(issuer.issuer)
            if client is None or client.issuer is not issuer:
                client = JWKSClient(issuer, get_settings())
                _clients[issuer.issuer] = client
    return client


def reset_clients() -> None:
    """Forget every in-process memo (settings changed, or tests)."""
    with _clients_lock:
        _clients.clear()


register_reset("jwks.clients", reset_clients)


def install_jwks(issuer: IssuerSettings, document: Any, ttl: float | None = None) -> KeySet:
    """Store ``document`` as ``issuer``'s JWKS in the shared cache exactly as a fetch would, without HTTP.

    For tests and for warming a cache; ``ttl`` defaults to ``JWKS_CACHE_TTL``. Raises KeySourceError
    when the document holds no usable key.
    """
    client = get_client(issuer)
    s = client.settings
    raw_keys, _keys = parse_jwks(document, s.min_rsa_key_size)
    ttl = s.jwks_cache_ttl if ttl is None else ttl
    now = client.clock()
    entry = {
        "version": hashlib.sha256(json.dumps(raw_keys, sort_keys=True).encode()).hexdigest()[:16],
        "keys": raw_keys,
        "fetched_at": now,
        "fresh_until": now + ttl,
        "stale_until": now + ttl + s.jwks_max_stale,
    }
    client._cache_set("jwks", entry, ttl + s.jwks_max_stale)
    client._cache_delete("failed")
    keyset = client._adopt(entry)
    assert keyset is not None  # parse_jwks accepted these very keys
    client._memo = keyset
    return keyset
