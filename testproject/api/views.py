from __future__ import annotations

from typing import Any

from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_oidc_jwks.claims import Claims
from drf_oidc_jwks.users import TokenUser


class HealthView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


def _text(value: Any) -> str | None:
    # Raw claims are untrusted JSON (1e400 is a float infinity, objects nest deeply): echo strings only.
    return value if isinstance(value, str) else None


def _user(user: Any) -> dict[str, Any]:
    kind = "service" if getattr(user, "is_service", False) else "token" if isinstance(user, TokenUser) else "django"
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": getattr(user, "email", ""),
        "first_name": getattr(user, "first_name", ""),
        "last_name": getattr(user, "last_name", ""),
        "is_staff": bool(getattr(user, "is_staff", False)),
        "is_superuser": bool(getattr(user, "is_superuser", False)),
        "kind": kind,
    }


def _claims(claims: Claims) -> dict[str, Any]:
    return {
        "issuer": claims.issuer,
        "audience": list(claims.audience),
        "scopes": sorted(claims.scopes),
        "permissions": sorted(claims.permissions),
        "organization_ids": list(claims.organization_ids),
        "org_role": claims.org_role,
        "client_id": claims.client_id,
        "username": claims.username,
        "email_verified": claims.email_verified,
        "is_machine": claims.is_machine,
        "expires_at": claims.expires_at.isoformat() if claims.expires_at else None,
        "dpop_jkt": claims.dpop_jkt,
    }


def me_payload(claims: Claims, user: Any) -> dict[str, Any]:
    """``/api/me``'s body: the caller's claims and user (the benchmark's baseline renders the same)."""
    return {
        "sub": claims.sub,
        "email": claims.email,
        "name": claims.name,
        "role": _text(claims.get("role")),
        "roles": sorted(claims.roles),
        "tenant_id": claims.tenant_id,
        "user": _user(user),
        "claims": _claims(claims),
    }


class MeView(APIView):
    """The caller: ``request.user`` (the synced Django user) and the normalised claims of ``request.auth``."""

    def get(self, request: Request) -> Response:
        return Response(me_payload(request.auth, request.user))


class PersonalizedView(APIView):
    """Content chosen by the Better Auth profile claims (the reference guide's ``/api/personalized``); no database."""

    def get(self, request: Request) -> Response:
        claims = request.auth
        background = _text(claims.get("software_background")) or "beginner"
        tier = _text(claims.get("hardware_tier")) or "tier1"
        return Response(
            {
                "content_level": background,
                "hardware_requirements": tier,
                "message": f"Content optimized for {background} with {tier} hardware",
            }
        )
