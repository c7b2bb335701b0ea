"""Admin for ``OIDCIdentity``: see and unlink which identity-provider accounts map to which users."""

from __future__ import annotations

from django.contrib import admin

from .models import OIDCIdentity


@admin.register(OIDCIdentity)
class OIDCIdentityAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("subject", "issuer", "user", "created_at", "updated_at")
    list_filter = ("issuer",)
    search_fields = ("subject", "issuer", "user__username", "user__email")
    raw_id_fields = ("user",)
    readonly_fields = ("fingerprint", "claims_issued_at", "created_at", "updated_at")
    list_select_related = ("user",)
