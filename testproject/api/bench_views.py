"""The baseline of the end-to-end benchmark: ``/api/me``'s work without authentication.

It renders exactly ``/api/me``'s response from fixed claims and an unsaved user, so the
throughput ratio of ``/api/me`` to this view is the cost of authentication (and user sync) alone.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_oidc_jwks.claims import PRESETS, Claims

from .views import me_payload

_CLAIMS = Claims(
    {
        "iss": "https://issuer.bench",
        "aud": "https://api.bench",
        "sub": "alice",
        "email": "alice@example.com",
        "name": "Alice",
        "role": "user",
        "tenant_id": "acme",
        "exp": 4102444800,
    },
    PRESETS["better-auth"],
)


class UnauthenticatedMeView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(me_payload(_CLAIMS, get_user_model()(username="alice", email="alice@example.com")))
