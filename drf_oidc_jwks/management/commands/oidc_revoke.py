"""``manage.py oidc_revoke --issuer ... (--sub ... / --sid ... / --jti ...)``: revoke tokens before their ``exp``.

The revocation goes to the shared cache (``JWKS_CACHE_ALIAS``), so every worker on every host enforces it
within ``REVOCATION_POLL`` seconds; see docs/revocation.md.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from drf_oidc_jwks import revocation


class Command(BaseCommand):
    help = "Revoke an issuer's tokens by subject (sub), session (sid) or token id (jti)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--issuer", required=True, help="the issuer (iss) of the tokens, exactly")
        parser.add_argument("--sub", help="revoke this subject's tokens issued until now")
        parser.add_argument("--sid", help="revoke this session's tokens issued until now")
        parser.add_argument("--jti", help="revoke the one token with this jti")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = revocation.revoke(options["issuer"], sub=options["sub"], sid=options["sid"], jti=options["jti"])
        except ValueError as exc:
            raise CommandError(f"{exc} (give --sub, --sid and/or --jti)") from None
        except Exception as exc:  # noqa: BLE001 - the cache is down: say so, never a traceback
            raise CommandError(
                f"the revocation could not be stored in the shared cache: {type(exc).__name__}"
            ) from None
        store = revocation.get_store()
        self.stdout.write(
            f"revoked {count} for issuer {options['issuer']!r}; every worker enforces it within {store.poll:g}s "
            f"and remembers it {store.ttl:g}s"
        )
