from __future__ import annotations

import importlib.util

from django.apps import AppConfig


class DrfOidcJwksConfig(AppConfig):
    name = "drf_oidc_jwks"
    verbose_name = "OIDC JWKS authentication"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from . import checks
        from .conf import reload_settings
        from .user_refresh import revalidate
        from .user_state import connect_receivers, local_states

        checks.register()
        # Forget a cached user state when a user or an identity is saved or deleted.
        connect_receivers()
        # Copies of user states about to expire are read again in batches, not one query per user.
        local_states().revalidator = revalidate
        setting_changed.connect(reload_settings, dispatch_uid="drf_oidc_jwks.reload_settings")
        if importlib.util.find_spec("drf_spectacular") is not None:
            from . import openapi  # noqa: F401  (registers the drf-spectacular security scheme)
