"""``OIDCIdentity``: which Django user an (issuer, subject) pair is."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OIDCIdentity(models.Model):
    """One identity-provider account, (issuer, subject), linked to one Django user.

    ``fingerprint`` is a hash of the claims mapped onto the user: the user row is
    written only when it changes.
    """

    # OIDC Core 2: iss is a URL and sub at most 255 ASCII characters; 255 + 255 also fits a
    # unique index on MySQL's utf8mb4.
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities")
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    #: ``iat`` of the token the mapped fields were last written from, so an older token that is
    #: still valid cannot roll them back (and two tokens cannot make every request write).
    claims_issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "OIDC identity"
        verbose_name_plural = "OIDC identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="drf_oidc_jwks_identity_issuer_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"
