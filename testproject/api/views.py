from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import devissuer


class HealthView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class MeView(APIView):
    """The caller as the token says (the reference guides' ``/api/me``)."""

    def get(self, request: Request) -> Response:
        claims = request.auth
        return Response(
            {
                "sub": claims.sub,
                "email": claims.email,
                "name": claims.name,
                "role": claims.get("role"),
                "roles": sorted(claims.roles),
                "tenant_id": claims.tenant_id,
                "user": {"id": request.user.pk, "username": request.user.get_username()},
            }
        )


def dev_discovery(request: HttpRequest) -> JsonResponse:
    return JsonResponse(devissuer.discovery_document())


def dev_jwks(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"keys": [devissuer.public_jwk()]})
    response["Cache-Control"] = "public, max-age=300"
    return response
