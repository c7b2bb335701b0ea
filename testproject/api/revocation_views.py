"""Preview of how opaque tokens and revocations plug into authentication (wired into the library at merge).

``PreviewAuthentication`` is what ``JWKSAuthentication`` will do once the settings table has the keys:
a compact JWS is verified as today and then checked against the revocations; anything else goes to the
introspection endpoint of the issuer configured for opaque tokens, and the active answer's payload is
checked against the revocations too. Until then the per-issuer settings of this preview are plain
Django settings: ``PREVIEW_INTROSPECTION`` (``{issuer: INTROSPECTION dict}``) and
``PREVIEW_BACKCHANNEL_LOGOUT_AUDIENCE`` (or the ``OIDC_BACKCHANNEL_LOGOUT_AUDIENCE`` environment
variable, comma-separated, for runserver and gunicorn).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from django.conf import settings as django_settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_oidc_jwks import revocation
from drf_oidc_jwks.authentication import JWKSAuthentication
from drf_oidc_jwks.backchannel import BackchannelLogoutView
from drf_oidc_jwks.claims import Claims
from drf_oidc_jwks.conf import IssuerSettings, get_settings
from drf_oidc_jwks.exceptions import MalformedToken
from drf_oidc_jwks.introspection import IntrospectionConfig, check_opaque, get_introspector, looks_like_jws


class PreviewAuthentication(JWKSAuthentication):
    """JWTs as ``JWKSAuthentication`` verifies them, opaque tokens by introspection, both revocation-checked."""

    def get_validated_token(self, raw: str) -> Claims:
        if looks_like_jws(raw):
            claims = super().get_validated_token(raw)
        else:
            claims = self.introspect(raw)
        revocation.check(claims.raw)
        return claims

    def introspect(self, raw: str) -> Claims:
        configured: dict[str, Any] = getattr(django_settings, "PREVIEW_INTROSPECTION", None) or {}
        s = get_settings()
        candidates = [i for i in s.issuers if i.issuer in configured]
        if len(candidates) != 1:
            raise MalformedToken("opaque token and no single issuer with INTROSPECTION")
        issuer = candidates[0]
        check_opaque(raw, s.max_token_bytes)
        config = IntrospectionConfig.from_setting(configured[issuer.issuer])
        payload = get_introspector(issuer, config).introspect(raw)
        return Claims(MappingProxyType(dict(payload)), issuer.claims, MappingProxyType({}))


class PreviewMeView(APIView):
    """The caller's identity, authenticated by :class:`PreviewAuthentication`."""

    authentication_classes = [PreviewAuthentication]

    def get(self, request: Request) -> Response:
        claims: Claims = request.auth
        return Response(
            {"sub": claims.sub, "sid": claims.get("sid"), "scopes": sorted(claims.scopes), "pid": os.getpid()}
        )


class PreviewBackchannelLogoutView(BackchannelLogoutView):
    """The library's receiver, with ``BACKCHANNEL_LOGOUT_AUDIENCE`` read from this preview's settings."""

    def get_audience(self, issuer: IssuerSettings) -> Sequence[str]:
        value = getattr(django_settings, "PREVIEW_BACKCHANNEL_LOGOUT_AUDIENCE", None)
        if value is None:
            value = [a for a in os.environ.get("OIDC_BACKCHANNEL_LOGOUT_AUDIENCE", "").split(",") if a]
        return (value,) if isinstance(value, str) else tuple(value)
