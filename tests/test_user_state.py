"""Per-process copies of user states: LRU-bounded, kept until USER_CACHE_TTL after the database read, dropped
together when the shared generation counter moves, and safe when the shared cache is down.

The counter lives in the real cache of the run (LocMemCache, or Redis under ``python -m tests.services``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.models import OIDCIdentity
from drf_oidc_jwks.testing import TestIssuer
from drf_oidc_jwks.user_state import (
    ACTIVE,
    GENERATION_KEY,
    INACTIVE,
    LocalStates,
    bump_generation,
    get_state,
    local_states,
    set_state,
)

User = get_user_model()
ME = "/api/me"
CLAIMS_ONLY = "/api/personalized"
UNREACHABLE_CACHE = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}


def bearer(api: APIClient, token: str, path: str = ME) -> Any:
    return api.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_process_keeps_at_most_user_local_cache_size_identities_least_recently_used_first(
    oidc_settings, issuer, api
):
    oidc_settings(USER_LOCAL_CACHE_SIZE=3)
    tokens = {sub: issuer.token(sub=sub) for sub in ("a", "b", "c", "d", "e")}
    for sub in ("a", "b", "c"):
        assert bearer(api, tokens[sub]).status_code == 200
    assert bearer(api, tokens["a"]).status_code == 200  # a is now the most recently used
    for sub in ("d", "e"):
        assert bearer(api, tokens[sub]).status_code == 200
    kept = {identity[1] for identity in local_states().entries}
    assert len(local_states()) == 3
    assert kept == {"a", "d", "e"}


def test_the_steady_state_of_many_users_runs_no_query_and_reads_the_counter_once(
    oidc_settings, issuer, api, django_assert_num_queries
):
    tokens = [issuer.token(sub=f"user-{i}", email=f"u{i}@example.com") for i in range(40)]
    for token in tokens:
        assert bearer(api, token).status_code == 200
    checks = local_states().checks
    with django_assert_num_queries(0):
        for token in tokens * 3:
            assert bearer(api, token).status_code == 200
    assert local_states().checks - checks <= 1  # one read of the shared counter per USER_LOCAL_CACHE_TTL at most


def test_a_bump_of_the_generation_drops_every_copy_at_the_next_check_and_not_before(oidc_settings):
    s = get_settings()
    clock = Clock()
    states = LocalStates(clock=clock)
    states.put(s, ("iss", "a"), ACTIVE, time.time())
    states.put(s, ("iss", "b"), INACTIVE, time.time())
    bump_generation(s)
    clock.now += s.user_local_cache_ttl - 0.01
    assert states.get(s, ("iss", "a")) == ACTIVE  # not checked yet: the copy serves
    clock.now += 0.02
    assert states.get(s, ("iss", "a")) is None  # the counter moved: every copy is gone
    assert len(states) == 0
    states.put(s, ("iss", "a"), ACTIVE, time.time())
    clock.now += s.user_local_cache_ttl + 0.01
    assert states.get(s, ("iss", "a")) == ACTIVE  # checked again, unchanged: kept


def test_a_counter_that_vanished_from_the_shared_cache_counts_as_moved(oidc_settings):
    s = get_settings()
    clock = Clock()
    states = LocalStates(clock=clock)
    states.put(s, ("iss", "a"), ACTIVE, time.time())
    cache.delete(GENERATION_KEY)  # evicted, or the cache was flushed or restarted
    clock.now += s.user_local_cache_ttl + 0.01
    assert states.get(s, ("iss", "a")) is None
    assert cache.get(GENERATION_KEY) is not None  # a fresh value for everyone to compare with


def test_with_the_shared_cache_down_a_copy_serves_user_local_cache_ttl_at_most(settings, oidc_settings):
    settings.CACHES = {**settings.CACHES, "down": UNREACHABLE_CACHE}
    oidc_settings(USER_CACHE_ALIAS="down", USER_LOCAL_CACHE_TTL=2)
    s = get_settings()
    clock = Clock()
    states = LocalStates(clock=clock)
    states.put(s, ("iss", "a"), ACTIVE, time.time())  # the first check fails: nothing is confirmed
    clock.now += 1.9
    assert states.get(s, ("iss", "a")) == ACTIVE
    clock.now += 0.2
    assert states.get(s, ("iss", "a")) is None  # as if every check had seen a change
    assert states.confirmed is False


def test_a_copy_read_from_the_shared_cache_expires_user_cache_ttl_after_the_database_read(oidc_settings):
    oidc_settings(USER_CACHE_TTL=1)
    s = get_settings()
    set_state(s, "iss", "a", ACTIVE)  # what a database read stores
    local_states().clear()
    time.sleep(0.6)
    assert get_state(s, "iss", "a") == ACTIVE  # read from the shared cache, copied into this process
    time.sleep(0.5)
    # 1.1 s after the database read: the shared entry has expired, and so has the copy (which, counted
    # from when it was copied, would have served until 1.6 s).
    assert ("iss", "a") in local_states().entries
    assert get_state(s, "iss", "a") is None


def test_the_first_sight_of_a_new_user_does_not_bump_the_generation_but_a_change_does(
    oidc_settings, issuer: TestIssuer, api
):
    assert bearer(api, issuer.token(sub="warm-up"), CLAIMS_ONLY).status_code == 200
    generation = cache.get(GENERATION_KEY)
    assert bearer(api, issuer.token(sub="alice", email="a@example.com")).status_code == 200
    assert cache.get(GENERATION_KEY) == generation  # a new user concerns no other process
    changed = issuer.token(sub="alice", email="new@example.com", iat=int(time.time()) + 1)
    assert bearer(api, changed).status_code == 200
    after_sync = cache.get(GENERATION_KEY)
    assert after_sync != generation  # the sync wrote changed claims onto the user: announced
    user = User.objects.get(username__in=["alice", "a@example.com", "new@example.com"])
    user.is_active = False
    user.save()
    assert cache.get(GENERATION_KEY) != after_sync  # a save through the model: announced


@pytest.mark.django_db(transaction=True)
def test_a_save_committed_later_is_announced_again_after_the_commit(oidc_settings, issuer, api):
    from django.db import transaction

    assert bearer(api, issuer.token(sub="alice")).status_code == 200
    user = User.objects.get()
    with transaction.atomic():
        user.is_active = False
        user.save()
        inside = cache.get(GENERATION_KEY)
    assert cache.get(GENERATION_KEY) != inside  # bumped again once the row is visible to others


def test_copies_due_to_expire_are_read_again_in_one_query_which_also_sees_a_bulk_deactivation(
    oidc_settings, issuer, api
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    oidc_settings(USER_CACHE_TTL=3, USER_LOCAL_CACHE_TTL=1)  # every check sees copies due within 2 s
    tokens = [issuer.token(sub=f"user-{i}") for i in range(5)]
    for token in tokens:
        assert bearer(api, token).status_code == 200
    time.sleep(1.1)
    with CaptureQueriesContext(connection) as ctx:
        for token in tokens:
            assert bearer(api, token).status_code == 200
    assert len(ctx.captured_queries) == 1  # the batch, not one SELECT per user
    pk = OIDCIdentity.objects.get(subject="user-0").user_id
    User.objects.filter(pk=pk).update(is_active=False)  # no signal
    time.sleep(1.1)
    response = bearer(api, tokens[0], CLAIMS_ONLY)
    assert (response.status_code, response.json()["code"]) == (401, "user_inactive")
    assert bearer(api, tokens[1], CLAIMS_ONLY).status_code == 200
