"""``python manage.py mint_token --sub alice --role admin --tenant acme``: a token from the development issuer."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from testproject.api import devissuer


class Command(BaseCommand):
    help = "Mint a bearer token signed by the development issuer (demo and local development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sub", default="alice", help="subject (user id)")
        parser.add_argument("--email", default=None)
        parser.add_argument("--name", default=None)
        parser.add_argument("--role", default="user", help="Better Auth style role claim")
        parser.add_argument("--tenant", default=None, help="tenant_id claim")
        parser.add_argument("--org", action="append", default=None, help="organization id (repeatable)")
        parser.add_argument("--org-role", default=None)
        parser.add_argument("--scope", default=None, help="space-separated scopes")
        parser.add_argument("--expires-in", type=int, default=3600, help="seconds")
        parser.add_argument("--claim", action="append", default=[], help="extra claim as key=JSON-or-string")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEV_ISSUER_ENABLED:
            raise CommandError("The development issuer is disabled (DEV_ISSUER_ENABLED).")
        extra: dict[str, Any] = {}
        for item in options["claim"]:
            key, _, value = item.partition("=")
            try:
                extra[key] = json.loads(value)
            except ValueError:
                extra[key] = value
        sub = options["sub"]
        token = devissuer.mint(
            sub,
            expires_in=options["expires_in"],
            email=options["email"] or f"{sub}@example.com",
            name=options["name"] or sub.title(),
            email_verified=True,
            role=options["role"],
            tenant_id=options["tenant"],
            organization_ids=options["org"] or ([options["tenant"]] if options["tenant"] else None),
            org_role=options["org_role"],
            scope=options["scope"],
            **extra,
        )
        self.stdout.write(token)
