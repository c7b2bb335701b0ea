"""user_refresh.revalidate: the batch read of due copies answers for exactly the identities asked, as the sync says.

Written against surviving mutants of drf_oidc_jwks/user_refresh.py (docs/security.md, "Mutation testing").
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from drf_oidc_jwks.conf import build, get_settings
from drf_oidc_jwks.exceptions import UserInactive
from drf_oidc_jwks.models import OIDCIdentity
from drf_oidc_jwks.user_refresh import revalidate
from drf_oidc_jwks.user_state import ACTIVE, INACTIVE
from drf_oidc_jwks.users import UserSync

User = get_user_model()
ONE, TWO = "https://one.example", "https://two.example"


class RefuseEveryone(UserSync):
    """A user sync whose local policy lets no one in."""

    def check_active(self, user: Any) -> None:
        raise UserInactive("refused by policy")


def identity(issuer: str, subject: str, *, active: bool = True) -> OIDCIdentity:
    user = User.objects.create(username=f"{subject}@{issuer}", is_active=active)
    return OIDCIdentity.objects.create(issuer=issuer, subject=subject, user=user, fingerprint=f"fp-{subject}-{issuer}")


def test_revalidate_answers_for_the_identities_asked_and_no_other(oidc_settings: Any) -> None:
    sam_one = identity(ONE, "sam")
    identity(TWO, "sam", active=False)  # the same subject at another issuer: another person
    identity(ONE, "kim", active=False)  # another subject of the same issuer, not asked for
    s = get_settings()
    first = revalidate(s, [(ONE, "sam")])
    assert first == {(ONE, "sam"): (ACTIVE, "fp-sam-https://one.example", sam_one.user)}
    assert first[(ONE, "sam")][2].pk == sam_one.user_id
    assert revalidate(s, [(TWO, "sam")]) == {(TWO, "sam"): INACTIVE}
    assert revalidate(s, [(ONE, "kim"), (ONE, "nobody"), (TWO, "kim")]) == {(ONE, "kim"): INACTIVE}


def test_revalidate_decides_with_the_user_sync_of_the_settings_it_is_given(oidc_settings: Any, issuer: Any) -> None:
    identity(ONE, "sam")
    strict = build(issuer.settings(DPOP="off", USER_SYNC_CLASS=f"{__name__}.RefuseEveryone"))
    assert revalidate(strict, [(ONE, "sam")]) == {(ONE, "sam"): INACTIVE}
    assert revalidate(get_settings(), [(ONE, "sam")])[(ONE, "sam")][0] == ACTIVE
