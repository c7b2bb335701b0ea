from __future__ import annotations

from django.apps import AppConfig


class DevIssuerConfig(AppConfig):
    name = "drf_oidc_jwks.contrib.devissuer"
    label = "drf_oidc_jwks_devissuer"
    verbose_name = "OIDC development issuer"

    def ready(self) -> None:
        from .issuer import refuse_unless_local

        # At start-up, not only as a system check: gunicorn and uvicorn never run the checks.
        refuse_unless_local()
