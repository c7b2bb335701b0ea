"""The issuer's userinfo endpoint (per-issuer ``USERINFO``): user fields an access token leaves empty.

Asked only when a user is created or its claims changed, with the presented token, and cached per
subject for ``USERINFO_CACHE_TTL`` seconds. Best effort: a failure never refuses a valid token.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import caches

from .claims import Claims
from .conf import IssuerSettings, Settings, url_allowed
from .exceptions import KeySourceError
from .jwks import get_client, http_fetch
from .user_state import identity_digest

logger = logging.getLogger("drf_oidc_jwks")


def userinfo_url(issuer: IssuerSettings, s: Settings) -> str | None:
    """Return ``USERINFO_URL``, else discovery's ``userinfo_endpoint``; None when neither is usable."""
    if issuer.userinfo_url:
        return issuer.userinfo_url
    try:
        doc = get_client(issuer).discovery()
    except KeySourceError as exc:
        logger.warning("userinfo: discovery failed: %s", exc.reason)
        return None
    url = doc.get("userinfo_endpoint")
    return url if isinstance(url, str) and url_allowed(url, s.allow_insecure_http) else None


def _cache_key(claims: Claims) -> str:
    return f"drf_oidc_jwks:userinfo:{identity_digest(claims.issuer or '', claims.sub or '')}"


def userinfo(claims: Claims, issuer: IssuerSettings, s: Settings, token: str | None = None) -> dict[str, Any] | None:
    """Return the issuer's userinfo for ``token`` (the bearer ``claims`` came from), cached per subject.

    None when it cannot be had (no token, no endpoint, a failure): never raises.
    """
    key = _cache_key(claims)
    cache = caches[s.user_cache_alias]
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001
        cached = None
    if isinstance(cached, dict):
        return cached
    url = userinfo_url(issuer, s) if token else None
    if not url:
        return None
    try:
        result = http_fetch(
            url,
            timeout=s.http_timeout,
            max_bytes=s.jwks_max_bytes,
            allow_insecure_http=s.allow_insecure_http,
            headers={"Authorization": f"Bearer {token}"},
        )
    except KeySourceError as exc:
        logger.warning("userinfo request failed: %s", exc.reason)
        return None
    info = result.document
    if not isinstance(info, dict) or info.get("sub") != claims.sub:
        # OIDC Core 5.3.4: a response for another subject must not be used.
        logger.warning("userinfo response ignored: not an object for the token's subject")
        return None
    try:
        cache.set(key, info, timeout=max(1, int(s.userinfo_cache_ttl)))
    except Exception:  # noqa: BLE001
        logger.warning("userinfo cache unavailable; not caching")
    return info
