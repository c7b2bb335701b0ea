"""Signals sent by drf-oidc-jwks."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent after a user was created or updated from a token's claims (never on the steady-state path).
#: Arguments: ``sender`` (the ``OIDCIdentity`` class), ``user``, ``identity``, ``created`` (a new
#: identity was made), ``claims`` (the verified ``Claims``).
user_synced = Signal()
