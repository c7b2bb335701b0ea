"""DPoP at request time (RFC 9449): which issuers answer which scheme, the proof check in order, the challenge.

:class:`~drf_oidc_jwks.authentication.JWKSAuthentication` calls these; they raise the library's errors and
never build an HTTP answer. The order for ``Authorization: DPoP <token>``: the token (the memo may serve it),
then on every request the proof (:func:`drf_oidc_jwks.dpop.check_proof`, with the URL Django derives behind
``SECURE_PROXY_SSL_HEADER`` / ``USE_X_FORWARDED_HOST``), its binding to the token's ``cnf.jkt``, and last the
shared replay store, so only a proof that passed everything else takes a cache entry.
"""

from __future__ import annotations

from typing import Any

from . import signals
from .claims import Claims
from .conf import IssuerSettings, Settings
from .dpop import ProofResult, check_binding, check_proof
from .dpop_store import NonceIssuer, ReplayStore
from .dpop_urls import request_host, request_url
from .exceptions import DPoPRequired, InvalidDPoPProof, TokenError, UseDPoPNonce

__all__ = [
    "NONCE_ATTR",
    "algorithms",
    "answers_dpop",
    "bearer_accepted",
    "challenge",
    "check_bearer",
    "check_request",
    "dpop_accepted",
    "hand_out_nonce",
]

#: Set on the Django request when a ``DPoP-Nonce`` is due; DPoPNonceMiddleware copies it onto the response.
NONCE_ATTR = "drf_oidc_jwks_dpop_nonce"


def dpop_accepted(s: Settings) -> bool:
    """Whether any issuer answers the DPoP scheme (``DPOP`` not ``"off"``; an ``ISSUER_RESOLVER``'s may)."""
    return any(i.dpop != "off" for i in s.issuers) or s.issuer_resolver is not None


def bearer_accepted(s: Settings) -> bool:
    """Whether any issuer still takes Bearer tokens (``DPOP`` not ``"required"``; an ``ISSUER_RESOLVER``'s may)."""
    return any(i.dpop != "required" for i in s.issuers) or s.issuer_resolver is not None


def algorithms(s: Settings) -> list[str]:
    """The proof algorithms of the issuers answering DPoP, in settings order (the challenge's ``algs``)."""
    return list(dict.fromkeys(a for i in s.issuers if i.dpop != "off" for a in i.dpop_algorithms))


def answers_dpop(s: Settings, iss: Any) -> bool:
    """Whether a DPoP request whose token names ``iss`` (unverified) is ours to answer, not another class's."""
    issuer = s.issuer_for(iss)
    if issuer is not None:
        return issuer.dpop != "off"
    # A stranger's token: refused as invalid_issuer when DPoP is answered at all.
    return dpop_accepted(s)


def check_bearer(s: Settings, claims: Claims) -> None:
    """Refuse a verified Bearer token of an issuer whose ``DPOP`` is ``"required"``."""
    issuer = s.issuer_for(claims.issuer)
    if issuer is not None and issuer.dpop == "required":
        raise DPoPRequired(f"Bearer token of {issuer.issuer!r}, whose DPOP is 'required'")


def _issuer(s: Settings, claims: Claims) -> IssuerSettings:
    issuer = s.issuer_for(claims.issuer)
    if issuer is None or issuer.dpop == "off":
        # verify_token accepted it, so only a settings change mid-request gets here.
        raise InvalidDPoPProof("DPoP is not answered for this issuer")
    return issuer


def check_request(request: Any, raw: str, claims: Claims, s: Settings) -> ProofResult:
    """Check the request's ``DPoP`` proof for the verified token ``raw``; record it once; raise TokenError."""
    issuer = _issuer(s, claims)
    # Django's HttpRequest under DRF's Request: the same answers, without DRF's attribute proxy on each read.
    http = getattr(request, "_request", request)
    header = http.META.get("HTTP_DPOP")
    nonces = NonceIssuer() if s.dpop_nonce else None
    proof = check_proof(
        header if isinstance(header, str) else [],
        method=http.method or "",
        # get_host() checks ALLOWED_HOSTS: a proof made for a host this site does not serve never matches.
        url=request_url(http.scheme, request_host(http), http.path),
        access_token=raw,
        algorithms=issuer.dpop_algorithms,
        max_age=issuer.dpop_proof_max_age,
        leeway=s.leeway,
        nonce_checker=nonces.checker() if nonces is not None else None,
    )
    check_binding(claims.raw, proof)
    try:
        ReplayStore.for_alias(s.jwks_cache_alias).remember(proof, max_age=issuer.dpop_proof_max_age, leeway=s.leeway)
    except InvalidDPoPProof:
        # remember() refuses only a proof seen before: a replay, worth an operator's attention.
        if signals.listened(signals.dpop_replay):
            signals.emit(signals.dpop_replay, ReplayStore, issuer=issuer.issuer)
        raise
    if nonces is not None and not nonces.is_current(proof.nonce):
        # Accepted from the previous window: hand out the current one before the client needs it.
        hand_out_nonce(request, nonces.issue())
    return proof


def hand_out_nonce(request: Any, nonce: str) -> None:
    """Have DPoPNonceMiddleware send ``DPoP-Nonce: nonce`` with this request's answer."""
    # The DRF Request wraps Django's HttpRequest, which is what the middleware sees.
    setattr(getattr(request, "_request", request), NONCE_ATTR, nonce)


def challenge(s: Settings, exc: TokenError | None) -> str:
    """The ``DPoP`` challenge (RFC 9449 7.1): ``algs``, and the error of a refused DPoP request."""
    parts = []
    if isinstance(exc, TokenError):
        error = exc.code if isinstance(exc, (InvalidDPoPProof, UseDPoPNonce)) else "invalid_token"
        parts.append(f'error="{error}"')
        parts.append(f'error_description="{exc.description}"')
    parts.append(f'algs="{" ".join(algorithms(s))}"')
    return "DPoP " + ", ".join(parts)
