"""``Claims``: the path design of ``CLAIMS``, the presets, and normalisation whatever shape a token uses."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from drf_oidc_jwks.claims import (
    CLAIM_ATTRIBUTES,
    PRESETS,
    AnyOf,
    Claims,
    is_machine_token,
    lookup,
    normalise_path,
    resolve_claim_paths,
)
from drf_oidc_jwks.conf import PROVIDERS, validate

BASE = {"ISSUER": "https://a.test", "AUDIENCE": "x"}


def claims(payload: dict[str, Any], provider: str = "generic", **overrides: Any) -> Claims:
    return Claims(payload, resolve_claim_paths(provider, overrides))


# -- paths -----------------------------------------------------------------------


NESTED = {
    "realm_access": {"roles": ["admin"]},
    "resource_access": {"my.client": {"roles": ["editor"]}, "api": {"roles": ["viewer"]}},
    "a.b": "literal",
    "a": {"b": "nested"},
    "cognito:groups": ["g1"],
    "https://example.com/roles": ["namespaced"],
    "https://example.com/profile": {"plan": "pro"},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("realm_access.roles", ["admin"]),
        ("resource_access.api.roles", ["viewer"]),
        ("cognito:groups", ["g1"]),
        ("https://example.com/roles", ["namespaced"]),
        (("resource_access", "my.client", "roles"), ["editor"]),
        (("https://example.com/profile", "plan"), "pro"),
        ("a.b", "literal"),  # a top-level name holding a dot wins over the walk
        (("a", "b"), "nested"),  # ...and the explicit walk still reaches the nested one
        ("resource_access.my.client.roles", ["editor"]),  # the longest name present wins at each level
        ("https://example.com/profile.plan", "pro"),
        ("resource_access.my.roles", None),
        ("realm_access.roles.0", None),  # no indexing into lists
        ("missing", None),
        ("missing.deeper", None),
        (None, None),
    ],
)
def test_a_path_reads_a_literal_name_first_then_walks_dots_and_a_list_walks_explicit_segments(
    path: Any, expected: Any
) -> None:
    assert lookup(NESTED, path) == expected


def test_a_list_of_strings_is_one_path_of_segments_and_a_list_holding_a_list_is_several_paths() -> None:
    assert normalise_path(["resource_access", "my.client", "roles"]) == ("resource_access", "my.client", "roles")
    several = normalise_path(["realm_access.roles", ["resource_access", "my.client", "roles"]])
    assert isinstance(several, AnyOf)
    assert several == ("realm_access.roles", ("resource_access", "my.client", "roles"))
    assert normalise_path(None) is None
    assert normalise_path("scope") == "scope"
    with pytest.raises(TypeError):
        normalise_path(5)


def test_several_paths_merge_into_set_attributes() -> None:
    c = claims(NESTED, roles=[["realm_access", "roles"], ["resource_access", "api", "roles"], "cognito:groups"])
    assert c.roles == {"admin", "viewer", "g1"}


def test_several_paths_give_single_attributes_the_first_present_value() -> None:
    c = claims({"tid": "t-1", "org_id": "o-1"}, tenant_id=[["missing"], "org_id", "tid"])
    assert c.tenant_id == "o-1"


def test_none_turns_an_attribute_off() -> None:
    assert claims({"roles": ["admin"]}, roles=None).roles == frozenset()


def test_claims_overrides_the_preset_key_by_key() -> None:
    paths = resolve_claim_paths("keycloak", {"roles": "resource_access.api.roles"})
    assert paths["roles"] == "resource_access.api.roles"
    assert paths["scopes"] == PRESETS["keycloak"]["scopes"]
    assert PRESETS["keycloak"]["roles"] == "realm_access.roles"  # the preset itself is untouched


def test_claims_claim_method_reads_any_path() -> None:
    c = claims(NESTED)
    assert c.claim("https://example.com/roles") == ["namespaced"]
    assert c.claim(["resource_access", "my.client", "roles"]) == ["editor"]
    assert c.claim("nope") is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_preset_maps_every_attribute(provider: str) -> None:
    assert set(PRESETS[provider]) == set(CLAIM_ATTRIBUTES)


def test_a_claims_path_of_the_wrong_type_is_a_configuration_error() -> None:
    problems = validate({**BASE, "CLAIMS": {"roles": 5}})
    assert [p.id for p in problems] == ["E009"]
    assert validate({**BASE, "CLAIMS": {"roles": [["realm_access", "roles"], "groups"]}}) == []


# -- normalisation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("admin", {"admin"}),
        ("admin editor", {"admin", "editor"}),
        ("admin,editor", {"admin", "editor"}),  # Better Auth's admin plugin
        (" admin , editor ", {"admin", "editor"}),
        (["admin", "editor", "admin"], {"admin", "editor"}),
        (["admin", 7, None, True, {"x": 1}, ["y"], ""], {"admin", "7"}),
        ({"admin": True, "editor": {"org": "acme"}, "off": False, "gone": None}, {"admin", "editor"}),
        (7, {"7"}),
        (True, set()),
        (None, set()),
        (1.5, set()),
        ("", set()),
    ],
)
def test_roles_are_a_frozenset_whatever_shape_the_token_uses(value: Any, expected: set[str]) -> None:
    c = claims({"roles": value})
    assert isinstance(c.roles, frozenset)
    assert c.roles == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("read write", {"read", "write"}),
        (["read", "write"], {"read", "write"}),
        ("read,write", {"read,write"}),  # scopes are space-separated only (RFC 6749 3.3)
        ({"read": True}, {"read"}),
        (None, set()),
    ],
)
def test_scopes_and_permissions_are_frozensets_split_on_spaces_only(value: Any, expected: set[str]) -> None:
    c = claims({"scope": value, "permissions": value})
    assert c.scopes == expected
    assert c.permissions == expected
    assert isinstance(c.scopes, frozenset) and isinstance(c.permissions, frozenset)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["org_1", "org_2", "org_1"], ("org_1", "org_2")),
        ("org_1 org_2", ("org_1", "org_2")),
        ("org_1,org_2", ("org_1", "org_2")),
        ({"acme": {"id": "1"}, "globex": {}}, ("acme", "globex")),  # Keycloak organizations with attributes
        ([1, 2], ("1", "2")),
        (None, ()),
        (3.5, ()),
    ],
)
def test_organization_ids_are_an_ordered_tuple_of_distinct_strings(value: Any, expected: tuple[str, ...]) -> None:
    c = claims({"organization_ids": value})
    assert c.organization_ids == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("acme", "acme"), (42, "42"), (["acme"], "acme"), (["a", "b"], None), ("", None), (True, None), ({}, None)],
)
def test_tenant_id_and_org_role_are_strings_or_none(value: Any, expected: str | None) -> None:
    c = claims({"tenant_id": value, "org_role": value})
    assert (c.tenant_id, c.org_role) == (expected, expected)


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("true", True), ("True", True), (False, False), ("false", False), (1, False)]
)
def test_email_verified_is_a_bool_and_accepts_cognitos_string_booleans(value: Any, expected: bool) -> None:
    assert claims({"email_verified": value}).email_verified is expected


def test_audience_is_a_tuple_whether_aud_is_a_string_or_a_list() -> None:
    assert claims({"aud": "api"}).audience == ("api",)
    assert claims({"aud": ["api", "account"]}).audience == ("api", "account")
    assert claims({}).audience == ()


def test_expires_at_and_issued_at_are_aware_datetimes_and_absurd_values_are_none() -> None:
    c = claims({"exp": 1700000300, "iat": 1700000000})
    assert c.expires_at == datetime.datetime(2023, 11, 14, 22, 18, 20, tzinfo=datetime.timezone.utc)
    assert c.issued_at is not None and c.issued_at.tzinfo is datetime.timezone.utc
    assert claims({"exp": 1e300, "iat": True}).expires_at is None
    assert claims({"iat": True}).issued_at is None


def test_claims_is_a_read_only_mapping_of_the_raw_payload() -> None:
    c = claims({"sub": "alice", "software_background": "advanced", "iss": "https://a.test"})
    assert c["software_background"] == "advanced"
    assert c.get("hardware_tier", "tier1") == "tier1"
    assert set(c) == {"sub", "software_background", "iss"}
    assert len(c) == 3
    assert (c.sub, c.issuer) == ("alice", "https://a.test")
    assert "alice" in repr(c)
    with pytest.raises(TypeError):
        c["sub"] = "mallory"  # type: ignore[index]


def test_subject_path_reads_another_claim_and_falls_back_to_sub() -> None:
    assert claims({"sub": "pairwise", "oid": "stable"}, "entra").sub == "stable"
    assert claims({"sub": "pairwise"}, "entra").sub == "pairwise"


# -- machine tokens --------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "machine"),
    [
        ({"sub": "abc@clients", "gty": "client-credentials", "azp": "abc"}, True),  # Auth0
        ({"sub": "abc@clients", "azp": "abc"}, True),  # Auth0 without gty
        ({"sub": "auth0|123", "azp": "abc"}, False),
        ({"sub": "0oa1", "cid": "0oa1"}, True),  # Okta client credentials
        ({"sub": "alice@example.com", "cid": "0oa1", "uid": "00u1"}, False),
        ({"sub": "svc", "preferred_username": "service-account-billing", "azp": "billing"}, True),  # Keycloak
        ({"sub": "u", "preferred_username": "service-account-billing", "azp": "web"}, False),
        ({"sub": "sp-oid", "oid": "sp-oid", "roles": ["Jobs.Run"]}, True),  # Entra app-only
        ({"sub": "pairwise", "oid": "user-oid", "scp": "read"}, False),
        ({"sub": "x", "idtyp": "app"}, True),
        ({"sub": "7abc", "client_id": "7abc", "token_use": "access"}, True),  # Cognito client credentials
        ({"sub": "uuid", "client_id": "7abc", "token_use": "access", "username": "alice"}, False),
        ({"sub": "alice"}, False),
        ({}, False),
    ],
)
def test_machine_tokens_are_recognised_for_every_provider(payload: dict[str, Any], machine: bool) -> None:
    assert is_machine_token(payload) is machine
    assert claims(payload).is_machine is machine
