"""Step-up endpoints of the demo (RFC 9470): a stronger or a more recent login than the rest of the API."""

from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_oidc_jwks.permissions import HasAuthLevel


class PaymentView(APIView):
    """``/api/payments``: a multi-factor login (``acr`` ``mfa``)."""

    permission_classes = [HasAuthLevel("mfa")]

    def post(self, request: Request) -> Response:
        return Response({"paid": True, "acr": request.auth.acr}, status=201)


class AccountSecurityView(APIView):
    """``/api/account/security``: a login of at most ``STEP_UP_MAX_AGE`` seconds ago (default 300)."""

    def get_permissions(self) -> list[BasePermission]:
        # Read per request, so the interop tests can shorten it instead of waiting five minutes.
        return [HasAuthLevel(max_age=getattr(settings, "STEP_UP_MAX_AGE", 300))]

    def get(self, request: Request) -> Response:
        return Response({"auth_time": request.auth.auth_time, "amr": list(request.auth.amr)})
