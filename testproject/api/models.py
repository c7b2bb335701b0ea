"""Models of the demo API: tenant-owned resources, and projects whose tasks are scoped through a relation."""

from __future__ import annotations

from django.db import models


class Resource(models.Model):
    """A record owned by one tenant (the reference guides' ``Resource``)."""

    tenant_id = models.CharField(max_length=128, db_index=True)
    created_by = models.CharField(max_length=255)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    """A tenant's project; its tasks reach the tenant through ``project__tenant_id``."""

    tenant_id = models.CharField(max_length=128, db_index=True)
    created_by = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    """A task in a project: no tenant column of its own."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    created_by = models.CharField(max_length=255)
    title = models.CharField(max_length=200)
    done = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title


# --8<-- [start:model]
class IdentityProvider(models.Model):
    """A customer's identity provider: the table ``ISSUER_RESOLVER`` looks tokens' issuers up in."""

    issuer = models.CharField(max_length=1024, unique=True)  # the exact iss, trailing slash and all
    audience = models.CharField(max_length=200)
    jwks_url = models.CharField(max_length=1024, blank=True, default="")  # blank: the issuer's discovery
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.issuer


# --8<-- [end:model]
