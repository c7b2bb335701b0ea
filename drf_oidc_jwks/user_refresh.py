"""Revalidating a process's copies of user states in batches, before they expire.

A copy is good until ``USER_CACHE_TTL`` after its database read (the bound for a change that sends no
signal). Re-reading each user when its copy expires costs a query and two shared-cache round trips per
user and per process; with thousands of users that is a steady share of the requests. Instead, each
generation check (every ``USER_LOCAL_CACHE_TTL``) reads the copies due to expire soon again in batches,
one query per issuer and :data:`BATCH` identities, through the user sync's ``check_active``.
"""

from __future__ import annotations

from .conf import Settings
from .exceptions import UserInactive
from .user_state import ACTIVE, INACTIVE, Identity, State

#: Identities per query.
BATCH = 500


def revalidate(s: Settings, identities: list[Identity]) -> dict[Identity, State]:
    """Return the state of each of ``identities`` found in the database, as the user sync decides it."""
    from .models import OIDCIdentity
    from .users import get_user_sync

    sync = get_user_sync(s)
    by_issuer: dict[str, list[str]] = {}
    for issuer, subject in identities:
        by_issuer.setdefault(issuer, []).append(subject)
    found: dict[Identity, State] = {}
    for issuer, subjects in by_issuer.items():
        for start in range(0, len(subjects), BATCH):
            rows = OIDCIdentity.objects.select_related("user").filter(
                issuer=issuer, subject__in=subjects[start : start + BATCH]
            )
            for identity in rows:
                try:
                    sync.check_active(identity.user)
                except UserInactive:
                    found[(issuer, identity.subject)] = INACTIVE
                else:
                    found[(issuer, identity.subject)] = (ACTIVE, identity.fingerprint, identity.user)
    return found
