"""System checks, ids ``drf_oidc_jwks.E0nn`` (errors) and ``drf_oidc_jwks.W0nn`` (warnings)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .conf import _UNSET, SETTING_NAME, validate


@checks.register("drf_oidc_jwks")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report every problem of ``DRF_OIDC_JWKS`` with a hint that says the fix."""
    raw = getattr(settings, SETTING_NAME, _UNSET)
    messages: list[checks.CheckMessage] = []
    for problem in validate(raw):
        cls = checks.Error if problem.error else checks.Warning
        messages.append(cls(problem.msg, hint=problem.hint or None, id=f"drf_oidc_jwks.{problem.id}"))
    return messages
