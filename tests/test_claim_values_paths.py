"""Tests that kill mutants of claim_values.py which the rest of the suite let through (scripts/mutation.sh).

Each names the normalisation rule it pins: machine tokens, several claim paths, commas, the audience
tuple, the time bounds, the subject path and the per-mapping attribute tables.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from drf_oidc_jwks.claim_paths import AnyOf
from drf_oidc_jwks.claim_values import as_set, as_str, as_tuple, attribute_table, is_machine_token, lookup
from drf_oidc_jwks.claims import Claims, resolve_claim_paths


def claims(payload: dict[str, Any], **paths: Any) -> Claims:
    return Claims(payload, {**resolve_claim_paths("generic", {}), **paths})


@pytest.mark.parametrize(
    ("payload", "machine"),
    [
        ({"sub": "u-1", "gty": "client-credentials"}, True),  # Auth0's grant type alone says so
        ({"sub": "u-1", "gty": "CLIENT-CREDENTIALS"}, False),
        ({"sub": "u-1", "gty": "password"}, False),
        ({"sub": "app-1", "azp": "app-1"}, True),
        ({"sub": "app-1", "appid": "app-1"}, True),  # Entra v1
        ({"sub": "app-1", "APPID": "app-1", "AZP": "app-1"}, False),
        ({"sub": "", "client_id": ""}, False),  # an empty subject is nobody's
        ({"sub": 5, "client_id": 5}, False),  # a non-string subject is nobody's
        ({"sub": "@clients", "azp": ""}, False),  # an empty azp names no client
        ({"sub": "o-1", "oid": "o-1", "scp": "read"}, False),  # delegated scopes: a person's token
        ({"sub": "o-1", "oid": "o-1", "SCP": "read"}, True),
    ],
)
def test_machine_token_rules_each_on_their_own(payload, machine):
    assert is_machine_token(payload) is machine


def test_lookup_of_several_paths_takes_the_first_present_value():
    payload = {"a": None, "b": {"c": 2}, "d": 3}
    assert lookup(payload, AnyOf(("a", ("b", "c"), "d"))) == 2
    assert lookup(payload, AnyOf(("a", "d"))) == 3
    assert lookup(payload, AnyOf(("a", "x"))) is None


def test_two_paths_merge_into_a_set_attribute_and_commas_split_roles_from_every_path():
    c = claims({"r1": ["admin"], "r2": "editor,viewer"}, roles=AnyOf(("r1", "r2")))
    assert c.roles == {"admin", "editor", "viewer"}
    assert claims({"r1": "admin,editor"}, roles=AnyOf(("r1", "r2"))).roles == {"admin", "editor"}
    assert claims({"realm": {"roles": "admin,editor"}}, roles="realm.roles").roles == {"admin", "editor"}
    # Scopes are never split on commas, however many paths.
    assert claims({"s1": "a,b", "s2": "c"}, scopes=AnyOf(("s1", "s2"))).scopes == {"a,b", "c"}


def test_as_set_splits_on_commas_only_when_asked_and_as_tuple_always():
    assert as_set("a,b c") == {"a,b", "c"}
    assert as_set("a,b c", commas=True) == {"a", "b", "c"}
    assert as_tuple("b,a c,b") == ("b", "a", "c")


def test_as_str_gives_none_for_an_empty_string_in_a_one_item_list():
    assert as_str([""]) is None and as_str("") is None
    assert as_str(["x"]) == "x" and as_str([7]) == "7"


def test_a_string_audience_is_one_audience_whatever_it_holds():
    assert claims({"aud": "api,other"}).audience == ("api,other",)
    assert claims({"aud": "urn:a b"}).audience == ("urn:a b",)


def test_times_from_the_epoch_to_the_last_second_of_9999_are_datetimes():
    utc = datetime.timezone.utc
    assert claims({"exp": 0}).expires_at == datetime.datetime(1970, 1, 1, tzinfo=utc)
    assert claims({"exp": 0.5}).expires_at == datetime.datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=utc)
    assert claims({"exp": 253402300799}).expires_at == datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=utc)
    assert claims({"exp": 253402300800}).expires_at is None
    assert claims({"exp": -1}).expires_at is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"org_id": "o-1", "tid": "t-1"}, "o-1"),
        ({"tid": "t-1"}, "t-1"),  # the first name absent
        ({"org_id": None, "tid": "t-1"}, "t-1"),
        ({"org_id": "", "tid": "t-1"}, "t-1"),  # present but no string: the next name
        ({"org_id": [], "tid": 7}, "7"),
        ({"None": "n"}, None),
        ({}, None),
    ],
)
def test_several_plain_claim_names_give_a_single_attribute_the_first_string(payload, expected):
    assert claims(payload, tenant_id=AnyOf(("org_id", "tid"))).tenant_id == expected


def test_a_paths_mapping_without_a_subject_reads_sub():
    assert Claims({"sub": "u-1", "roles": ["a"]}, {}).sub == "u-1"
    assert Claims({"sub": "u-1"}, {"roles": "roles"}).sub == "u-1"


def test_a_paths_mapping_gets_one_table_built_once_and_kept_while_it_lives():
    paths = resolve_claim_paths("generic", {})
    table = attribute_table(paths)
    assert attribute_table(paths) is table
    other = resolve_claim_paths("generic", {})
    assert attribute_table(other) is not table and attribute_table(other) is attribute_table(other)
    assert attribute_table(paths) is table


def test_at_most_64_tables_are_kept_then_they_start_over():
    alive = []  # every mapping is kept alive, so no two share an id

    def new() -> dict[str, Any]:
        alive.append(resolve_claim_paths("generic", {}))
        return alive[-1]

    first = new()
    held = attribute_table(first)
    for _ in range(100):
        last = new()
        last_held = attribute_table(last)
        if attribute_table(first) is not held:
            break  # started over: ``last`` and ``first`` (kept again) are the two kept now
    else:
        pytest.fail("the attribute tables never started over")
    for _ in range(62):
        attribute_table(new())
    assert attribute_table(last) is last_held
    attribute_table(new())  # the 65th starts over
    assert attribute_table(last) is not last_held


def test_email_verified_reads_only_the_first_present_path():
    paths = {"email_verified": AnyOf(("verified", "email_ok"))}
    assert claims({"verified": False, "email_ok": True}, **paths).email_verified is False
    assert claims({"email_ok": True}, **paths).email_verified is True


def test_the_identity_attributes_read_their_configured_paths():
    payload = {"sub": "u", "e": "u@example.com", "n": "Ann Lee", "g": "Ann", "f": "Lee", "l": "ann", "c": "app"}
    paths = {"email": "e", "name": "n", "given_name": "g", "family_name": "f", "username": "l", "client_id": "c"}
    c = claims(payload, **paths)
    assert (c.email, c.name, c.given_name, c.family_name, c.username, c.client_id) == (
        "u@example.com",
        "Ann Lee",
        "Ann",
        "Lee",
        "ann",
        "app",
    )
