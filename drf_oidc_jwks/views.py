"""The RFC 9728 OAuth 2.0 Protected Resource Metadata view."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.http import Http404, HttpRequest, JsonResponse
from django.views import View

from . import dpop_auth
from .conf import get_settings


class ProtectedResourceMetadataView(View):
    """Serve ``/.well-known/oauth-protected-resource[/path]`` for the configured ``RESOURCE``."""

    def get(self, request: HttpRequest, resource_path: str = "") -> JsonResponse:
        s = get_settings()
        if not s.resource:
            raise Http404("RESOURCE is not configured")
        if urlsplit(s.resource).path.strip("/") != resource_path.strip("/"):
            raise Http404("no such resource")
        document: dict[str, Any] = {
            "resource": s.resource,
            "authorization_servers": [i.issuer for i in s.issuers],
            "bearer_methods_supported": ["header"],
        }
        if s.resource_documentation:
            document["resource_documentation"] = s.resource_documentation
        if dpop_auth.dpop_accepted(s):
            # RFC 9728 2: the proof algorithms accepted, and whether Bearer tokens are refused everywhere.
            document["dpop_signing_alg_values_supported"] = dpop_auth.algorithms(s)
            document["dpop_bound_access_tokens_required"] = all(i.dpop == "required" for i in s.issuers)
        from .scope_catalog import scopes_supported

        scopes = scopes_supported(s.required_scopes, s.scopes_supported)
        if scopes:
            document["scopes_supported"] = scopes
        response = JsonResponse(document)
        response["Cache-Control"] = "public, max-age=3600"
        return response
