"""The development issuer: a local RSA key, its JWKS and discovery document, and token minting.

For the demo and local development only (``DEV_ISSUER_ENABLED``): it lets the
project run with no external identity provider. The key is generated on first
use and stored in ``var/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from jwt.algorithms import RSAAlgorithm


def private_key() -> Any:
    path = settings.DEV_ISSUER_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def public_jwk() -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(private_key().public_key()))
    jwk.pop("key_ops", None)
    jwk.update({"kid": kid(), "use": "sig", "alg": "RS256"})
    return jwk


def kid() -> str:
    numbers = private_key().public_key().public_numbers()
    return f"dev-{numbers.n % (1 << 40):010x}"


def issuer() -> str:
    return str(settings.DEV_ISSUER_URL)


def discovery_document() -> dict[str, Any]:
    return {
        "issuer": issuer(),
        "jwks_uri": issuer() + "/jwks.json",
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
    }


def mint(sub: str, *, expires_in: int = 3600, audience: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": issuer(),
        "sub": sub,
        "aud": audience or settings.API_AUDIENCE,
        "iat": now,
        "exp": now + expires_in,
        "jti": uuid.uuid4().hex,
    }
    payload.update({k: v for k, v in claims.items() if v is not None})
    return jwt.encode(payload, private_key(), algorithm="RS256", headers={"kid": kid()})
