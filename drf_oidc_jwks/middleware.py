"""``DPoPNonceMiddleware``: sends the ``DPoP-Nonce`` the authentication class set on the request (RFC 9449 8).

DRF builds a 401 from the exception alone, so a ``use_dpop_nonce`` answer cannot carry the header by itself;
nor can a success that is due a fresh nonce. Add ``"drf_oidc_jwks.middleware.DPoPNonceMiddleware"`` to
``MIDDLEWARE`` when ``DPOP_NONCE`` is True (system check E026 says so).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from .dpop_auth import NONCE_ATTR

__all__ = ["DPoPNonceMiddleware"]

PATH = "drf_oidc_jwks.middleware.DPoPNonceMiddleware"


class DPoPNonceMiddleware:
    """Copy the nonce handed out while authenticating onto the response as ``DPoP-Nonce``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        nonce = getattr(request, NONCE_ATTR, None)
        if isinstance(nonce, str) and nonce:
            response["DPoP-Nonce"] = nonce
            # Browsers' JavaScript reads the header only when CORS exposes it (RFC 9449 8.2).
            exposed = response.get("Access-Control-Expose-Headers")
            if exposed is not None and "dpop-nonce" not in exposed.lower():
                response["Access-Control-Expose-Headers"] = f"{exposed}, DPoP-Nonce"
        return response
