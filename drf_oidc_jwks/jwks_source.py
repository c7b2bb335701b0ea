"""Where one issuer's keys come from: discovery, then the JWKS, conditional when validators are known.

:class:`KeySource` makes the HTTP requests of a :class:`~drf_oidc_jwks.jwks.JWKSClient` (through its
injectable fetcher), checks the discovery document, parses the JWKS, and announces each fetch (log line,
``jwks_fetched`` / ``jwks_fetch_failed``). Storing and freshness stay with the client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import signals
from .conf import IssuerSettings, Settings, url_allowed
from .exceptions import KeySourceError
from .fetching import Fetcher
from .keys import KeySet, PublicKey, parse_jwks
from .keystore import KeyStore, Validators
from .logfields import fields

logger = logging.getLogger("drf_oidc_jwks")


@dataclass(frozen=True)
class Fetched:
    """One JWKS answer: its keys (None for a 304: the held keys are unchanged), freshness and validators."""

    keys: list[PublicKey] | None
    ttl: float
    validators: Validators | None


class KeySource:
    """The HTTP side of one issuer's keys: discovery and JWKS fetches within one deadline."""

    def __init__(self, issuer: IssuerSettings, settings: Settings, fetch: Fetcher, state: KeyStore) -> None:
        self.issuer = issuer
        self.settings = settings
        self.fetch = fetch
        self.state = state
        #: How many HTTP requests were made (discovery and JWKS).
        self.fetch_count = 0

    def discover(self, deadline: float) -> Mapping[str, Any]:
        """Fetch and check the discovery document, and share it; raise KeySourceError."""
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
        self.state.write_discovery(doc, uri, self.settings.jwks_max_ttl)
        return doc

    def jwks_url(self, deadline: float) -> str:
        """``JWKS_URL``, else the discovered ``jwks_uri`` (discovering it when not cached)."""
        if self.issuer.jwks_url:
            return self.issuer.jwks_url
        return self.state.discovered_jwks_uri() or str(self.discover(deadline)["jwks_uri"])

    def fetch_jwks(self, held: KeySet | None, deadline: float | None = None) -> Fetched:
        """Fetch the JWKS (discovering first if need be), conditional on ``held``'s validators; parse it.

        One deadline (``time.monotonic()``; by default ``HTTP_TIMEOUT`` from now) bounds discovery and the JWKS.
        """
        s = self.settings
        if deadline is None:
            deadline = time.monotonic() + s.http_timeout
        url = self.jwks_url(deadline)
        sent = self.state.validators(held.version) if held is not None else None
        # Conditional only when this process holds the parsed keys a 304 would renew.
        extra = {"headers": sent.headers()} if sent is not None else {}
        self.fetch_count += 1
        started = time.monotonic()
        try:
            result = self.fetch(
                url,
                timeout=max(0.001, deadline - time.monotonic()),
                max_bytes=s.jwks_max_bytes,
                allow_insecure_http=s.allow_insecure_http,
                **extra,
            )
            max_age = result.max_age
            ttl = s.jwks_cache_ttl if max_age is None else min(max(max_age, s.jwks_min_ttl), s.jwks_max_ttl)
            validators = Validators(result.etag, result.last_modified) if result.etag or result.last_modified else sent
            if result.status == 304 and held is not None:
                keys, count = None, len(held.keys)  # renewed: the held keys stay, not re-parsed
            else:
                keys = parse_jwks(result.document, s.min_rsa_key_size)[1]
                count = len(keys)
        except KeySourceError as exc:
            if not self.issuer.jwks_url:
                self.state.forget_jwks_uri()  # the jwks_uri may have moved: rediscover next time
            if signals.listened(signals.jwks_fetch_failed):
                signals.emit(
                    signals.jwks_fetch_failed, KeySource, issuer=self.issuer.issuer, url=url, reason=exc.reason
                )
            raise
        self.announce(url, result.status, time.monotonic() - started, count, ttl)
        return Fetched(keys, ttl, validators)

    def announce(self, url: str, status: int, seconds: float, keys: int, ttl: float) -> None:
        """Log a JWKS fetch and send ``jwks_fetched`` (only when someone listens)."""
        issuer = self.issuer.issuer
        what = "revalidated (304)" if status == 304 else "fetched"
        logger.info("JWKS for %s %s: %d key(s), fresh for %.0fs", issuer, what, keys, ttl, extra=fields(issuer=issuer))
        if signals.listened(signals.jwks_fetched):
            signals.emit(
                signals.jwks_fetched, KeySource, issuer=issuer, url=url, status=status, seconds=seconds, keys=keys
            )
