"""The baseline of the end-to-end benchmark: ``/api/me``'s work without authentication.

It renders the same response shape from fixed claims, so the throughput ratio of
``/api/me`` to this view is the cost of authentication (and user sync) alone.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_oidc_jwks.claims import PRESETS, Claims

_CLAIMS = Claims(
    {"sub": "alice", "email": "alice@example.com", "name": "Alice", "role": "user", "tenant_id": "acme"},
    PRESETS["better-auth"],
)


class _User:
    pk = "alice"

    def get_username(self) -> str:
        return "alice"


class UnauthenticatedMeView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        claims, user = _CLAIMS, _User()
        return Response(
            {
                "sub": claims.sub,
                "email": claims.email,
                "name": claims.name,
                "role": claims.get("role"),
                "roles": sorted(claims.roles),
                "tenant_id": claims.tenant_id,
                "user": {"id": user.pk, "username": user.get_username()},
            }
        )
