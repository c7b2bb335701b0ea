"""Tests that kill mutants of claim_values.py which the rest of the suite let through (scripts/mutation.sh).

Each pins one reading rule of ``Claims`` (docs/claims.md) at the value where a changed operator or constant
would show; docs/security.md, "Mutation testing", says how they were found.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from drf_oidc_jwks.claim_values import attribute_table
from drf_oidc_jwks.claims import Claims, as_set, as_tuple, resolve_claim_paths

UTC = datetime.timezone.utc


def claims(payload: dict[str, Any], provider: str = "generic", **overrides: Any) -> Claims:
    return Claims(payload, resolve_claim_paths(provider, overrides))


# -- several paths (AnyOf) ---------------------------------------------------------


def test_claim_with_several_paths_returns_the_first_present_value_in_path_order() -> None:
    c = claims({"a": {"x": "first"}, "b": "second"})
    assert c.claim([["a", "x"], "b"]) == "first"
    assert c.claim([["missing", "x"], "b"]) == "second"
    assert c.claim([["missing"], "b.nope"]) is None


def test_roles_from_two_present_paths_are_the_union_of_both() -> None:
    paths = [["realm", "roles"], ["client", "roles"]]
    c = claims({"realm": {"roles": ["admin"]}, "client": {"roles": ["editor"]}}, roles=paths)
    assert c.roles == {"admin", "editor"}


def test_comma_separated_roles_split_whether_one_or_several_paths_are_present() -> None:
    paths = [["realm", "roles"], ["client", "roles"]]
    assert claims({"realm": {"roles": "admin,user"}}, roles=paths).roles == {"admin", "user"}
    both = claims({"realm": {"roles": "admin,user"}, "client": {"roles": ["editor"]}}, roles=paths)
    assert both.roles == {"admin", "user", "editor"}
    # scopes never split on commas, one path present or several
    scopes = [["a", "scope"], ["b", "scope"]]
    assert claims({"a": {"scope": "read,write"}}, scopes=scopes).scopes == {"read,write"}
    assert claims({"a": {"scope": "read,write"}, "b": {"scope": "x"}}, scopes=scopes).scopes == {"read,write", "x"}


# -- normalisers --------------------------------------------------------------------


def test_as_set_splits_on_commas_only_when_asked_and_as_tuple_always_does() -> None:
    assert as_set("admin,user") == {"admin,user"}
    assert as_set("admin,user", commas=True) == {"admin", "user"}
    assert as_tuple("b,a b") == ("b", "a")


def test_a_string_audience_is_one_audience_even_holding_a_comma_or_a_space() -> None:
    assert claims({"aud": "urn:api,v2"}).audience == ("urn:api,v2",)
    assert claims({"aud": "my api"}).audience == ("my api",)


# -- dates ---------------------------------------------------------------------------


def test_a_time_claim_of_zero_is_the_epoch_and_one_past_the_year_9999_is_none() -> None:
    epoch = datetime.datetime(1970, 1, 1, tzinfo=UTC)
    assert claims({"exp": 0}).expires_at == epoch
    assert claims({"iat": 0.0}).issued_at == epoch
    assert claims({"auth_time": 0}).auth_time == epoch
    assert claims({"exp": -1}).expires_at is None
    last = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime holds
    assert claims({"exp": last}).expires_at == datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert claims({"exp": last + 1}).expires_at is None
    assert claims({"iat": last + 1}).issued_at is None


def test_a_single_value_that_normalises_to_nothing_is_none() -> None:
    assert claims({"email": [""]}).email is None
    assert claims({"email": [5]}).email == "5"
    assert claims({"name": [True]}).name is None


# -- single values from several names (AnyOf of top-level names) -----------------------


def test_client_id_is_the_first_of_client_id_and_azp_that_is_a_usable_string() -> None:
    assert claims({"client_id": "c", "azp": "a"}).client_id == "c"
    assert claims({"azp": "a"}).client_id == "a"
    assert claims({"client_id": "", "azp": "a"}).client_id == "a"
    assert claims({"client_id": [], "azp": "a"}).client_id == "a"
    assert claims({"client_id": 7}).client_id == "7"
    assert claims({"client_id": None, "azp": None}).client_id is None


# -- the subject ------------------------------------------------------------------------


def test_paths_without_a_subject_entry_read_sub() -> None:
    # A paths mapping may leave "subject" out: the subject is then the sub claim.
    assert Claims({"sub": "alice"}, {}).sub == "alice"
    assert Claims({"sub": "alice", "uid": "u1"}, {"subject": "uid"}).sub == "u1"
    assert Claims({"sub": "alice"}, {"subject": "uid"}).sub == "alice"


# -- machine tokens -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"sub": "u", "gty": "client-credentials"},
        {"sub": "svc", "azp": "svc"},
        {"sub": "svc", "appid": "svc"},
        {"sub": "svc", "cid": "svc"},
        {"sub": "svc", "client_id": "svc"},
        {"sub": "o1", "oid": "o1"},
    ],
)
def test_machine_tokens_are_recognised_by_each_rule(payload: dict[str, Any]) -> None:
    assert claims(payload).is_machine is True


@pytest.mark.parametrize(
    "payload",
    [
        {"sub": "u", "gty": "password"},
        {"sub": "u", "GTY": "client-credentials"},
        {"sub": 5, "client_id": 5},  # a subject that is not a string is never the client
        {"sub": "", "client_id": ""},
        {"sub": "5@clients", "azp": 5},  # azp must be a string for the Auth0 @clients rule
        {"sub": "o1", "oid": "o1", "scp": "read"},  # delegated scopes: a user's token
        {"sub": "svc", "AZP": "svc"},
        {"sub": "svc", "APPID": "svc"},
    ],
)
def test_user_tokens_are_not_machine_tokens(payload: dict[str, Any]) -> None:
    assert claims(payload).is_machine is False


# -- the per-mapping attribute table ------------------------------------------------------


def test_the_attribute_table_is_built_once_per_paths_mapping() -> None:
    paths = resolve_claim_paths("generic", {})
    table = attribute_table(paths)
    assert attribute_table(paths) is table
    other = resolve_claim_paths("generic", {})
    assert attribute_table(other) is not table


def test_the_attribute_tables_start_over_past_64_mappings() -> None:
    held: list[dict[str, Any]] = []

    def fresh() -> tuple[dict[str, Any], dict[str, Any]]:
        paths = resolve_claim_paths("generic", {})
        held.append(paths)  # kept alive, so no id is reused
        return paths, attribute_table(paths)

    # Find the moment the tables start over: the previous mapping's table is then no longer kept.
    previous, previous_table = fresh()
    for _ in range(70):
        current, current_table = fresh()
        if attribute_table(previous) is not previous_table:
            break  # the tables now hold current and previous: 2 of 64
        previous, previous_table = current, current_table
    else:
        pytest.fail("the tables never started over")
    for _ in range(62):
        fresh()
    assert attribute_table(current) is current_table  # 64 held: current is still there
    fresh()  # the 65th starts over
    assert attribute_table(current) is not current_table


# -- every attribute, read through a mapping of its own --------------------------------------


def test_every_attribute_is_read_from_its_own_claim() -> None:
    payload = {
        "sub": "alice",
        "iss": "https://idp.test",
        "aud": ["api", "account"],
        "roles": "admin,user",
        "scope": "read write",
        "permissions": ["p1"],
        "tenant_id": "t1",
        "organization_ids": {"o1": {"name": "One"}, "o2": {}},
        "org_role": "owner",
        "client_id": "cli",
        "exp": 2_000_000_000,
        "iat": 1_999_999_000,
        "email": "a@x.test",
        "email_verified": "TRUE",
        "name": "Alice A",
        "given_name": "Alice",
        "family_name": "A",
        "preferred_username": "alice1",
        "sid": "s1",
        "acr": "urn:mfa",
        "amr": ["pwd", 5, "otp"],
        "auth_time": 1_999_998_000,
        "cnf": {"jkt": "thumb"},
    }
    c = claims(payload)
    at = datetime.datetime.fromtimestamp
    assert (c.sub, c.issuer, c.audience) == ("alice", "https://idp.test", ("api", "account"))
    assert (c.roles, c.scopes, c.permissions) == ({"admin", "user"}, {"read", "write"}, {"p1"})
    assert (c.tenant_id, c.organization_ids, c.org_role, c.client_id) == ("t1", ("o1", "o2"), "owner", "cli")
    assert (c.expires_at, c.issued_at) == (at(2_000_000_000, tz=UTC), at(1_999_999_000, tz=UTC))
    assert (c.email, c.email_verified, c.name) == ("a@x.test", True, "Alice A")
    assert (c.given_name, c.family_name, c.username) == ("Alice", "A", "alice1")
    assert (c.sid, c.acr, c.amr, c.auth_time) == ("s1", "urn:mfa", ("pwd", "otp"), at(1_999_998_000, tz=UTC))
    assert (c.dpop_jkt, c.is_machine) == ("thumb", False)
    empty = claims({})
    assert (empty.email_verified, empty.amr, empty.dpop_jkt, empty.organization_ids) == (False, (), None, ())
    assert claims({"cnf": "thumb", "amr": "pwd"}).dpop_jkt is None
    assert claims({"amr": "pwd"}).amr == ()


def test_email_verified_is_read_from_the_first_present_path_only() -> None:
    paths = [["a", "verified"], ["b", "verified"]]
    assert claims({"a": {"verified": False}, "b": {"verified": True}}, email_verified=paths).email_verified is False
    assert claims({"b": {"verified": True}}, email_verified=paths).email_verified is True
    assert claims({"a": {"verified": "true"}}, email_verified=paths).email_verified is True
