"""``python manage.py mint_token --sub alice --role admin --tenant acme``: a token from the development issuer."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import issuer


def parse_claims(items: list[str]) -> dict[str, Any]:
    """Turn ``name=value`` items into claims: the value as JSON when it parses, else as a string."""
    claims: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--claim takes name=value, got {item!r}.")
        try:
            claims[name] = json.loads(value)
        except ValueError:
            claims[name] = value
    return claims


class Command(BaseCommand):
    help = "Print a bearer token signed by the development issuer (local development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sub", default="alice", help="subject (user id), default alice")
        parser.add_argument("--email", default=None, help="default <sub>@example.com")
        parser.add_argument("--name", default=None, help="default the subject, title-cased")
        parser.add_argument("--role", default=None, help="a 'role' claim (Better Auth style)")
        parser.add_argument("--roles", default=None, help="a 'roles' claim: comma-separated")
        parser.add_argument("--tenant", default=None, help="tenant_id claim (also the organization id)")
        parser.add_argument("--org", action="append", default=None, help="organization id (repeatable)")
        parser.add_argument("--org-role", default=None)
        parser.add_argument("--scope", default=None, help="space-separated scopes")
        parser.add_argument("--expires-in", type=int, default=3600, help="seconds, default 3600")
        parser.add_argument(
            "--claim", action="append", default=[], help="any claim as name=JSON-or-string (repeatable; wins)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sub = options["sub"]
        tenant = options["tenant"]
        claims: dict[str, Any] = {
            "email": options["email"] or f"{sub}@example.com",
            "name": options["name"] or sub.title(),
            "email_verified": True,
            "role": options["role"],
            "roles": options["roles"].split(",") if options["roles"] else None,
            "tenant_id": tenant,
            "organization_ids": options["org"] or ([tenant] if tenant else None),
            "org_role": options["org_role"],
            "scope": options["scope"],
        }
        claims.update(parse_claims(options["claim"]))
        sub = str(claims.pop("sub", sub))
        self.stdout.write(issuer.mint(sub, expires_in=options["expires_in"], **claims))
