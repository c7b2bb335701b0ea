"""User sync: lazy (issuer, sub) users, query counts, deactivation, linking, role mapping, races, stateless mode.

Query counts are measured on the real database of the run (SQLite, or PostgreSQL under
``python -m tests.services -- pytest``); statements are classified by their verb so the
savepoints of the surrounding test transaction do not blur them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from drf_oidc_jwks import users
from drf_oidc_jwks.conf import validate
from drf_oidc_jwks.models import OIDCIdentity
from drf_oidc_jwks.signals import user_synced
from drf_oidc_jwks.testing import TestIssuer
from drf_oidc_jwks.tokens import verify_token
from drf_oidc_jwks.users import ServicePrincipal, SyncedUser, TokenUser, forget_user, get_user, load_user

User = get_user_model()

ME = "/api/me"
CLAIMS_ONLY = "/api/personalized"  # uses request.auth only; IsAuthenticated asks request.user.is_authenticated


def bearer(api: APIClient, token: str, path: str = ME) -> Any:
    return api.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


class Queries:
    """The statements run inside the block, by verb."""

    def __init__(self, ctx: CaptureQueriesContext) -> None:
        self.ctx = ctx

    def _verb(self, verb: str) -> list[str]:
        return [q["sql"] for q in self.ctx.captured_queries if q["sql"].lstrip().upper().startswith(verb)]

    @property
    def selects(self) -> list[str]:
        return self._verb("SELECT")

    @property
    def inserts(self) -> list[str]:
        return self._verb("INSERT")

    @property
    def updates(self) -> list[str]:
        return self._verb("UPDATE")

    @property
    def writes(self) -> list[str]:
        return self.inserts + self.updates + self._verb("DELETE")

    @property
    def total(self) -> int:
        return len(self.ctx.captured_queries)


@contextmanager
def queries() -> Iterator[Queries]:
    with CaptureQueriesContext(connection) as ctx:
        yield Queries(ctx)


@pytest.fixture
def profile(issuer: TestIssuer) -> Callable[..., str]:
    """``profile(**changes)``: a token of alice with a full profile, claims changed as given."""

    def mint(**changes: Any) -> str:
        claims: dict[str, Any] = {
            "sub": "alice-sub",
            "email": "alice@example.com",
            "email_verified": True,
            "given_name": "Alice",
            "family_name": "Liddell",
            "preferred_username": "alice",
            "roles": ["user"],
        }
        claims.update(changes)
        return issuer.token(**claims)

    return mint


def warm(api: APIClient, issuer: TestIssuer) -> None:
    """Fetch the JWKS once, with a subject no test looks at."""
    assert bearer(api, issuer.token(sub="warm-up"), CLAIMS_ONLY).status_code == 200


# -- laziness and query counts -------------------------------------------------------------


def test_first_request_creates_one_user_and_one_identity(oidc_settings, issuer, api, profile):
    warm(api, issuer)
    with queries() as q:
        response = bearer(api, profile())
    assert response.status_code == 200, response.content
    assert len(q.inserts) == 2  # the user, the identity
    assert len(q.selects) == 1
    assert q.updates == []
    identity = OIDCIdentity.objects.get()
    user = identity.user
    assert (identity.issuer, identity.subject) == (issuer.issuer, "alice-sub")
    assert (user.username, user.email, user.first_name, user.last_name) == (
        "alice",
        "alice@example.com",
        "Alice",
        "Liddell",
    )
    assert not user.has_usable_password()
    assert response.json()["user"] == {
        "id": user.pk,
        "username": "alice",
        "email": "alice@example.com",
        "first_name": "Alice",
        "last_name": "Liddell",
        "is_staff": False,
        "is_superuser": False,
        "kind": "django",
    }


def test_repeat_request_using_the_user_runs_no_query_at_all(oidc_settings, issuer, api, profile):
    token = profile()
    assert bearer(api, token).status_code == 200
    with queries() as q:
        response = bearer(api, token)
    assert response.status_code == 200
    assert q.total == 0  # the user comes from the cache, with its state
    assert response.json()["user"]["email"] == "alice@example.com"


def test_a_new_token_with_the_same_claims_also_uses_the_cached_user(oidc_settings, issuer, api, profile):
    assert bearer(api, profile()).status_code == 200
    with queries() as q:
        assert bearer(api, profile(jti="another-token")).status_code == 200
    assert q.total == 0


def test_saving_the_user_refreshes_the_cached_copy(oidc_settings, issuer, api, profile):
    token = profile()
    assert bearer(api, token).status_code == 200
    user = User.objects.get()
    user.is_staff = True
    user.save()  # e.g. in the admin
    with queries() as q:
        response = bearer(api, token)
    assert response.json()["user"]["is_staff"] is True
    assert len(q.selects) == 1 and q.writes == []
    with queries() as again:
        assert bearer(api, token).json()["user"]["is_staff"] is True
    assert again.total == 0


def test_repeat_request_without_the_state_cache_runs_one_select_that_also_loads_the_user(
    oidc_settings, issuer, api, profile, django_assert_num_queries
):
    oidc_settings(USER_CACHE_TTL=0)
    token = profile()
    assert bearer(api, token).status_code == 200
    with django_assert_num_queries(1):
        assert bearer(api, token).status_code == 200
    with django_assert_num_queries(1):
        assert bearer(api, token, CLAIMS_ONLY).status_code == 200


def test_claims_only_view_runs_no_query_once_the_state_is_cached(
    oidc_settings, issuer, api, profile, django_assert_num_queries
):
    token = profile()
    assert bearer(api, token).status_code == 200  # creates the user, caches its state
    with django_assert_num_queries(0):
        for _ in range(5):
            response = bearer(api, token, CLAIMS_ONLY)
            assert response.status_code == 200
    assert response.json()["content_level"] == "beginner"


def test_claims_only_view_for_a_new_subject_reads_once_and_creates_nothing(oidc_settings, issuer, api, profile):
    warm(api, issuer)
    token = profile()
    with queries() as first:
        assert bearer(api, token, CLAIMS_ONLY).status_code == 200
    with queries() as second:
        assert bearer(api, token, CLAIMS_ONLY).status_code == 200
    assert (len(first.selects), first.writes) == (1, [])
    assert second.total == 0
    assert not OIDCIdentity.objects.exists()
    assert bearer(api, token).status_code == 200  # the first real use creates it
    assert OIDCIdentity.objects.count() == 1


def test_changed_claims_write_the_user_once_then_the_steady_state_is_back(oidc_settings, issuer, api, profile):
    assert bearer(api, profile()).status_code == 200
    changed = profile(email="alice@new.example", given_name="Alicia", iat=int(issuer.claims()["iat"]) + 1)
    with queries() as q:
        response = bearer(api, changed)
    assert response.status_code == 200
    assert len(q.updates) == 2  # the user's changed fields, the identity's fingerprint
    assert len(q.selects) == 1
    assert q.inserts == []
    user = User.objects.get()
    assert (user.email, user.first_name, user.last_name) == ("alice@new.example", "Alicia", "Liddell")
    with queries() as again:
        assert bearer(api, changed).json()["user"]["email"] == "alice@new.example"
    assert again.total == 0


def test_changed_claims_on_a_claims_only_view_write_nothing_until_the_user_is_used(oidc_settings, issuer, api, profile):
    assert bearer(api, profile()).status_code == 200
    changed = profile(email="alice@new.example")
    with queries() as q:
        assert bearer(api, changed, CLAIMS_ONLY).status_code == 200
    assert q.total == 0
    assert User.objects.get().email == "alice@example.com"
    assert bearer(api, changed).status_code == 200
    assert User.objects.get().email == "alice@new.example"


def test_an_older_token_still_valid_cannot_roll_back_what_a_newer_one_wrote(oidc_settings, issuer, api, profile):
    iat = int(issuer.claims()["iat"])
    old = profile(email="old@example.com", iat=iat - 60)
    new = profile(email="new@example.com", iat=iat)
    assert bearer(api, new).status_code == 200
    with queries() as q:
        assert bearer(api, old).status_code == 200
    assert q.writes == []
    assert User.objects.get().email == "new@example.com"


def test_request_user_answers_is_authenticated_without_the_database_and_loads_on_first_use(
    oidc_settings, issuer, profile, django_assert_num_queries
):
    claims = verify_token(profile())
    with django_assert_num_queries(1):  # a new subject: one look for its identity, nothing written
        user = get_user(claims)
    with django_assert_num_queries(0):
        assert isinstance(user, SyncedUser)
        assert user.is_authenticated is True
        assert user.is_anonymous is False
        assert bool(user) is True
        assert user.claims is claims
        assert user.is_loaded is False
    assert user.username == "alice"  # the first real use creates the user
    assert user.is_loaded is True
    assert user.pk == OIDCIdentity.objects.get().user_id
    with django_assert_num_queries(0):  # from now on the user comes from the cache
        again = get_user(claims)
        assert again.is_loaded is False  # copied from the cache only when used
        assert (again.username, again.pk) == ("alice", user.pk)


# -- deactivated users ------------------------------------------------------------------------


def assert_refused_inactive(response: Any) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "user_inactive"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.parametrize("path", [ME, CLAIMS_ONLY])
def test_a_locally_deactivated_user_is_refused_at_once_even_on_a_claims_only_view(
    oidc_settings, issuer, api, profile, path
):
    token = profile()
    assert bearer(api, token).status_code == 200
    assert bearer(api, token, CLAIMS_ONLY).status_code == 200  # state cached as active
    user = User.objects.get()
    user.is_active = False
    user.save()  # the admin's way: signals forget the cached state
    assert_refused_inactive(bearer(api, token, path))
    user.is_active = True
    user.save(update_fields=["is_active"])
    assert bearer(api, token, path).status_code == 200


def test_a_refused_inactive_user_stays_refused_from_the_cache_without_queries(
    oidc_settings, issuer, api, profile, django_assert_num_queries
):
    token = profile()
    assert bearer(api, token).status_code == 200
    User.objects.update(is_active=False)
    forget_user(User.objects.get())  # what a bulk update() needs, as it sends no signal
    assert_refused_inactive(bearer(api, token, CLAIMS_ONLY))
    with django_assert_num_queries(0):
        assert_refused_inactive(bearer(api, token, CLAIMS_ONLY))


def test_a_bulk_deactivation_is_seen_at_once_with_user_cache_ttl_zero(oidc_settings, issuer, api, profile):
    oidc_settings(USER_CACHE_TTL=0)
    token = profile()
    assert bearer(api, token, ME).status_code == 200
    User.objects.update(is_active=False)  # no signal at all
    assert_refused_inactive(bearer(api, token, CLAIMS_ONLY))


def test_a_bulk_update_that_sends_no_signal_is_seen_once_forget_user_is_called(oidc_settings, issuer, api, profile):
    from drf_oidc_jwks.users import forget_user

    token = profile()
    assert bearer(api, token).status_code == 200
    User.objects.update(is_active=False)  # bypasses signals: the cache still holds the active user
    assert bearer(api, token, ME).status_code == 200  # the documented window (docs/users.md)
    forget_user(User.objects.get())
    assert_refused_inactive(bearer(api, token, ME))
    assert_refused_inactive(bearer(api, token, CLAIMS_ONLY))


def test_a_bulk_update_that_sends_no_signal_is_seen_after_user_cache_ttl(oidc_settings, issuer, api, profile):
    import time

    oidc_settings(USER_CACHE_TTL=1)
    token = profile()
    assert bearer(api, token).status_code == 200
    User.objects.update(is_active=False)
    time.sleep(1.2)
    assert_refused_inactive(bearer(api, token, ME))


def test_a_deactivation_in_another_process_is_seen_within_user_local_cache_ttl(oidc_settings, issuer, api, profile):
    import time

    from django.core.cache import cache

    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.user_state import bump_generation, state_key

    oidc_settings(USER_LOCAL_CACHE_TTL=0.5)
    token = profile()
    assert bearer(api, token).status_code == 200
    # What another worker's save does: the row changes, the shared entry is forgotten and the shared
    # generation bumped; this process received no signal, so its local copy serves until its next
    # check of the generation, USER_LOCAL_CACHE_TTL after the last.
    User.objects.update(is_active=False)
    cache.delete(state_key(issuer.issuer, "alice-sub"))
    bump_generation(get_settings())
    with queries() as q:
        assert bearer(api, token).status_code == 200
    assert q.total == 0
    time.sleep(0.6)
    assert_refused_inactive(bearer(api, token, CLAIMS_ONLY))


def test_a_view_mutating_request_user_does_not_change_the_cached_copy(oidc_settings, issuer, api, profile):
    from drf_oidc_jwks.tokens import verify_token
    from drf_oidc_jwks.users import get_user

    claims = verify_token(profile())
    get_user(claims).username  # creates and caches  # noqa: B018
    first = get_user(claims)
    first.first_name = "Mallory"  # never saved
    assert get_user(claims).first_name == "Alice"


def test_a_stale_active_state_is_corrected_when_the_user_is_loaded_inside_the_view(oidc_settings, issuer, api, profile):
    token = profile()
    assert bearer(api, token, CLAIMS_ONLY).status_code == 200  # state "new": the user is not cached yet
    assert bearer(api, token).status_code == 200  # creates the user
    from django.core.cache import cache

    from drf_oidc_jwks.user_state import state_key

    cache.set(state_key(issuer.issuer, "alice-sub"), "active")  # a state cached without its user
    users.reset_local_states()
    User.objects.update(is_active=False)  # bypasses signals
    response = bearer(api, token, ME)  # loading the user finds out: 401, never a 500
    assert (response.status_code, response.json()["code"]) == (401, "user_inactive")
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert_refused_inactive(bearer(api, token, CLAIMS_ONLY))  # and the state now says so


def test_saving_other_fields_of_a_user_costs_no_extra_query(oidc_settings, issuer, api, profile):
    assert bearer(api, profile()).status_code == 200
    user = User.objects.get()
    with queries() as partial:
        user.save(update_fields=["last_login"])  # what every session login does
    with queries() as full:
        user.save()
    assert (len(partial.updates), len(partial.selects)) == (1, 0)
    assert (len(full.updates), len(full.selects)) == (1, 1)  # the full save looks up identities to forget


def test_deleting_the_user_forgets_its_identity_and_the_next_request_creates_a_new_user(
    oidc_settings, issuer, api, profile
):
    token = profile()
    first = bearer(api, token).json()["user"]["id"]
    User.objects.get().delete()
    assert not OIDCIdentity.objects.exists()
    response = bearer(api, token)
    assert response.status_code == 200
    assert response.json()["user"]["id"] != first
    assert OIDCIdentity.objects.count() == 1


# -- identity, usernames and e-mail -----------------------------------------------------------


def test_identity_is_issuer_and_subject_so_a_shared_email_makes_two_users(oidc_settings, issuer, api):
    a = bearer(api, issuer.token(sub="a", email="same@example.com", email_verified=True))
    b = bearer(api, issuer.token(sub="b", email="same@example.com", email_verified=True))
    assert a.status_code == b.status_code == 200
    assert a.json()["user"]["id"] != b.json()["user"]["id"]
    assert User.objects.filter(email="same@example.com").count() == 2


def test_one_subject_at_two_issuers_is_two_users(settings, api):
    one, two = TestIssuer(audience="https://api.test"), TestIssuer(audience="https://api.test")
    with one.serve(), two.serve():
        settings.DRF_OIDC_JWKS = {
            "AUDIENCE": "https://api.test",
            "ISSUERS": [one.settings(), two.settings()],
        }
        a = bearer(api, one.token(sub="same"))
        b = bearer(api, two.token(sub="same"))
    assert a.status_code == b.status_code == 200
    assert a.json()["user"]["id"] != b.json()["user"]["id"]
    assert sorted(OIDCIdentity.objects.values_list("issuer", flat=True)) == sorted([one.issuer, two.issuer])


def test_a_username_taken_by_a_local_user_does_not_hand_that_user_over(oidc_settings, issuer, api):
    local = User.objects.create_superuser("admin", "root@example.com", "s3cret-password")
    response = bearer(api, issuer.token(sub="idp-admin", preferred_username="admin", email="x@example.com"))
    assert response.status_code == 200
    body = response.json()["user"]
    assert body["id"] != local.pk
    assert body["username"].startswith("admin.") and body["is_superuser"] is False
    local.refresh_from_db()
    assert (local.email, local.check_password("s3cret-password")) == ("root@example.com", True)
    assert not OIDCIdentity.objects.filter(user=local).exists()


def test_two_subjects_with_the_same_preferred_username_get_distinct_usernames(oidc_settings, issuer, api):
    a = bearer(api, issuer.token(sub="a", preferred_username="sam")).json()["user"]["username"]
    b = bearer(api, issuer.token(sub="b", preferred_username="sam")).json()["user"]["username"]
    assert a == "sam" and b.startswith("sam.") and a != b


def test_a_verified_email_never_links_to_a_local_user_by_default(oidc_settings, issuer, api):
    local = User.objects.create_user("bob", "bob@example.com")
    response = bearer(api, issuer.token(sub="bob-sub", email="bob@example.com", email_verified=True))
    assert response.json()["user"]["id"] != local.pk


@pytest.mark.parametrize(("verified", "links"), [(True, True), ("true", True), (False, False), (None, False)])
def test_link_by_verified_email_links_only_a_verified_email(oidc_settings, issuer, api, verified, links):
    oidc_settings(LINK_BY_VERIFIED_EMAIL=True)
    local = User.objects.create_user("bob", "Bob@Example.com")
    claims: dict[str, Any] = {"sub": "bob-sub", "email": "bob@example.com"}
    if verified is not None:
        claims["email_verified"] = verified
    response = bearer(api, issuer.token(**claims))
    assert response.status_code == 200
    assert (response.json()["user"]["id"] == local.pk) is links


def test_link_by_verified_email_never_takes_over_a_superuser(oidc_settings, issuer, api):
    oidc_settings(LINK_BY_VERIFIED_EMAIL=True)
    root = User.objects.create_superuser("root", "root@example.com", "pw-123456")
    response = bearer(api, issuer.token(sub="r", email="root@example.com", email_verified=True))
    assert response.json()["user"]["id"] != root.pk


def test_link_by_verified_email_refuses_an_ambiguous_email(oidc_settings, issuer, api):
    oidc_settings(LINK_BY_VERIFIED_EMAIL=True)
    first = User.objects.create_user("c1", "c@example.com")
    second = User.objects.create_user("c2", "C@example.com")
    response = bearer(api, issuer.token(sub="c", email="c@example.com", email_verified=True))
    assert response.json()["user"]["id"] not in (first.pk, second.pk)


def test_linking_to_an_inactive_local_user_is_refused_on_the_first_request(oidc_settings, issuer, api):
    oidc_settings(LINK_BY_VERIFIED_EMAIL=True)
    User.objects.create_user("gone", "gone@example.com", is_active=False)
    token = issuer.token(sub="gone-sub", email="gone@example.com", email_verified=True)
    assert_refused_inactive(bearer(api, token, CLAIMS_ONLY))


# -- mapping -----------------------------------------------------------------------------------


def test_long_and_odd_claim_values_are_fitted_to_the_user_fields(oidc_settings, issuer, api):
    token = issuer.token(
        sub="odd",
        given_name="G" * 400,
        family_name={"not": "a string"},
        email=["odd@example.com"],
        preferred_username="u" * 400,
    )
    response = bearer(api, token)
    assert response.status_code == 200, response.content
    user = User.objects.get()
    assert user.first_name == "G" * 150
    assert user.last_name == ""
    assert user.email == "odd@example.com"
    assert len(user.username) == 150


def test_user_fields_map_any_attribute_or_claim_path(oidc_settings, issuer, api):
    oidc_settings(USER_FIELDS={"first_name": "name", "last_name": "https://example.com/profile.surname"})
    token = issuer.token(sub="p", name="Pat", **{"https://example.com/profile": {"surname": "Smith"}})
    assert bearer(api, token).status_code == 200
    user = User.objects.get()
    assert (user.first_name, user.last_name, user.email) == ("Pat", "Smith", "")


@pytest.mark.parametrize("field", ["is_active", "is_superuser", "password"])
def test_user_fields_may_never_write_local_flags_or_passwords(field):
    problems = validate({"ISSUER": "https://a.test", "AUDIENCE": "x", "USER_FIELDS": {field: "email"}})
    assert [p.id for p in problems] == ["E012"]


@pytest.mark.parametrize(
    "value", [{"USER_FIELDS": ["email"]}, {"STAFF_ROLES": [1]}, {"SUPERUSER_ROLES": 5}, {"USER_CACHE_TTL": -1}]
)
def test_malformed_user_sync_settings_are_reported(value):
    problems = validate({"ISSUER": "https://a.test", "AUDIENCE": "x", **value})
    assert len(problems) == 1 and problems[0].id in {"E012", "E010"}


def test_role_mapping_is_off_by_default(oidc_settings, issuer, api):
    body = bearer(api, issuer.token(sub="r", roles=["admin", "superuser"])).json()["user"]
    assert (body["is_staff"], body["is_superuser"]) == (False, False)
    assert not Group.objects.exists()


def test_staff_and_superuser_roles_set_and_clear_the_flags(oidc_settings, issuer, api):
    oidc_settings(STAFF_ROLES=["staff", "admin"], SUPERUSER_ROLES=["admin"])
    iat = int(issuer.claims()["iat"])
    admin = bearer(api, issuer.token(sub="r", roles=["admin"], iat=iat - 2)).json()["user"]
    staff = bearer(api, issuer.token(sub="r", roles=["staff"], iat=iat - 1)).json()["user"]
    plain = bearer(api, issuer.token(sub="r", roles=["user"], iat=iat)).json()["user"]
    assert (admin["is_staff"], admin["is_superuser"]) == (True, True)
    assert (staff["is_staff"], staff["is_superuser"]) == (True, False)
    assert (plain["is_staff"], plain["is_superuser"]) == (False, False)
    assert admin["id"] == staff["id"] == plain["id"]


def test_sync_groups_makes_the_users_groups_those_named_after_its_roles(oidc_settings, issuer, api):
    oidc_settings(SYNC_GROUPS=True)
    iat = int(issuer.claims()["iat"])
    Group.objects.create(name="editors")
    assert bearer(api, issuer.token(sub="g", roles=["editors", "viewers"], iat=iat - 1)).status_code == 200
    user = User.objects.get()
    assert sorted(user.groups.values_list("name", flat=True)) == ["editors", "viewers"]
    assert bearer(api, issuer.token(sub="g", roles="viewers", iat=iat)).status_code == 200
    assert sorted(user.groups.values_list("name", flat=True)) == ["viewers"]
    assert Group.objects.count() == 2


def test_user_synced_is_sent_on_creation_and_on_change_only(oidc_settings, issuer, api, profile):
    events: list[tuple[bool, str, str]] = []

    def receiver(sender: Any, user: Any, identity: Any, created: bool, claims: Any, **kwargs: Any) -> None:
        assert sender is OIDCIdentity and identity.user == user
        events.append((created, user.email, claims.sub))

    user_synced.connect(receiver)
    try:
        token = profile()
        bearer(api, token)
        bearer(api, token)
        bearer(api, profile(email="changed@example.com", iat=int(issuer.claims()["iat"]) + 1))
    finally:
        user_synced.disconnect(receiver)
    assert events == [(True, "alice@example.com", "alice-sub"), (False, "changed@example.com", "alice-sub")]


# -- hostile and broken inputs ---------------------------------------------------------------


def test_a_subject_longer_than_oidc_allows_is_refused_cleanly(oidc_settings, issuer, api):
    response = bearer(api, issuer.token(sub="s" * 256))
    assert response.status_code == 401
    assert response.json()["code"] == "malformed_token"
    assert OIDCIdentity.objects.count() == 0


def test_a_subject_holding_a_nul_character_is_refused_cleanly(oidc_settings, issuer, api):
    response = bearer(api, issuer.token(sub="ali\x00ce"))
    assert (response.status_code, response.json()["code"]) == (401, "malformed_token")


def test_nul_characters_in_mapped_claims_and_roles_never_reach_the_database(oidc_settings, issuer, api):
    oidc_settings(SYNC_GROUPS=True, LINK_BY_VERIFIED_EMAIL=True)
    token = issuer.token(
        sub="nul", email="a\x00b@example.com", email_verified=True, given_name="A\x00da", roles=["ok", "b\x00ad"]
    )
    response = bearer(api, token)
    assert response.status_code == 200, response.content
    user = User.objects.get()
    assert (user.first_name, user.email) == ("Ada", "ab@example.com")
    assert list(user.groups.values_list("name", flat=True)) == ["ok"]


def test_a_token_without_sub_cannot_be_mapped_to_a_user(oidc_settings, issuer, api):
    oidc_settings(REQUIRED_CLAIMS=["exp"])
    response = bearer(api, issuer.token(sub=None))
    assert response.status_code == 401
    assert response.json()["code"] == "missing_claim"


# A configured cache whose server refuses every connection (an alias naming no cache is a configuration error).
UNREACHABLE_CACHE = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}


def test_a_broken_user_state_cache_falls_back_to_the_database(settings, oidc_settings, issuer, api, profile):
    settings.CACHES = {**settings.CACHES, "no-such-cache": UNREACHABLE_CACHE}
    oidc_settings(USER_CACHE_ALIAS="no-such-cache", USER_LOCAL_CACHE_TTL=0)
    token = profile()
    assert bearer(api, token).status_code == 200
    with queries() as q:
        assert bearer(api, token, CLAIMS_ONLY).status_code == 200
    assert len(q.selects) == 1


def test_a_broken_user_state_cache_degrades_to_the_process_copy(settings, oidc_settings, issuer, api, profile):
    settings.CACHES = {**settings.CACHES, "no-such-cache": UNREACHABLE_CACHE}
    oidc_settings(USER_CACHE_ALIAS="no-such-cache")
    token = profile()
    assert bearer(api, token).status_code == 200
    with queries() as q:
        assert bearer(api, token).status_code == 200
    assert q.total == 0


# -- races -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_of_one_subject_create_exactly_one_user_and_one_identity(oidc_settings, issuer):
    warm(APIClient(), issuer)
    token = issuer.token(sub="racer", preferred_username="racer", email="racer@example.com")
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            client = APIClient()
            barrier.wait()
            response = bearer(client, token)
            body = response.json() if response["Content-Type"].startswith("application/json") else None
            with lock:
                results.append((response.status_code, body and body.get("user", {}).get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == threads_count
    assert {status for status, _ in results} == {200}, results
    assert len({user_id for _, user_id in results}) == 1
    assert User.objects.count() == 1
    assert OIDCIdentity.objects.count() == 1


def run_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(i)`` in ``count`` threads released together; return results (exceptions included)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except Exception as exc:  # the test asserts there were none
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_of_one_identity_all_return_the_one_user_that_won(oidc_settings, issuer, caplog):
    claims = verify_token(issuer.token(sub="racer", preferred_username="racer"))
    caplog.set_level("DEBUG", logger="drf_oidc_jwks")
    # identity=None: every thread skips the read and inserts, so all but one must lose the race.
    results = run_threads(8, lambda i: load_user(claims, None).pk)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == 1
    assert (User.objects.count(), OIDCIdentity.objects.count()) == (1, 1)
    lost = [r for r in caplog.records if "concurrent request" in r.getMessage()]
    assert len(lost) == 7


@pytest.mark.django_db(transaction=True)
def test_concurrent_new_subjects_sharing_a_preferred_username_each_get_a_user(oidc_settings, issuer):
    tokens = [issuer.token(sub=f"sam-{i}", preferred_username="sam") for i in range(6)]
    claims = [verify_token(t) for t in tokens]
    results = run_threads(6, lambda i: load_user(claims[i], None).username)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == 6 and "sam" in results
    assert OIDCIdentity.objects.count() == 6


# -- stateless mode and machine tokens ---------------------------------------------------------


def test_stateless_mode_runs_no_query_even_when_the_user_is_used(
    oidc_settings, issuer, api, profile, django_assert_num_queries
):
    oidc_settings(SYNC_USERS=False)
    token = profile()
    with django_assert_num_queries(0):
        response = bearer(api, token)
        assert bearer(api, token, CLAIMS_ONLY).status_code == 200
    assert response.status_code == 200
    assert response.json()["user"] == {
        "id": "alice-sub",
        "username": "alice",
        "email": "alice@example.com",
        "first_name": "Alice",
        "last_name": "Liddell",
        "is_staff": False,
        "is_superuser": False,
        "kind": "token",
    }
    assert not User.objects.exists()


def test_token_user_is_authenticated_with_the_subject_as_pk_and_no_permissions(oidc_settings, issuer, profile):
    oidc_settings(SYNC_USERS=False)
    user = get_user(verify_token(profile()))
    assert isinstance(user, TokenUser) and not isinstance(user, ServicePrincipal)
    assert (user.is_authenticated, user.is_anonymous, user.is_active) == (True, False, True)
    assert user.pk == user.id == "alice-sub"
    assert user.get_full_name() == "Alice Liddell"
    assert user.has_perm("anything") is False and user.get_all_permissions() == set()
    assert user == get_user(verify_token(profile(email="other@example.com")))


def test_token_user_fields_are_read_from_the_claims_when_used_and_stay_assignable(oidc_settings, issuer, profile):
    # The fields are read on first use (most views never ask); they answer and can be set like plain fields.
    oidc_settings(SYNC_USERS=False)
    user = get_user(verify_token(profile()))
    assert "username" not in vars(user)
    assert (user.username, user.email, user.first_name, user.last_name) == (
        "alice",
        "alice@example.com",
        "Alice",
        "Liddell",
    )
    assert vars(user)["username"] == "alice"
    user.username, user.email = "renamed", "new@example.com"
    assert (user.get_username(), user.email, str(user)) == ("renamed", "new@example.com", "TokenUser renamed")
    assert not isinstance(TokenUser.username, str)  # looked up on the class: the field itself, no error
    principal = get_user(verify_token(issuer.token(sub="svc@clients", azp="svc", gty="client-credentials")))
    assert isinstance(principal, ServicePrincipal)
    assert (principal.client_id, principal.username, principal.email, principal.pk) == ("svc", "svc", "", "svc@clients")


def test_a_client_credentials_token_is_a_service_principal_without_a_user_row(
    oidc_settings, issuer, api, django_assert_num_queries
):
    token = issuer.token(sub="m2m-client@clients", azp="m2m-client", gty="client-credentials", scope="read:reports")
    warm(api, issuer)
    with queries() as first:  # first sight: one look for a local user of that subject, nothing written
        assert bearer(api, token).status_code == 200
    assert (len(first.selects), first.writes) == (1, [])
    with django_assert_num_queries(0):  # the steady state
        response = bearer(api, token)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["kind"] == "service"
    assert body["user"]["id"] == "m2m-client@clients"
    assert body["user"]["username"] == "m2m-client"
    assert body["claims"]["is_machine"] is True
    assert not User.objects.exists() and not OIDCIdentity.objects.exists()


# -- a subject with a local user is that user, whatever the token's shape ----------------------

MACHINE_SHAPES = {
    "client_id": {"client_id": "alice-sub"},
    "cid": {"cid": "alice-sub"},
    "azp": {"azp": "alice-sub"},
    "keycloak-service-account": {"azp": "billing", "preferred_username": "service-account-billing"},
}


@pytest.fixture(params=sorted(MACHINE_SHAPES))
def machine_shape(request: pytest.FixtureRequest, oidc_settings: Any) -> dict[str, Any]:
    """Claims that make alice's token look like a client acting for itself (Keycloak's under its preset)."""
    if request.param.startswith("keycloak"):
        oidc_settings(PROVIDER="keycloak")
    return MACHINE_SHAPES[request.param]


def deactivate_alice(api: APIClient, profile: Callable[..., str]) -> None:
    assert bearer(api, profile()).status_code == 200  # alice's user row
    user = User.objects.get()
    user.is_active = False
    user.save()


def test_a_deactivated_user_stays_refused_when_the_token_takes_a_machine_shape(
    oidc_settings, issuer, api, profile, machine_shape
):
    deactivate_alice(api, profile)
    machine = profile(**machine_shape)
    assert verify_token(machine).is_machine is True
    assert_refused_inactive(bearer(api, machine))  # the state was forgotten: read from the database
    assert_refused_inactive(bearer(api, machine, CLAIMS_ONLY))  # and now from the cached state
    assert not OIDCIdentity.objects.exclude(user=User.objects.get()).exists()


def test_a_deactivated_user_stays_refused_in_a_machine_shape_without_the_state_cache(
    oidc_settings, issuer, api, profile, machine_shape
):
    oidc_settings(USER_CACHE_TTL=0, **({"PROVIDER": "keycloak"} if "preferred_username" in machine_shape else {}))
    deactivate_alice(api, profile)
    assert_refused_inactive(bearer(api, profile(**machine_shape), CLAIMS_ONLY))


def test_a_deactivated_user_refused_from_the_cache_stays_refused_in_a_machine_shape_without_queries(
    oidc_settings, issuer, api, profile, machine_shape, django_assert_num_queries
):
    deactivate_alice(api, profile)
    assert_refused_inactive(bearer(api, profile()))  # the inactive state is cached
    with django_assert_num_queries(0):
        assert_refused_inactive(bearer(api, profile(**machine_shape), CLAIMS_ONLY))


def test_an_active_user_in_a_machine_shaped_token_is_still_that_user(
    oidc_settings, issuer, api, profile, machine_shape
):
    first = bearer(api, profile()).json()["user"]
    response = bearer(api, profile(**machine_shape))
    assert response.status_code == 200, response.content
    assert response.json()["claims"]["is_machine"] is True
    user = response.json()["user"]
    assert (user["kind"], user["id"]) == ("django", first["id"])
    assert User.objects.count() == 1


def test_a_machine_subject_with_no_local_user_is_remembered_as_such_until_a_user_appears(
    oidc_settings, issuer, api, profile, django_assert_num_queries
):
    machine = profile(client_id="alice-sub")
    assert bearer(api, machine).json()["user"]["kind"] == "service"  # one look, remembered
    with django_assert_num_queries(0):
        assert bearer(api, machine).json()["user"]["kind"] == "service"
    assert bearer(api, profile()).json()["user"]["kind"] == "django"  # the person signs in: a user row
    User.objects.update(is_active=False)
    forget_user(User.objects.get())
    assert_refused_inactive(bearer(api, machine))


def test_a_machine_token_with_no_subject_a_local_user_could_have_is_a_service_principal(oidc_settings, issuer, api):
    response = bearer(api, issuer.token(sub="x" * 300, gty="client-credentials", azp="job"))
    assert (response.status_code, response.json()["user"]["kind"]) == (200, "service")
    assert not User.objects.exists()


# -- UserSync: the steps a subclass overrides --------------------------------------------------


class ShoutingSync(users.UserSync):
    """A custom sync: last names in capitals, and users without an e-mail address may not sign in."""

    mapped = 0

    def map_fields(self, claims: Any) -> dict[str, Any]:
        ShoutingSync.mapped += 1
        values = super().map_fields(claims)
        return {**values, "last_name": values.get("last_name", "").upper()}

    def check_active(self, user: Any) -> None:
        super().check_active(user)
        if not user.email:
            raise users.UserInactive("no e-mail address")


def test_a_user_sync_subclass_changes_only_the_steps_it_overrides(oidc_settings, issuer, profile):
    from drf_oidc_jwks.conf import get_settings

    sync = ShoutingSync(get_settings())
    user = sync.resolve(verify_token(profile()))
    assert (user.username, user.last_name) == ("alice", "LIDDELL")
    bob = sync.resolve(verify_token(profile(sub="bob", email="")))  # lazy: nothing known about bob yet
    with pytest.raises(users.UserInactive):
        bob.username  # created on first use, then refused by check_active  # noqa: B018
    assert OIDCIdentity.objects.filter(subject="bob").exists()
    with pytest.raises(users.UserInactive):
        sync.resolve(verify_token(profile(sub="bob", email="")))  # refused from the cached state


def test_the_fingerprint_is_computed_once_per_claims_object_and_forgotten_with_it(oidc_settings, issuer, profile):
    import gc

    from drf_oidc_jwks.claims import Claims
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.user_fields import ClaimsMemo

    class WeakClaims(Claims):  # whatever Claims' own slots, a subclass can be weakly referenced
        pass

    sync = ShoutingSync(get_settings())
    claims = WeakClaims(verify_token(profile()).raw)
    ShoutingSync.mapped = 0
    assert sync.fingerprint(claims) == sync.fingerprint(claims)
    assert ShoutingSync.mapped == 1
    twin = WeakClaims(claims.raw)
    assert sync.fingerprint(twin) == sync.fingerprint(claims)  # equal payloads, but another token
    assert ShoutingSync.mapped == 2
    memo = ClaimsMemo()
    assert [memo.get(c, sync, lambda: "fp") for c in (claims, twin, claims)] == ["fp"] * 3
    assert len(memo) == 2
    del claims, twin
    gc.collect()
    assert len(memo) == 0  # an entry lives as long as its Claims object


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("drf_oidc_jwks.users.NoSuchSync", "cannot be imported"),
        ("no_such_module.Sync", "cannot be imported"),
        ("drf_oidc_jwks.users.TokenUser", "is not a subclass of UserSync"),
    ],
)
def test_a_user_sync_class_that_is_not_one_is_a_configuration_error_naming_the_key(path, message):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        users.import_user_sync_class(path)
    assert "USER_SYNC_CLASS" in str(caught.value)


def test_the_built_in_user_sync_is_the_default(oidc_settings):
    from drf_oidc_jwks.conf import get_settings

    assert users.user_sync_class_path(get_settings()) == "drf_oidc_jwks.users.UserSync"
    assert type(users.get_user_sync()) is users.UserSync
    assert users.import_user_sync_class(f"{__name__}.ShoutingSync") is ShoutingSync
