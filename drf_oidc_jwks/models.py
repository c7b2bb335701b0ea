"""``OIDCIdentity``: which Django user an (issuer, subject) pair is."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete, post_save


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


# The cached active state of an identity (users.py) must not outlive a change of its user or of
# the identity itself: forget it when either is saved or deleted. String sender: the user model may
# not be loaded yet when this module is imported.


def _identity_changed(sender: Any, instance: OIDCIdentity, **kwargs: Any) -> None:
    from .users import forget_identity

    forget_identity(instance.issuer, instance.subject)


def _user_changed(sender: Any, instance: Any, created: bool = False, update_fields: Any = None, **kwargs: Any) -> None:
    if getattr(instance, "_drf_oidc_jwks_syncing", False):
        return  # the sync's own write: it stores the new state and user itself, right after
    if created or kwargs.get("raw") or (update_fields is not None and set(update_fields) <= {"last_login"}):
        # A new user has no identity yet, fixtures load raw rows; a last_login stamp changes nothing
        # worth a query. Any other save may change what the cached user says (is_active, names, flags).
        return
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DatabaseError, transaction

    from .conf import get_settings
    from .users import forget_identity

    try:
        if get_settings().user_cache_ttl <= 0:
            return  # nothing is cached
    except ImproperlyConfigured:
        return
    try:
        # A savepoint: a data migration may save users before this app's table exists, and a
        # failed query must not abort the caller's transaction.
        using = kwargs.get("using") or "default"
        with transaction.atomic(using=using):
            rows = OIDCIdentity.objects.using(using).filter(user_id=instance.pk)
            keys = list(rows.values_list("issuer", "subject"))
    except DatabaseError:
        return
    for issuer, subject in keys:
        forget_identity(issuer, subject)


post_save.connect(_identity_changed, sender=OIDCIdentity, dispatch_uid="drf_oidc_jwks.identity_saved")
post_delete.connect(_identity_changed, sender=OIDCIdentity, dispatch_uid="drf_oidc_jwks.identity_deleted")
post_save.connect(_user_changed, sender=settings.AUTH_USER_MODEL, dispatch_uid="drf_oidc_jwks.user_saved")
