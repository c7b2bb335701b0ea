"""A DPoP-checking view built only from ``drf_oidc_jwks.dpop`` and ``dpop_store``, for the multi-process tests.

It checks the proof of ``Authorization: DPoP <token>`` requests and records its ``jti`` in the shared cache,
without verifying the token itself (that is the authentication class's job): replay across gunicorn
workers and nonces across workers are tested on it. ``/api/dpop/nonce`` also requires a server nonce.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_oidc_jwks.dpop import DEFAULT_ALGORITHMS, check_proof
from drf_oidc_jwks.dpop_store import NonceIssuer, ReplayStore
from drf_oidc_jwks.exceptions import KeySourceError, TokenError, UseDPoPNonce

MAX_AGE = 300
LEEWAY = 5


class DPoPProofView(APIView):
    """200 with the proof's thumbprint and the worker's pid when the proof passes; 401/503 with the code if not."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    require_nonce = False

    def get(self, request: Request) -> Response:
        return self.check(request)

    def post(self, request: Request) -> Response:
        return self.check(request)

    def check(self, request: Request) -> Response:
        scheme, _, token = str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")
        if scheme.lower() != "dpop" or not token:
            return Response({"code": "missing_token"}, status=401)
        nonces = NonceIssuer() if self.require_nonce else None
        try:
            proof = check_proof(
                request.META.get("HTTP_DPOP", ""),
                method=request.method or "",
                url=request.build_absolute_uri(),
                access_token=token,
                algorithms=DEFAULT_ALGORITHMS,
                max_age=MAX_AGE,
                leeway=LEEWAY,
                nonce_checker=nonces.checker() if nonces else None,
            )
            alias = getattr(settings, "DRF_OIDC_JWKS", {}).get("JWKS_CACHE_ALIAS", "default")
            ReplayStore.for_alias(alias).remember(proof, max_age=MAX_AGE, leeway=LEEWAY)
        except TokenError as exc:
            headers = {"DPoP-Nonce": exc.nonce} if isinstance(exc, UseDPoPNonce) and exc.nonce else None
            return Response({"code": exc.code, "pid": os.getpid()}, status=exc.status, headers=headers)
        except KeySourceError as exc:
            return Response({"code": exc.code}, status=exc.status, headers={"Retry-After": "1"})
        return Response({"jkt": proof.jkt, "jti": proof.jti, "pid": os.getpid()})


class DPoPNonceView(DPoPProofView):
    require_nonce = True
