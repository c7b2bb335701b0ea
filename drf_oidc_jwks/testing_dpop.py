"""Test kit for DPoP (RFC 9449): a client key, proofs for any request, and the two headers to send.

::

    key = DPoPKey()                                         # ES256; DPoPKey("EdDSA"), DPoPKey("RS256")
    token = issuer.token(sub="alice", cnf=key.cnf())        # a token bound to the key (cnf.jkt)
    url = "http://testserver/api/me"
    client.get("/api/me", **key.headers(token, "GET", url))  # Authorization: DPoP ..., DPoP: <fresh proof>

``key.proof(method, url, ...)`` builds one proof; every claim and header can be overridden or left out
(``OMIT``) to test refusals. Nothing here fetches anything.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from .dpop import access_token_hash, jwk_thumbprint
from .testing import OMIT, generate_key

__all__ = ["OMIT", "DPoPKey"]


class DPoPKey:
    """A client's DPoP key pair (ES256 by default; EdDSA, RS256, PS256, ES384... too)."""

    def __init__(self, alg: str = "ES256", private_key: Any = None) -> None:
        self.alg = alg
        # fresh=True: a DPoP key must differ from every other key of the test (an RSA pool would share one).
        self.private_key = private_key if private_key is not None else generate_key(alg, None, fresh=True).private_key

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK sent in every proof's header."""
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        return jwk

    @property
    def jkt(self) -> str:
        """The RFC 7638 thumbprint of the key: the ``cnf.jkt`` of tokens bound to it."""
        return jwk_thumbprint(self.public_jwk())

    def cnf(self) -> dict[str, str]:
        """The ``cnf`` claim binding a token to this key: ``issuer.token(cnf=key.cnf())``."""
        return {"jkt": self.jkt}

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: Any = None,
        jti: Any = None,
        headers: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A signed proof for ``method`` ``url`` (with ``ath`` when ``access_token`` is given).

        ``headers`` and ``claims`` override or add members; ``OMIT`` leaves one out (``htm=OMIT``).
        """
        payload: dict[str, Any] = {
            "jti": uuid.uuid4().hex if jti is None else jti,
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
        }
        if access_token is not None:
            payload["ath"] = access_token_hash(access_token)
        if nonce is not None:
            payload["nonce"] = nonce
        payload.update(claims)
        header: dict[str, Any] = {"typ": "dpop+jwt", "jwk": self.public_jwk()}
        header.update(headers or {})
        return jwt.encode(
            {k: v for k, v in payload.items() if v is not OMIT},
            self.private_key,
            algorithm=self.alg,
            headers={k: v for k, v in header.items() if v is not OMIT},
        )

    def headers(
        self, access_token: str, method: str, url: str, *, nonce: str | None = None, **claims: Any
    ) -> dict[str, str]:
        """Django test client ``extra``: ``Authorization: DPoP <token>`` and a fresh ``DPoP`` proof for the request."""
        proof = self.proof(method, url, access_token=access_token, nonce=nonce, **claims)
        return {"HTTP_AUTHORIZATION": f"DPoP {access_token}", "HTTP_DPOP": proof}
