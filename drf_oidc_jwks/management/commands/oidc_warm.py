"""``manage.py oidc_warm``: fill the shared cache with every issuer's discovery document and JWKS now.

A deploy or container start hook: the first request after a deploy then finds the keys in the cache
instead of paying discovery plus JWKS. One line per issuer; exits non-zero when any issuer failed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import KeySourceError
from drf_oidc_jwks.jwks import get_client


class Command(BaseCommand):
    help = "Fetch discovery and the JWKS of every configured issuer into the shared cache (a deploy hook)."

    def handle(self, *args: Any, **options: Any) -> None:
        failed = 0
        for issuer in get_settings().issuers:
            try:
                keyset = get_client(issuer).warm()
            except KeySourceError as exc:
                failed += 1
                self.stderr.write(f"FAILED {issuer.issuer}: {exc.reason}")
                continue
            kids = ", ".join(str(k.kid) for k in keyset.keys)
            self.stdout.write(f"ok {issuer.issuer}: {len(keyset.keys)} key(s) ({kids})")
        if failed:
            raise CommandError(f"{failed} issuer(s) could not be warmed")
