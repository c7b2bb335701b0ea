"""``ISSUER_RESOLVER`` over a Django model: every active :class:`IdentityProvider` row is one trusted issuer.

docs/multi-tenant.md includes this file; tests/test_resolver.py runs it.
"""

from __future__ import annotations

from typing import Any

from .models import IdentityProvider


# --8<-- [start:resolver]
def resolve(unverified_iss: str, request: Any) -> dict[str, Any] | None:
    """Return the settings of an active tenant's issuer, or None (the token is then ``invalid_issuer``)."""
    row = IdentityProvider.objects.filter(issuer=unverified_iss, active=True).first()
    if row is None:
        return None
    settings: dict[str, Any] = {"ISSUER": row.issuer, "AUDIENCE": row.audience}
    if row.jwks_url:
        settings["JWKS_URL"] = row.jwks_url
    return settings


# --8<-- [end:resolver]
