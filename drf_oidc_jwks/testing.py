"""Helpers for testing APIs that use drf-oidc-jwks: a test issuer with real keys and a loopback JWKS server.

Keys installed straight into the JWKS cache (no HTTP at all)::

    issuer = TestIssuer(audience="https://api.example.com")
    with issuer.configure():                            # DRF_OIDC_JWKS trusts it, its JWKS is in the cache
        token = issuer.token(sub="alice", role="admin", tenant_id="acme", expires_in=60)

Or served over a real HTTP server on 127.0.0.1, discovery included::

    with issuer.serve():
        with override_settings(DRF_OIDC_JWKS=issuer.settings()):
            token = issuer.token(sub="alice")

``issuer.expired_token()`` and ``issuer.foreign_token()`` mint tokens that must be
refused; ``issuer.make_claims()`` builds the ``Claims`` for DRF's
``force_authenticate(user, token=claims)``. pytest users get fixtures from
``drf_oidc_jwks.pytest_plugin``. DPoP (RFC 9449): ``key = issuer.dpop_key()`` is a client key,
``issuer.token(cnf=key.cnf())`` a token bound to it, and ``key.send(client, "get", "/api/me", token)``
sends it with a fresh proof. Nothing here fetches anything beyond loopback.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .testserver import JWKSServer, Response

if TYPE_CHECKING:
    from .claims import Claims
    from .jwks import KeySet

__all__ = ["OMIT", "DPoPKey", "SigningKey", "TestIssuer", "JWKSServer", "Response", "generate_key", "project_settings"]

_KEY_POOL: dict[tuple[str, int], list[Any]] = {}
_POOL_LOCK = threading.Lock()


def _new_private_key(alg: str, rsa_bits: int) -> Any:
    if alg.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg == "ES512":
        return ec.generate_private_key(ec.SECP521R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported algorithm {alg}")


def _family(alg: str) -> str:
    return "RSA" if alg.startswith(("RS", "PS")) else alg


@dataclass
class SigningKey:
    """A private key with its ``kid`` and ``alg``, able to publish its public JWK."""

    private_key: Any
    alg: str
    kid: str | None
    publish_alg: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        if self.kid is not None:
            jwk["kid"] = self.kid
        jwk["use"] = "sig"
        if self.publish_alg:
            jwk["alg"] = self.alg
        jwk.update(self.extra)
        return jwk


def generate_key(alg: str = "RS256", kid: str | None = "", *, rsa_bits: int = 2048, fresh: bool = False) -> SigningKey:
    """Return a signing key for ``alg``; RSA keys come from a small pool unless ``fresh`` (generation is slow)."""
    if kid == "":
        kid = uuid.uuid4().hex[:12]
    family = _family(alg)
    with _POOL_LOCK:
        pool = _KEY_POOL.setdefault((family, rsa_bits), [])
        if fresh or len(pool) < 8 or family != "RSA":
            private = _new_private_key(alg, rsa_bits)
            if family == "RSA" and not fresh:
                pool.append(private)
        else:
            # Reuse, round-robin: eight keys in a row are distinct; pass fresh=True for a
            # key that must differ from every other (an attacker's key in a test).
            private = pool.pop(0)
            pool.append(private)
    return SigningKey(private, alg, kid)


class TestIssuer:
    """An OpenID issuer for tests: keys, a JWKS, and tokens with any claims."""

    __test__ = False  # not a pytest test class

    def __init__(self, issuer: str | None = None, algorithm: str = "RS256", *, audience: str | None = None) -> None:
        self.issuer = issuer or "https://issuer.test"
        self.audience = audience
        self.keys: list[SigningKey] = [generate_key(algorithm)]
        self._server: JWKSServer | None = None

    @property
    def key(self) -> SigningKey:
        """The current signing key (the newest)."""
        return self.keys[-1]

    def add_key(self, alg: str = "RS256", kid: str | None = "", **kwargs: Any) -> SigningKey:
        """Publish a new key and sign with it from now on."""
        key = generate_key(alg, kid, **kwargs)
        self.keys.append(key)
        return key

    def remove_key(self, key: SigningKey) -> None:
        self.keys.remove(key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys]}

    def discovery_document(self) -> dict[str, Any]:
        base = self.issuer.rstrip("/")
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{base}/jwks.json",
            "userinfo_endpoint": f"{base}/userinfo",
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self.keys}),
        }

    def claims(self, sub: str | None = "alice", *, expires_in: float = 300, **claims: Any) -> dict[str, Any]:
        now = int(time.time())
        payload: dict[str, Any] = {"iss": self.issuer, "iat": now, "exp": int(now + expires_in)}
        if sub is not None:
            payload["sub"] = sub
        if self.audience is not None:
            payload["aud"] = self.audience
        payload.update(claims)
        return {k: v for k, v in payload.items() if v is not _OMIT}

    def token(
        self,
        sub: str | None = "alice",
        *,
        expires_in: float = 300,
        key: SigningKey | None = None,
        headers: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """Mint a signed token. Pass ``claim=OMIT`` to leave a default claim (iss, exp, iat, aud) out."""
        key = key or self.key
        header: dict[str, Any] = {"typ": "JWT"}
        if key.kid is not None:
            header["kid"] = key.kid
        if headers:
            header.update(headers)
        header = {k: v for k, v in header.items() if v is not _OMIT}
        payload = self.claims(sub, expires_in=expires_in, **claims)
        return jwt.encode(payload, key.private_key, algorithm=key.alg, headers=header)

    def expired_token(self, sub: str | None = "alice", *, expired_for: float = 3600, **claims: Any) -> str:
        """Mint a token that expired ``expired_for`` seconds ago (default: an hour, far past any ``LEEWAY``)."""
        now = int(time.time())
        claims.setdefault("iat", int(now - expired_for - 300))
        return self.token(sub, expires_in=-expired_for, **claims)

    def dpop_key(self, alg: str = "ES256") -> DPoPKey:
        """A fresh DPoP client key: bind tokens with ``token(cnf=key.cnf())``, prove them with ``key.send(...)``."""
        return DPoPKey(alg)

    def foreign_token(self, sub: str | None = "alice", *, same_kid: bool = True, **claims: Any) -> str:
        """Mint a token signed by a key this issuer never published (an attacker's).

        With ``same_kid`` it names the current key's ``kid`` (refused as ``invalid_signature``);
        otherwise an unknown ``kid`` (refused as ``unknown_key``).
        """
        kid = self.key.kid if same_kid else uuid.uuid4().hex[:12]
        stranger = generate_key(self.key.alg, kid, fresh=True)
        return self.token(sub, key=stranger, **claims)

    def make_claims(self, sub: str | None = "alice", **claims: Any) -> Claims:
        """Build the ``Claims`` a verified token with these claims gives, without signing anything.

        For ``APIClient.force_authenticate(user, token=issuer.make_claims(role="admin"))``. Claim
        paths follow the configured ``PROVIDER``/``CLAIMS`` when the settings trust this issuer.
        """
        from .claims import Claims, resolve_claim_paths

        payload = self.claims(sub, **claims)
        header = {"alg": self.key.alg, "typ": "JWT", **({"kid": self.key.kid} if self.key.kid else {})}
        paths: Mapping[str, Any] = resolve_claim_paths("generic", {})
        configured = _configured_issuer(self.issuer)
        if configured is not None:
            paths = configured.claims
        return Claims(MappingProxyType(payload), paths, MappingProxyType(header))

    def install(self, ttl: float | None = None) -> KeySet:
        """Put this issuer's JWKS straight into the JWKS cache (no HTTP), as a fetch would store it.

        The current ``DRF_OIDC_JWKS`` must trust this issuer (see :meth:`configure`); call again after
        :meth:`add_key` or :meth:`remove_key`.
        """
        from .jwks import install_jwks

        configured = _configured_issuer(self.issuer)
        if configured is None:
            raise LookupError(f"DRF_OIDC_JWKS does not trust {self.issuer!r}: configure it first")
        return install_jwks(configured, self.jwks(), ttl)

    @contextmanager
    def configure(self, *, install: bool = True, **overrides: Any) -> Iterator[dict[str, Any]]:
        """Trust this issuer in ``DRF_OIDC_JWKS`` (and install its JWKS) for the ``with`` block; then restore.

        The project's own setting is the base (its ``PROVIDER``, ``CLAIMS``, ``SYNC_USERS``... still
        apply); ``overrides`` go last. Yields the ``DRF_OIDC_JWKS`` value in force.
        """
        from django.test import override_settings

        value = project_settings(self.settings(), **overrides)
        audience, minted_for = value.get("AUDIENCE"), self.audience
        if self.audience is None and audience:
            # Mint for the audience the project checks, or every token would be refused.
            self.audience = audience if isinstance(audience, str) else audience[0]
        try:
            with override_settings(DRF_OIDC_JWKS=value):
                if install:
                    self.install()
                yield value
        finally:
            self.audience = minted_for

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """A ``DRF_OIDC_JWKS`` value trusting this issuer (``AUDIENCE`` from the constructor unless given)."""
        value: dict[str, Any] = {
            "ISSUER": self.issuer,
            "AUDIENCE": self.audience,
            "ALGORITHMS": sorted({k.alg for k in self.keys}),
        }
        if self._server is not None:
            value["JWKS_URL"] = self._server.url("/jwks.json")
        value.update(overrides)
        return value

    @contextmanager
    def serve(self, *, issuer_is_server: bool = True) -> Iterator[JWKSServer]:
        """Serve this issuer's discovery document and JWKS on a loopback HTTP server."""
        server = JWKSServer(self)
        server.start()
        if issuer_is_server:
            self.issuer = server.base_url
        self._server = server
        try:
            yield server
        finally:
            self._server = None
            server.stop()


class DPoPKey:
    """A DPoP client's key pair (ES256 by default; EdDSA, RS256, PS256, ES384... too), and its proofs."""

    def __init__(self, alg: str = "ES256", private_key: Any = None) -> None:
        self.alg = alg
        # fresh=True: a DPoP key must differ from every other key of the test (an RSA pool would share one).
        self.private_key = private_key if private_key is not None else generate_key(alg, None, fresh=True).private_key

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK sent in every proof's header."""
        jwk: dict[str, Any] = json.loads(jwt.get_algorithm_by_name(self.alg).to_jwk(self.private_key.public_key()))
        return jwk

    @property
    def jkt(self) -> str:
        """The RFC 7638 thumbprint of the key: the ``cnf.jkt`` of tokens bound to it."""
        from .dpop import jwk_thumbprint

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
        from .dpop import access_token_hash

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
        header: dict[str, Any] = {"typ": "dpop+jwt", "jwk": self.public_jwk(), **(headers or {})}
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

    def send(
        self, client: Any, method: str, path: str, access_token: str, *, nonce: str | None = None, **kwargs: Any
    ) -> Any:
        """Send ``method path`` with the Django/DRF test ``client``, the token as DPoP and a fresh proof for it."""
        url = "http://testserver" + path.split("?", 1)[0]
        extra = self.headers(access_token, method.upper(), url, nonce=nonce)
        return getattr(client, method.lower())(path, **kwargs, **extra)


def _configured_issuer(issuer: str) -> Any:
    from django.core.exceptions import ImproperlyConfigured

    from .conf import get_settings

    try:
        return get_settings().issuer_for(issuer)
    except ImproperlyConfigured:
        return None


def project_settings(issuer_settings: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """Merge a test issuer's ``DRF_OIDC_JWKS`` into the project's own setting, ``overrides`` last.

    The project's deployment-wide keys and its per-issuer keys (``PROVIDER``, ``CLAIMS``,
    ``REQUIRED_CLAIMS``...) are kept; ``ISSUERS`` and ``JWKS_URL`` are replaced by the test issuer,
    whose ``ISSUER`` and ``ALGORITHMS`` win, and whose ``AUDIENCE`` too unless it is None (then the
    project's applies).
    """
    from django.conf import settings as django_settings

    from .conf import GLOBAL_KEYS, first_issuer

    raw = getattr(django_settings, "DRF_OIDC_JWKS", None)
    raw = dict(raw) if isinstance(raw, Mapping) else {}
    base = {k: v for k, v in raw.items() if k in GLOBAL_KEYS and k != "ISSUERS"}
    per_issuer = first_issuer(raw)
    for key in ("ISSUER", "JWKS_URL", "ALGORITHMS"):
        per_issuer.pop(key, None)
    value = {**base, **issuer_settings, **per_issuer}
    value["ISSUER"] = issuer_settings["ISSUER"]
    value["ALGORITHMS"] = issuer_settings["ALGORITHMS"]
    if "JWKS_URL" in issuer_settings:
        value["JWKS_URL"] = issuer_settings["JWKS_URL"]
    if issuer_settings.get("AUDIENCE") is not None or "AUDIENCE" not in per_issuer:
        value["AUDIENCE"] = issuer_settings.get("AUDIENCE")
    value.update(overrides)
    return value


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


#: Pass as a claim or header value to leave it out of a minted token.
OMIT: Any = _Omit()
_OMIT = OMIT
