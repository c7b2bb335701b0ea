from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from . import issuer


@require_safe
def discovery(request: HttpRequest) -> JsonResponse:
    """The issuer's OpenID discovery document (``issuer`` and ``jwks_uri``)."""
    return JsonResponse(issuer.discovery_document())


@require_safe
def jwks(request: HttpRequest) -> JsonResponse:
    """The issuer's JWKS: the public half of the stored key only."""
    response = JsonResponse(issuer.jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response
