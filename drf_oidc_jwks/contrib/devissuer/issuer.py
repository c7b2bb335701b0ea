"""The development issuer's key, discovery document, JWKS and token minting.

Settings (all optional):

- ``DEV_ISSUER_URL``: the issuer URL, default ``DRF_OIDC_JWKS["ISSUER"]`` (or the first of ``ISSUERS``);
  it must be on a loopback host.
- ``DEV_ISSUER_KEY_FILE``: where the RSA private key is kept, default ``BASE_DIR / "dev_issuer_key.pem"``;
  created (mode 0600) on first use. Keep it out of version control.
- ``DEV_ISSUER_AUDIENCE``: the ``aud`` of minted tokens, default the first ``DRF_OIDC_JWKS["AUDIENCE"]``.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from drf_oidc_jwks.testing import SigningKey

ALGORITHM = "RS256"
_KEYS: dict[Path, SigningKey] = {}
_LOCK = threading.Lock()


def _configured_issuer() -> Any:
    raw = getattr(settings, "DRF_OIDC_JWKS", None)
    if not isinstance(raw, Mapping):
        return None
    if raw.get("ISSUER"):
        return raw["ISSUER"]
    issuers = raw.get("ISSUERS")
    if isinstance(issuers, (list, tuple)) and issuers and isinstance(issuers[0], Mapping):
        return issuers[0].get("ISSUER")
    return None


def issuer_url() -> str:
    """Return the issuer URL: ``DEV_ISSUER_URL``, else the configured ``DRF_OIDC_JWKS`` issuer."""
    url = getattr(settings, "DEV_ISSUER_URL", None) or _configured_issuer()
    if not isinstance(url, str) or not url:
        raise ImproperlyConfigured(
            "drf_oidc_jwks.contrib.devissuer has no issuer URL: set DEV_ISSUER_URL or DRF_OIDC_JWKS['ISSUER'], "
            'e.g. "http://127.0.0.1:8000/dev-issuer".'
        )
    return url.rstrip("/")


def is_loopback_url(url: str) -> bool:
    """Say whether ``url`` is http(s) on localhost, 127.0.0.0/8 or ::1."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_unless_local() -> None:
    """Raise ImproperlyConfigured unless ``DEBUG`` is on and the issuer URL is on a loopback host."""
    if not settings.DEBUG:
        raise ImproperlyConfigured(
            "drf_oidc_jwks.contrib.devissuer is for local development only and refuses to run with DEBUG = False: "
            "anyone holding its key file could mint tokens your API trusts. Remove it from INSTALLED_APPS "
            "(and its URLs) outside development."
        )
    url = issuer_url()
    if not is_loopback_url(url):
        raise ImproperlyConfigured(
            f"drf_oidc_jwks.contrib.devissuer refuses the issuer URL {url!r}: it must be on a loopback host "
            '(localhost, 127.0.0.0/8, ::1), e.g. DEV_ISSUER_URL = "http://127.0.0.1:8000/dev-issuer".'
        )


def key_file() -> Path:
    """Return where the private key is stored (``DEV_ISSUER_KEY_FILE``, default ``BASE_DIR/dev_issuer_key.pem``)."""
    configured = getattr(settings, "DEV_ISSUER_KEY_FILE", None)
    if configured:
        return Path(configured)
    base = getattr(settings, "BASE_DIR", None)
    if base is None:
        raise ImproperlyConfigured("drf_oidc_jwks.contrib.devissuer needs DEV_ISSUER_KEY_FILE (there is no BASE_DIR).")
    return Path(base) / "dev_issuer_key.pem"


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        # O_EXCL: two processes starting at once keep the first key, and the file is never world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def signing_key() -> SigningKey:
    """Return the stored key (generated on first use) with its ``kid``."""
    path = key_file()
    with _LOCK:
        cached = _KEYS.get(path)
        if cached is not None and path.exists():
            return cached
        if not path.exists():
            _create(path)
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ImproperlyConfigured(f"DEV_ISSUER_KEY_FILE {str(path)!r} does not hold an RSA private key.")
        kid = f"dev-{private.public_key().public_numbers().n % (1 << 40):010x}"
        key = _KEYS[path] = SigningKey(private, ALGORITHM, kid)
        return key


def jwks() -> dict[str, Any]:
    """Return the JWKS: the stored key's public half."""
    return {"keys": [signing_key().public_jwk()]}


def discovery_document() -> dict[str, Any]:
    """Return the discovery document for :func:`issuer_url`."""
    issuer = issuer_url()
    return {
        "issuer": issuer,
        "jwks_uri": issuer + "/jwks.json",
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
    }


def default_audience() -> str | None:
    """Return ``DEV_ISSUER_AUDIENCE``, else the first configured ``AUDIENCE`` (None: no ``aud`` claim)."""
    configured = getattr(settings, "DEV_ISSUER_AUDIENCE", None)
    if configured:
        return str(configured)
    raw = getattr(settings, "DRF_OIDC_JWKS", None)
    audience = raw.get("AUDIENCE") if isinstance(raw, Mapping) else None
    if isinstance(audience, (list, tuple)):
        audience = audience[0] if audience else None
    return str(audience) if audience else None


def mint(sub: str, *, expires_in: int = 3600, **claims: Any) -> str:
    """Return a token for ``sub`` signed by the stored key; ``claims`` (None values dropped) override the defaults."""
    key = signing_key()
    now = int(time.time())
    payload: dict[str, Any] = {"iss": issuer_url(), "sub": sub, "iat": now, "exp": now + expires_in}
    payload["jti"] = uuid.uuid4().hex
    audience = default_audience()
    if audience is not None:
        payload["aud"] = audience
    payload.update({name: value for name, value in claims.items() if value is not None})
    return jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
