"""users: the identity bounds, what an update writes, the fingerprint's owner and groups, the bearer handed to userinfo.

Written against surviving mutants of drf_oidc_jwks/users.py (docs/security.md, "Mutation testing"). Tokens come
from the test issuer and are verified for real; userinfo is the test JWKS server's ``/userinfo``.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from drf_oidc_jwks import users
from drf_oidc_jwks.claims import Claims
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import MalformedToken
from drf_oidc_jwks.models import OIDCIdentity
from drf_oidc_jwks.signals import user_synced
from drf_oidc_jwks.testing import OMIT
from drf_oidc_jwks.tokens import verify_token
from drf_oidc_jwks.user_state import get_state
from drf_oidc_jwks.users import ServicePrincipal, SyncedUser, TokenUser, UserSync, get_user, load_user, resolve_user
from tests.test_userinfo import USERINFO, userinfo_says

User = get_user_model()
MACHINE = {"gty": "client-credentials"}


def linked(issuer: str, subject: str, username: str) -> Any:
    user = User.objects.create(username=username)
    OIDCIdentity.objects.create(issuer=issuer, subject=subject, user=user, fingerprint="stale")
    return user


def bearer_sent(server: Any) -> str:
    return str(server.last_headers[USERINFO]["Authorization"])


# -- the identity's bounds ------------------------------------------------------------------


def test_a_machine_token_without_a_subject_or_with_a_nul_in_it_is_a_service_principal(oidc_settings, issuer) -> None:
    for payload in ({"iss": issuer.issuer, "client_id": "svc"}, {"iss": issuer.issuer, "sub": "a\x00b"}):
        principal = get_user(Claims({**payload, **MACHINE}))
        assert isinstance(principal, ServicePrincipal)


def test_a_machine_token_whose_subject_and_issuer_are_255_characters_is_its_local_user(oidc_settings) -> None:
    iss, sub = "https://i.test/" + "x" * 240, "s" * 255
    local = linked(iss, sub, "svc-user")
    user = get_user(Claims({"iss": iss, "sub": sub, **MACHINE}))
    assert isinstance(user, SyncedUser) and user.pk == local.pk


def test_a_person_token_with_255_characters_of_subject_and_issuer_gets_a_user(oidc_settings) -> None:
    iss, sub = "https://i.test/" + "y" * 240, "p" * 255
    local = linked(iss, sub, "person")
    assert get_user(Claims({"iss": iss, "sub": sub})).pk == local.pk


def test_a_person_token_with_a_nul_in_its_subject_is_malformed(oidc_settings, issuer) -> None:
    with pytest.raises(MalformedToken):
        get_user(Claims({"iss": issuer.issuer, "sub": "a\x00b"}))


# -- what an update writes ---------------------------------------------------------------------


def at(issuer: Any, iat: int, **claims: Any) -> Claims:
    return Claims({"iss": issuer.issuer, "sub": "upd", "iat": iat, **claims})


def test_an_older_token_writes_nothing_and_announces_nothing(oidc_settings, issuer) -> None:
    load_user(at(issuer, 2_000_000_000, given_name="Ann"))
    heard: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs)

    user_synced.connect(receiver, weak=False)
    try:
        user = load_user(at(issuer, 1_900_000_000, given_name="Old"))
    finally:
        user_synced.disconnect(receiver)
    assert user.first_name == "Ann" and heard == []


def test_an_update_records_the_tokens_iat(oidc_settings, issuer) -> None:
    load_user(at(issuer, 2_000_000_000, given_name="Ann"))
    load_user(at(issuer, 2_000_000_100, given_name="Anna"))
    stored = OIDCIdentity.objects.get(issuer=issuer.issuer, subject="upd").claims_issued_at
    assert stored == datetime.datetime.fromtimestamp(2_000_000_100, tz=datetime.timezone.utc)


def test_an_update_writes_only_the_changed_columns_of_the_user_and_identity(oidc_settings, issuer) -> None:
    first = load_user(at(issuer, 2_000_000_000, given_name="Ann"))
    sync = UserSync(get_settings())
    newer = at(issuer, 2_000_000_100, given_name="Anna")
    identity = sync.lookup(newer)
    other = User.objects.create(username="other")
    # Written meanwhile by someone else: an update from claims must not put the old values back.
    User.objects.filter(pk=first.pk).update(is_active=False, last_name="Kept")
    OIDCIdentity.objects.filter(pk=identity.pk).update(user=other)
    values = sync.map_fields(newer)
    assert sync.update(identity, newer, values, sync.fingerprint(newer)) is True
    row = User.objects.get(pk=first.pk)
    assert (row.first_name, row.last_name, row.is_active) == ("Anna", "Kept", False)
    assert OIDCIdentity.objects.get(pk=identity.pk).user_id == other.pk


# -- the fingerprint ----------------------------------------------------------------------------


def test_the_fingerprint_belongs_to_the_settings_it_was_computed_under(oidc_settings, issuer) -> None:
    claims = Claims({"iss": issuer.issuer, "sub": "fp", "roles": ["admin"]})
    before = get_settings()
    plain = UserSync(before).fingerprint(claims)
    oidc_settings(STAFF_ROLES=["admin"])
    staff = UserSync(get_settings()).fingerprint(claims)
    assert staff != plain
    # The module's functions use the settings they are given, not the current ones.
    assert users.fingerprint(claims, before) == plain
    assert users.fingerprint(claims) == staff
    assert users.mapped_values(claims, before) == UserSync(before).map_fields(claims)
    assert users.mapped_values(claims)["is_staff"] is True


def test_the_fingerprint_changes_with_the_synced_groups_alone(oidc_settings, issuer) -> None:
    oidc_settings(SYNC_GROUPS=True)
    sync = UserSync(get_settings())
    base = {"iss": issuer.issuer, "sub": "grp"}
    assert sync.fingerprint(Claims({**base, "roles": ["a"]})) != sync.fingerprint(Claims({**base, "roles": ["b"]}))


def test_resolve_user_uses_the_settings_it_is_given(oidc_settings, issuer) -> None:
    local = linked(issuer.issuer, "given", "given")
    claims = Claims({"iss": issuer.issuer, "sub": "given"})
    caching = get_settings()
    oidc_settings(USER_CACHE_TTL=0)
    assert resolve_user(claims, caching).pk == local.pk
    assert get_state(caching, issuer.issuer, "given") is not None  # cached under the settings given


# -- without SYNC_USERS -------------------------------------------------------------------------


def test_without_sync_users_a_machine_token_is_a_service_principal_and_a_person_a_token_user(
    oidc_settings, issuer
) -> None:
    oidc_settings(SYNC_USERS=False)
    machine = Claims({"iss": issuer.issuer, "sub": "svc", "client_id": "svc", **MACHINE})
    principal = get_user(machine)
    assert isinstance(principal, ServicePrincipal) and principal.claims is machine
    person = get_user(Claims({"iss": issuer.issuer, "sub": "p"}))
    assert type(person) is TokenUser


# -- request.user's claims, loaded state and the bearer userinfo gets ------------------------------


@pytest.fixture
def userinfo_on(oidc_settings: Any, server: Any) -> Any:
    oidc_settings(USERINFO=True)
    userinfo_says(server, issuer_sub="ui")
    return server


def mint(issuer: Any, **claims: Any) -> tuple[str, Claims]:
    token = issuer.token(**{"sub": "ui", "email": OMIT, **claims})
    return token, verify_token(token)


def test_a_first_sight_hands_its_bearer_to_userinfo_when_the_user_is_loaded(userinfo_on, issuer) -> None:
    token, claims = mint(issuer)
    user = get_user(claims, token)
    assert user.claims is claims
    assert user.email == "alice@example.com"
    assert bearer_sent(userinfo_on) == f"Bearer {token}"


def test_a_new_identity_seen_again_before_it_loaded_hands_the_new_bearer(userinfo_on, issuer) -> None:
    _, first = mint(issuer)
    get_user(first, "never-sent")  # first sight: NEW, not loaded
    token, claims = mint(issuer, jti="second")
    user = resolve_user(claims, None, token)
    assert user.claims is claims
    assert user.email == "alice@example.com"
    assert bearer_sent(userinfo_on) == f"Bearer {token}"


def test_changed_claims_of_a_cached_user_hand_their_bearer_to_userinfo(oidc_settings, server, issuer) -> None:
    _, first = mint(issuer)
    assert get_user(first).pk  # loaded and cached with its fingerprint, userinfo off
    _, same = mint(issuer, jti="again")
    again = get_user(same)
    assert again.claims is same and again.pk  # the cached user, with this request's claims
    oidc_settings(USERINFO=True)
    userinfo_says(server, issuer_sub="ui")
    token, changed = mint(issuer, given_name="Changed")
    user = get_user(changed, token)
    assert user.claims is changed
    assert user.email == "alice@example.com"
    assert bearer_sent(server) == f"Bearer {token}"


def test_a_first_sight_linked_by_email_is_loaded_at_once_with_its_bearer(userinfo_on, oidc_settings, issuer) -> None:
    oidc_settings(USERINFO=True, LINK_BY_VERIFIED_EMAIL=True)
    local = User.objects.create_user("carol", "carol@example.com")
    token, claims = mint(issuer, email="carol@example.com", email_verified=True)
    user = get_user(claims, token)
    assert user.is_loaded is True and user.claims is claims
    assert bearer_sent(userinfo_on) == f"Bearer {token}"
    assert user.pk == local.pk


def test_load_user_hands_its_bearer_to_userinfo(userinfo_on, issuer) -> None:
    token, claims = mint(issuer)
    assert load_user(claims, token=token).email == "alice@example.com"
    assert bearer_sent(userinfo_on) == f"Bearer {token}"


def test_load_user_with_the_row_at_hand_and_nothing_to_write_reads_nothing(
    oidc_settings, issuer, django_assert_num_queries
) -> None:
    claims = Claims({"iss": issuer.issuer, "sub": "row"})
    user = load_user(claims)
    identity = UserSync(get_settings()).lookup(claims)
    with django_assert_num_queries(0):
        assert load_user(claims, identity).pk == user.pk


def test_a_known_identity_with_stale_fields_is_active_at_once_and_updated_with_its_bearer_on_load(
    userinfo_on, issuer
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    local = linked(issuer.issuer, "ui", "known")
    token, claims = mint(issuer, given_name="Given")
    user = get_user(claims, token)
    assert get_state(get_settings(), issuer.issuer, "ui") == "active"  # before anything is loaded
    assert user.claims is claims and user.is_loaded is False
    with CaptureQueriesContext(connection) as queries:
        assert (user.pk, user.first_name) == (local.pk, "Given")
    assert not [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]  # the row at hand: no create
    assert bearer_sent(userinfo_on) == f"Bearer {token}"


def test_a_known_identity_with_nothing_to_write_is_handed_over_loaded(oidc_settings, issuer) -> None:
    claims = Claims({"iss": issuer.issuer, "sub": "same", "given_name": "Same"})
    local = User.objects.create(username="same", first_name="Same")
    OIDCIdentity.objects.create(issuer=issuer.issuer, subject="same", user=local, fingerprint=users.fingerprint(claims))
    user = get_user(claims)
    assert user.is_loaded is True and user.claims is claims and user.pk == local.pk


def test_with_userinfo_off_the_user_sync_never_asks_it(oidc_settings, server, issuer) -> None:
    userinfo_says(server, issuer_sub="ui")
    token, claims = mint(issuer)
    assert get_user(claims, token).email == ""
    assert server.total(USERINFO) == 0


# -- creating: a link, a concurrent first, the identity's receivers -----------------------------------


def test_a_link_writes_the_changed_fields_onto_the_local_user_and_is_announced(oidc_settings, issuer) -> None:
    from django.core.cache import cache

    from drf_oidc_jwks.user_state import GENERATION_KEY

    oidc_settings(LINK_BY_VERIFIED_EMAIL=True)
    local = User.objects.create_user("gus", "gus@example.com", first_name="")
    cache.set(GENERATION_KEY, 100, timeout=None)
    before = cache.get(GENERATION_KEY)
    claims = Claims({"iss": issuer.issuer, "sub": "gus-sub", "email": "gus@example.com", "email_verified": True,
                     "given_name": "Gus"})  # fmt: skip
    user = get_user(claims)
    assert (user.pk, User.objects.get(pk=local.pk).first_name) == (local.pk, "Gus")
    assert cache.get(GENERATION_KEY) != before  # a link changes what other processes may hold


def test_a_create_meeting_the_identity_made_meanwhile_updates_it_as_an_update(oidc_settings, issuer) -> None:
    local = linked(issuer.issuer, "late", "late")
    claims = Claims({"iss": issuer.issuer, "sub": "late", "given_name": "Late"})
    user = load_user(claims, None)  # None: "known not to exist", as a concurrent first request believed
    assert (user.pk, user.first_name) == (local.pk, "Late")
    assert OIDCIdentity.objects.get(issuer=issuer.issuer, subject="late").fingerprint == users.fingerprint(claims)


def verified(issuer: str, sub: str, email: str) -> Claims:
    return Claims({"iss": issuer, "sub": sub, "email": email, "email_verified": True})


def test_a_user_with_an_identity_of_another_issuer_only_is_still_linked(oidc_settings, issuer) -> None:
    oidc_settings(LINK_BY_VERIFIED_EMAIL=True)
    dan = User.objects.create_user("dan", "dan@example.com")
    OIDCIdentity.objects.create(issuer="https://other.test", subject="d-other", user=dan, fingerprint="x")
    linked(issuer.issuer, "eve-sub", "eve")  # someone else has an identity of this issuer
    assert get_user(verified(issuer.issuer, "dan-sub", "dan@example.com")).pk == dan.pk


def test_a_user_with_an_identity_of_this_issuer_is_never_linked_again(oidc_settings, issuer) -> None:
    oidc_settings(LINK_BY_VERIFIED_EMAIL=True)
    fay = User.objects.create_user("fay", "fay@example.com")
    OIDCIdentity.objects.create(issuer=issuer.issuer, subject="fay-1", user=fay, fingerprint="x")
    assert get_user(verified(issuer.issuer, "fay-2", "fay@example.com")).pk != fay.pk


def test_an_email_claim_with_a_nul_links_no_one(oidc_settings, issuer) -> None:
    from django.db import connection

    oidc_settings(LINK_BY_VERIFIED_EMAIL=True)
    # Only SQLite stores a NUL in a text column; elsewhere the nearest local address is the one to stay unlinked.
    stored = "o\x00d@example.com" if connection.vendor == "sqlite" else "od@example.com"
    odd = User.objects.create_user("odd", stored)
    assert get_user(verified(issuer.issuer, "odd-sub", "o\x00d@example.com")).pk != odd.pk


def test_userinfo_is_asked_with_a_userinfo_cache_ttl_of_zero_too(oidc_settings, server, issuer) -> None:
    oidc_settings(USERINFO=True, USERINFO_CACHE_TTL=0)
    userinfo_says(server, issuer_sub="ui")
    token, claims = mint(issuer)
    assert get_user(claims, token).email == "alice@example.com"
    assert server.total(USERINFO) == 1


def test_a_link_that_writes_no_field_is_announced_all_the_same(oidc_settings, issuer) -> None:
    from django.core.cache import cache

    from drf_oidc_jwks.user_state import GENERATION_KEY

    oidc_settings(LINK_BY_VERIFIED_EMAIL=True)
    local = User.objects.create_user("hal", "hal@example.com")
    cache.set(GENERATION_KEY, 100, timeout=None)  # started, so only a bump can move it
    before = cache.get(GENERATION_KEY)
    assert get_user(verified(issuer.issuer, "hal-sub", "hal@example.com")).pk == local.pk
    assert cache.get(GENERATION_KEY) != before  # the identity's own receiver: the sync did not create this user


def test_the_token_wins_over_userinfo_where_it_says_something(userinfo_on, issuer) -> None:
    token, claims = mint(issuer, given_name="Tok")
    user = get_user(claims, token)
    assert (user.first_name, user.last_name, user.email) == ("Tok", "Liddell", "alice@example.com")


def test_userinfo_is_read_through_the_issuers_claim_paths(oidc_settings, server, issuer) -> None:
    oidc_settings(USERINFO=True, CLAIMS={"email": ["contact", "mail"]})
    userinfo_says(server, issuer_sub="ui", contact={"mail": "deep@example.com"})
    token, claims = mint(issuer)
    assert get_user(claims, token).email == "deep@example.com"


def test_loading_a_machine_token_whose_identity_went_away_remembers_no_user(oidc_settings, issuer) -> None:
    s = get_settings()
    for sub in ("gone-svc", None):
        payload = {"iss": issuer.issuer, "client_id": "svc", **MACHINE, **({"sub": sub} if sub else {})}
        claims = Claims(payload)
        principal = load_user(claims)
        assert isinstance(principal, ServicePrincipal) and principal.claims is claims
        assert get_state(s, issuer.issuer, sub or "") == "new"


def test_one_user_sync_serves_one_settings_object(oidc_settings) -> None:
    sync = users.get_user_sync()
    assert users.get_user_sync() is sync and users.get_user_sync(get_settings()) is sync
    oidc_settings(USER_CACHE_TTL=5)
    other = users.get_user_sync()
    assert other is not sync and other.settings is get_settings() and users.get_user_sync() is other
