"""user_state: the receivers as connect_receivers() connects them, the generation counter's start, private copies.

Written against surviving mutants of drf_oidc_jwks/user_state.py (docs/security.md, "Mutation testing").
The receivers are connected once when Django starts; these tests connect them again through
connect_receivers() (idempotent), so what it connects is what the tests see.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.models import OIDCIdentity
from drf_oidc_jwks.user_state import (
    ACTIVE,
    GENERATION_KEY,
    LocalStates,
    bump_generation,
    connect_receivers,
    get_state,
    is_sync_write,
    private_copy,
    set_state,
    sync_write,
)
from testproject.api.models import Project, Task

User = get_user_model()
ISS = "https://issuer.example"
UIDS = [
    (post_save, OIDCIdentity, "drf_oidc_jwks.identity_saved"),
    (post_delete, OIDCIdentity, "drf_oidc_jwks.identity_deleted"),
    (post_save, None, "drf_oidc_jwks.user_saved"),
]


@pytest.fixture
def reconnected() -> Iterator[None]:
    """The app's receivers disconnected (by their stable dispatch_uid), then connected again by connect_receivers()."""
    for signal, sender, uid in UIDS:
        assert signal.disconnect(sender=sender or User, dispatch_uid=uid) is True
    connect_receivers()
    yield
    connect_receivers()


def linked(subject: str) -> OIDCIdentity:
    user = User.objects.create(username=subject)
    return OIDCIdentity.objects.create(issuer=ISS, subject=subject, user=user, fingerprint="fp")


def cached(subject: str) -> bool:
    return get_state(get_settings(), ISS, subject) is not None


def test_saving_or_deleting_an_identity_forgets_its_state_once_reconnected(
    oidc_settings: Any, reconnected: Any
) -> None:
    identity = linked("ann")
    s = get_settings()
    set_state(s, ISS, "ann", ACTIVE)
    assert cached("ann")
    identity.fingerprint = "changed"
    identity.save()
    assert not cached("ann")
    set_state(s, ISS, "ann", ACTIVE)
    identity.delete()
    assert not cached("ann")


def test_saving_a_user_forgets_the_states_of_its_identities_once_reconnected(
    oidc_settings: Any, reconnected: Any
) -> None:
    identity = linked("bob")
    set_state(get_settings(), ISS, "bob", ACTIVE)
    identity.user.first_name = "Bob"
    identity.user.save()
    assert not cached("bob")


def test_saving_other_models_sends_nothing_to_the_receivers(oidc_settings: Any, reconnected: Any) -> None:
    linked("cy")
    set_state(get_settings(), ISS, "cy", ACTIVE)
    generation = cache.get(GENERATION_KEY)
    project = Project.objects.create(tenant_id="acme", name="p")
    Task.objects.create(project=project, created_by="x", title="t").delete()
    assert cached("cy")
    assert cache.get(GENERATION_KEY) == generation


def test_connecting_the_receivers_again_connects_each_once(oidc_settings: Any) -> None:
    connect_receivers()
    connect_receivers()
    identity = linked("dee")
    before = cache.get(GENERATION_KEY)
    identity.fingerprint = "changed"
    identity.save()  # one receiver: one bump (the one after the commit waits for the test's transaction)
    assert cache.get(GENERATION_KEY) == before + 1
    identity.user.first_name = "Dee"
    identity.user.save()
    assert cache.get(GENERATION_KEY) == before + 2
    identity.delete()
    assert cache.get(GENERATION_KEY) == before + 3


def test_a_missing_counter_is_started_below_two_to_the_62_and_never_expires(
    oidc_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = get_settings()
    for _ in range(32):
        cache.delete(GENERATION_KEY)
        bump_generation(s)
        value = cache.get(GENERATION_KEY)
        # Room for increments within a signed 64-bit integer (Redis INCR refuses to overflow).
        assert isinstance(value, int) and 0 <= value < 2**62
    bump_generation(s)
    assert cache.get(GENERATION_KEY) == value + 1
    later = time.time() + 10 * 365 * 86400
    monkeypatch.setattr("django.core.cache.backends.locmem.time.time", lambda: later)
    assert cache.get(GENERATION_KEY) == value + 1  # no expiry: a vanished counter drops every copy


def test_a_fresh_set_of_copies_has_read_the_counter_zero_times_and_then_once(oidc_settings: Any) -> None:
    states = LocalStates()
    assert states.checks == 0
    assert states.get(get_settings(), (ISS, "x")) is None
    assert states.checks == 1


def test_without_a_revalidator_copies_due_to_expire_are_simply_kept_until_they_do(oidc_settings: Any) -> None:
    oidc_settings(USER_CACHE_TTL=3, USER_LOCAL_CACHE_TTL=1)
    s = get_settings()
    clock = [1000.0]
    states = LocalStates(clock=lambda: clock[0])
    user = User(username="eve")
    states.put(s, (ISS, "eve"), (ACTIVE, "fp", user), time.time())
    clock[0] += 1.5  # the next check sees the copy due within two checks, and has nobody to ask
    assert states.get(s, (ISS, "eve")) == (ACTIVE, "fp", user)


def test_a_private_copy_has_its_own_state_and_reads_related_objects_again(
    oidc_settings: Any, django_assert_num_queries: Any
) -> None:
    project = Project.objects.create(tenant_id="acme", name="p")
    task = Task.objects.select_related("project").get(pk=Task.objects.create(project=project, title="t").pk)
    copy = private_copy(task)
    assert copy is not task and copy.pk == task.pk and copy.title == "t"
    assert copy._state is not task._state
    assert (copy._state.db, copy._state.adding) == (task._state.db, task._state.adding)
    with django_assert_num_queries(1):
        assert copy.project == project and copy.project is not task.project
    with django_assert_num_queries(0):
        assert task.project.name == "p"  # the original keeps what it had loaded
    copy.title = "changed"
    assert task.title == "t"


def test_a_private_copy_of_a_user_has_its_own_related_managers_and_prefetched_objects(oidc_settings: Any) -> None:
    from django.contrib.auth.models import Group

    Group.objects.create(name="g")
    user = User.objects.prefetch_related("groups").get(pk=User.objects.create(username="fay").pk)
    assert list(user.groups.all()) == []  # prefetched: empty
    User.objects.get(pk=user.pk).groups.add(Group.objects.get())  # through another instance
    assert list(user.groups.all()) == []  # the original still answers from what it prefetched
    copy = private_copy(user)
    assert copy.groups.instance is copy
    assert [g.name for g in copy.groups.all()] == ["g"]  # read again, not the original's prefetched list


def test_an_identity_linked_to_an_existing_user_outside_the_sync_is_announced(oidc_settings: Any) -> None:
    user = User.objects.create(username="gil")
    before = cache.get(GENERATION_KEY)
    OIDCIdentity.objects.create(issuer=ISS, subject="gil", user=user, fingerprint="fp")  # e.g. by an admin
    assert cache.get(GENERATION_KEY) != before


@pytest.mark.parametrize("ttl", [1, 2])
def test_a_short_user_cache_ttl_still_forgets_on_saves(oidc_settings: Any, ttl: int) -> None:
    oidc_settings(USER_CACHE_TTL=ttl)
    identity = linked("hal")
    s = get_settings()
    set_state(s, ISS, "hal", ACTIVE)
    identity.user.first_name = "Hal"
    identity.user.save()
    assert not cached("hal")
    set_state(s, ISS, "hal", ACTIVE)
    identity.fingerprint = "changed"
    identity.save()
    assert not cached("hal")


def test_with_user_cache_ttl_zero_saves_forget_nothing_and_cost_no_query(
    oidc_settings: Any, django_assert_num_queries: Any
) -> None:
    oidc_settings(USER_CACHE_TTL=0)
    identity = linked("ida")
    before = cache.get(GENERATION_KEY)
    identity.user.first_name = "Ida"
    with django_assert_num_queries(1):  # the UPDATE; nothing is cached, so nothing to look up or forget
        identity.user.save()
    identity.fingerprint = "changed"
    identity.save()
    assert cache.get(GENERATION_KEY) == before


def test_loading_a_fixture_of_users_forgets_nothing(oidc_settings: Any, tmp_path: Any) -> None:
    import json

    from django.core.management import call_command

    identity = linked("jo")
    set_state(get_settings(), ISS, "jo", ACTIVE)
    fixture = tmp_path / "users.json"
    row = {"username": "jo", "first_name": "Jo", "password": "!", "is_active": True}
    fixture.write_text(json.dumps([{"model": User._meta.label_lower, "pk": identity.user_id, "fields": row}]))
    call_command("loaddata", str(fixture), verbosity=0)
    assert User.objects.get(pk=identity.user_id).first_name == "Jo"
    assert cached("jo")  # a raw save: fixtures are not a change another process must hear about


def test_copies_are_revalidated_when_they_would_expire_before_the_next_two_checks(oidc_settings: Any) -> None:
    oidc_settings(USER_CACHE_TTL=10, USER_LOCAL_CACHE_TTL=2)
    s = get_settings()
    clock = [1000.0]
    asked: list[tuple[bool, list[Any]]] = []

    def revalidator(settings: Any, identities: list[Any]) -> dict[Any, Any]:
        asked.append((settings is s, list(identities)))
        return {}

    states = LocalStates(clock=lambda: clock[0], wall=lambda: 5000.0)
    states.revalidator = revalidator
    states.put(s, (ISS, "kit"), (ACTIVE, "fp", User(username="kit")), 5000.0)  # expires at 1010 exactly
    states.put(s, (ISS, "new"), ACTIVE, 5000.0)  # no user loaded: read again when it expires, never in a batch
    for now in (1002.0, 1004.0):  # checks with horizons 1006 and 1008: not due yet, and nobody asked
        clock[0] = now
        states.get(s, (ISS, "other"))
    assert asked == []
    clock[0] = 1006.0  # horizon 1010: due
    states.get(s, (ISS, "other"))
    assert asked == [(True, [(ISS, "kit")])]
    assert (ISS, "kit") not in states.entries  # not found any more: forgotten
    assert (ISS, "new") in states.entries


def test_a_cached_active_state_reads_back_as_active_with_its_fingerprint_and_a_private_user(
    oidc_settings: Any,
) -> None:
    s = get_settings()
    user = User(username="lee")
    set_state(s, ISS, "lee", (ACTIVE, "fp-lee", user))
    state = get_state(s, ISS, "lee")
    assert isinstance(state, tuple) and state[:2] == (ACTIVE, "fp-lee")
    assert state[2].username == "lee" and state[2] is not user


def test_the_identity_digest_is_forty_hex_characters_of_the_sha256_of_issuer_nul_subject() -> None:
    import hashlib

    from drf_oidc_jwks.user_state import identity_digest, state_key

    digest = identity_digest(ISS, "x" * 1000)
    assert digest == hashlib.sha256(f"{ISS}\x00{'x' * 1000}".encode()).hexdigest()[:40]
    assert state_key(ISS, "x" * 1000) == f"drf_oidc_jwks:user:{digest}"


def test_a_copy_expires_at_exactly_user_cache_ttl_and_is_dropped(oidc_settings: Any) -> None:
    oidc_settings(USER_CACHE_TTL=10, USER_LOCAL_CACHE_TTL=100)
    s = get_settings()
    clock = [1000.0]
    states = LocalStates(clock=lambda: clock[0], wall=lambda: 5000.0)
    states.put(s, (ISS, "mo"), ACTIVE, 5000.0)
    clock[0] = 1009.99
    assert states.get(s, (ISS, "mo")) == ACTIVE
    clock[0] = 1010.0
    assert states.get(s, (ISS, "mo")) is None
    assert (ISS, "mo") not in states.entries


def test_the_counter_is_read_again_at_exactly_user_local_cache_ttl(oidc_settings: Any) -> None:
    oidc_settings(USER_CACHE_TTL=100, USER_LOCAL_CACHE_TTL=2)
    s = get_settings()
    clock = [1000.0]
    states = LocalStates(clock=lambda: clock[0], wall=lambda: 5000.0)
    states.put(s, (ISS, "ned"), ACTIVE, 5000.0)
    bump_generation(s)
    clock[0] = 1001.99
    assert states.get(s, (ISS, "ned")) == ACTIVE
    clock[0] = 1002.0
    assert states.get(s, (ISS, "ned")) is None  # checked: the counter moved


def test_with_the_shared_cache_down_a_copy_serves_until_exactly_user_local_cache_ttl(
    settings: Any, oidc_settings: Any
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "down": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    oidc_settings(USER_CACHE_ALIAS="down", USER_CACHE_TTL=100, USER_LOCAL_CACHE_TTL=2)
    s = get_settings()
    clock = [1000.0]
    states = LocalStates(clock=lambda: clock[0], wall=lambda: 5000.0)
    states.put(s, (ISS, "oz"), ACTIVE, 5000.0)
    clock[0] = 1001.99
    assert states.get(s, (ISS, "oz")) == ACTIVE
    clock[0] = 1002.0
    assert states.get(s, (ISS, "oz")) is None
    assert states.confirmed is False


def test_a_state_in_the_shared_cache_is_read_back_whole_when_this_process_has_no_copy(oidc_settings: Any) -> None:
    from drf_oidc_jwks.user_state import reset_local_states

    s = get_settings()
    set_state(s, ISS, "pam", (ACTIVE, "fp-pam", User(username="pam")))
    reset_local_states()
    state = get_state(s, ISS, "pam")
    assert isinstance(state, tuple) and state[:2] == (ACTIVE, "fp-pam") and state[2].username == "pam"


def test_user_cache_ttl_zero_reads_no_state_even_one_left_in_the_shared_cache(oidc_settings: Any) -> None:
    set_state(get_settings(), ISS, "quin", ACTIVE)  # written while caching was on (another process, say)
    oidc_settings(USER_CACHE_TTL=0)
    assert get_state(get_settings(), ISS, "quin") is None


def test_user_local_cache_ttl_zero_keeps_no_copy_in_the_process(oidc_settings: Any) -> None:
    from drf_oidc_jwks.user_state import local_states

    oidc_settings(USER_LOCAL_CACHE_TTL=0)
    s = get_settings()
    set_state(s, ISS, "rae", ACTIVE)
    assert get_state(s, ISS, "rae") == ACTIVE  # from the shared cache
    assert len(local_states()) == 0


def test_a_state_read_from_the_shared_cache_is_kept_as_this_process_copy(oidc_settings: Any) -> None:
    from drf_oidc_jwks.user_state import reset_local_states, state_key

    s = get_settings()
    set_state(s, ISS, "sid", (ACTIVE, "fp-sid", User(username="sid")))
    reset_local_states()
    assert get_state(s, ISS, "sid") is not None
    cache.delete(state_key(ISS, "sid"))
    state = get_state(s, ISS, "sid")  # the copy answers
    assert isinstance(state, tuple) and state[:2] == (ACTIVE, "fp-sid")


def test_each_read_of_the_counter_is_counted(oidc_settings: Any) -> None:
    oidc_settings(USER_LOCAL_CACHE_TTL=2)
    s = get_settings()
    clock = [1000.0]
    states = LocalStates(clock=lambda: clock[0])
    for expected, now in ((1, 1000.0), (1, 1001.0), (2, 1002.0), (3, 1004.5)):
        clock[0] = now
        states.get(s, (ISS, "x"))
        assert states.checks == expected


def test_a_copy_stored_at_exactly_the_check_time_is_checked_first_and_kept(oidc_settings: Any) -> None:
    oidc_settings(USER_CACHE_TTL=100, USER_LOCAL_CACHE_TTL=2)
    s = get_settings()
    clock = [1000.0]
    states = LocalStates(clock=lambda: clock[0], wall=lambda: 5000.0)
    states.put(s, (ISS, "old"), ACTIVE, 5000.0)
    bump_generation(s)
    clock[0] = 1002.0
    states.put(s, (ISS, "new"), ACTIVE, 5000.0)  # the check runs first: the move drops only the old copy
    assert states.get(s, (ISS, "new")) == ACTIVE
    assert states.get(s, (ISS, "old")) is None


def test_user_cache_ttl_zero_stores_no_state_anywhere(oidc_settings: Any) -> None:
    from drf_oidc_jwks.user_state import local_states, state_key

    oidc_settings(USER_CACHE_TTL=0)
    set_state(get_settings(), ISS, "tia", ACTIVE)
    assert len(local_states()) == 0
    assert cache.get(state_key(ISS, "tia")) is None


def test_a_counter_started_by_a_check_is_below_two_to_the_62_and_never_expires(
    oidc_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = get_settings()
    clock = [1000.0]
    states = LocalStates(clock=lambda: clock[0])
    for _ in range(32):
        cache.delete(GENERATION_KEY)
        clock[0] += s.user_local_cache_ttl
        states.get(s, (ISS, "x"))
        value = cache.get(GENERATION_KEY)
        assert isinstance(value, int) and 0 <= value < 2**62
    later = time.time() + 10 * 365 * 86400
    monkeypatch.setattr("django.core.cache.backends.locmem.time.time", lambda: later)
    assert cache.get(GENERATION_KEY) == value


def test_a_cache_that_keeps_nothing_confirms_nothing_and_revalidates_nothing(settings: Any, oidc_settings: Any) -> None:
    settings.CACHES = {**settings.CACHES, "void": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    oidc_settings(USER_CACHE_ALIAS="void", USER_CACHE_TTL=10, USER_LOCAL_CACHE_TTL=2)
    s = get_settings()
    clock = [1000.0]
    asked: list[Any] = []
    states = LocalStates(clock=lambda: clock[0], wall=lambda: 5000.0)
    states.revalidator = lambda settings, identities: asked.append(identities) or {}
    states.put(s, (ISS, "uma"), (ACTIVE, "fp", User(username="uma")), 5000.0)
    clock[0] = 1009.0  # due, but the counter could not be read back: no batch on an unconfirmed view
    assert states.get(s, (ISS, "uma")) is None
    assert states.confirmed is False and asked == []


def test_a_fresh_set_of_copies_trusts_no_generation_before_its_first_check() -> None:
    states = LocalStates()
    assert states.generation is None and states.confirmed is False


def test_a_copy_another_thread_drops_while_it_is_read_is_no_error(oidc_settings: Any) -> None:
    from collections import OrderedDict

    class Racing(OrderedDict):  # type: ignore[type-arg]
        """Entries another thread empties right after each read (between get() and pop()/move_to_end())."""

        def get(self, key: Any, default: Any = None) -> Any:
            value = super().get(key, default)
            self.pop(key, None)
            return value

    oidc_settings(USER_CACHE_TTL=10, USER_LOCAL_CACHE_TTL=100)
    s = get_settings()
    clock = [1000.0]
    states = LocalStates(clock=lambda: clock[0], wall=lambda: 5000.0)
    states.put(s, (ISS, "vic"), ACTIVE, 5000.0)
    states.put(s, (ISS, "wes"), ACTIVE, 5000.0)
    states.entries = Racing(states.entries)
    assert states.get(s, (ISS, "vic")) == ACTIVE  # the copy read is still good
    clock[0] = 1010.0
    assert states.get(s, (ISS, "wes")) is None  # expired, and already gone
    assert len(states) == 0


def test_deleting_an_identity_is_announced_even_inside_a_sync_write_of_it(oidc_settings: Any) -> None:
    from drf_oidc_jwks.user_state import sync_write

    identity = linked("xan")
    before = cache.get(GENERATION_KEY)
    with sync_write(identity):
        identity.delete()  # post_delete passes no "created": a delete is never a new identity of a new user
    assert cache.get(GENERATION_KEY) != before


# ---------------------------------------------------------------------------
# sync_write (the plain _sync_writing, wrapped by contextmanager)


def test_a_sync_write_inside_another_keeps_both_objects_marked_until_each_block_ends() -> None:
    user, identity = User(username="una"), OIDCIdentity(issuer=ISS, subject="una")
    with sync_write(user):
        with sync_write(identity):
            assert is_sync_write(user) and is_sync_write(identity)
        assert is_sync_write(user) and not is_sync_write(identity)
    assert not is_sync_write(user)


def test_a_sync_write_unmarks_its_object_when_the_block_ends_or_raises() -> None:
    user = User(username="ulf")
    with sync_write(user):
        assert is_sync_write(user)
    assert not is_sync_write(user)
    with pytest.raises(RuntimeError), sync_write(user):
        raise RuntimeError("the save failed")
    assert not is_sync_write(user)
    assert not is_sync_write(None)
