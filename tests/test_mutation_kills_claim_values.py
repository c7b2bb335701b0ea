"""Tests that kill mutants of claim_values.py which the rest of the suite let through (scripts/mutation.sh).

Each pins one reading rule of ``Claims`` (docs/claims.md) at the value where a changed operator or constant
would show; docs/security.md, "Mutation testing", says how they were found.
"""

from __future__ import annotations

import datetime
from typing import Any

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
