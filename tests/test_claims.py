"""``Claims``: the path design of ``CLAIMS``, the presets, and normalisation whatever shape a token uses."""

from __future__ import annotations

import copy
import datetime
import gc
import json
import pickle
import weakref
from typing import Any

import pytest

from drf_oidc_jwks.claims import (
    CLAIM_ATTRIBUTES,
    PRESETS,
    AnyOf,
    Claims,
    FrozenDict,
    FrozenList,
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


# -- exact means exact (issue 13) ---------------------------------------------------


@pytest.mark.parametrize("item", ["admin ", " admin", "admin\t", "\u00a0admin", "admin\u2003", "admin\n", "Admin"])
def test_role_list_items_are_exact_strings_never_stripped(item: str) -> None:
    c = claims({"roles": [item]})
    assert "admin" not in c.roles
    assert c.roles == {item}


@pytest.mark.parametrize("value", [[], "", {}, None, False, 0])
def test_a_roles_object_counts_only_keys_whose_values_are_truthy(value: Any) -> None:
    assert claims({"roles": {"admin": value, "editor": True}}).roles == {"editor"}
    assert claims({"roles": {"admin": {"org": "acme"}}}).roles == {"admin"}


@pytest.mark.parametrize("value", ["docs:read\u00a0other", "docs:read\u2003", "docs:read\tother", "docs:read\nx"])
def test_scope_strings_are_split_on_u0020_only(value: str) -> None:
    c = claims({"scope": value})
    assert "docs:read" not in c.scopes
    assert claims({"scope": "docs:read  other "}).scopes == {"docs:read", "other"}


@pytest.mark.parametrize("value", ["TRUE ", " true", "true\n", "\u00a0true", "tru\u0435", "yes", "1", "", ["true"]])
def test_email_verified_is_json_true_or_the_word_true_with_nothing_around_it(value: Any) -> None:
    assert claims({"email_verified": value}).email_verified is False
    assert claims({"email_verified": "TRUE"}).email_verified is True


# -- immutable all the way down (issue 12) -------------------------------------------


def frozen_claims() -> Claims:
    return claims({"sub": "alice", "roles": ["user"], "realm_access": {"roles": ["user"]}, "list": [{"a": [1]}]})


@pytest.mark.parametrize("name", ["roles", "sub", "raw", "header", "paths", "anything", "_derived"])
def test_no_attribute_of_claims_can_be_set_or_deleted(name: str) -> None:
    c = frozen_claims()
    with pytest.raises(AttributeError):
        setattr(c, name, frozenset({"admin"}))
    with pytest.raises(AttributeError):
        delattr(c, name)
    assert c.roles == {"user"}


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda raw: raw["roles"].append("admin"), id="list.append"),
        pytest.param(lambda raw: raw["roles"].extend(["admin"]), id="list.extend"),
        pytest.param(lambda raw: raw["roles"].insert(0, "admin"), id="list.insert"),
        pytest.param(lambda raw: raw["roles"].__setitem__(0, "admin"), id="list[0]="),
        pytest.param(lambda raw: raw["roles"].__delitem__(0), id="del list[0]"),
        pytest.param(lambda raw: raw["roles"].__iadd__(["admin"]), id="list+="),
        pytest.param(lambda raw: raw["roles"].__imul__(2), id="list*="),
        pytest.param(lambda raw: raw["roles"].pop(), id="list.pop"),
        pytest.param(lambda raw: raw["roles"].remove("user"), id="list.remove"),
        pytest.param(lambda raw: raw["roles"].clear(), id="list.clear"),
        pytest.param(lambda raw: raw["roles"].sort(), id="list.sort"),
        pytest.param(lambda raw: raw["roles"].reverse(), id="list.reverse"),
        pytest.param(lambda raw: raw.__setitem__("roles", ["admin"]), id="raw[k]="),
        pytest.param(lambda raw: raw.update(roles=["admin"]), id="raw.update"),
        pytest.param(lambda raw: raw.__ior__({"roles": ["admin"]}), id="raw|="),
        pytest.param(lambda raw: raw.setdefault("scope", "admin"), id="raw.setdefault"),
        pytest.param(lambda raw: raw.pop("roles"), id="raw.pop"),
        pytest.param(lambda raw: raw.popitem(), id="raw.popitem"),
        pytest.param(lambda raw: raw.clear(), id="raw.clear"),
        pytest.param(lambda raw: raw.__delitem__("roles"), id="del raw[k]"),
        pytest.param(lambda raw: raw["realm_access"].__setitem__("roles", ["admin"]), id="nested dict"),
        pytest.param(lambda raw: raw["realm_access"]["roles"].append("admin"), id="nested list"),
        pytest.param(lambda raw: raw["list"][0]["a"].append(2), id="list in dict in list"),
    ],
)
def test_the_raw_payload_is_frozen_all_the_way_down(mutate: Any) -> None:
    c = frozen_claims()
    with pytest.raises(TypeError, match="read-only"):
        mutate(c.raw)
    assert c.raw == {"sub": "alice", "roles": ["user"], "realm_access": {"roles": ["user"]}, "list": [{"a": [1]}]}
    assert c.roles == {"user"}
    assert claims(dict(c.raw), "keycloak").roles == {"user"}


def test_calling_init_again_does_not_refill_a_frozen_dict_or_list() -> None:
    c = frozen_claims()
    c.raw.__init__(roles=["admin"])  # type: ignore[misc]
    c.raw["roles"].__init__(["admin"])  # type: ignore[misc]
    assert c.raw["roles"] == ["user"] and c.roles == {"user"}


def test_mutating_the_source_payload_afterwards_does_not_show_through() -> None:
    payload: dict[str, Any] = {"sub": "alice", "roles": ["user"]}
    c = claims(payload)
    payload["roles"].append("admin")
    payload["sub"] = "mallory"
    assert (c.sub, c["roles"], c.roles) == ("alice", ["user"], {"user"})


def test_frozen_payload_is_still_json_a_dict_and_a_list() -> None:
    c = frozen_claims()
    assert json.loads(json.dumps(c.raw)) == {
        "sub": "alice",
        "roles": ["user"],
        "realm_access": {"roles": ["user"]},
        "list": [{"a": [1]}],
    }
    assert isinstance(c.raw, dict) and isinstance(c.raw["roles"], list)
    assert isinstance(c.raw, FrozenDict) and isinstance(c.raw["realm_access"]["roles"], FrozenList)
    assert c.claim("realm_access.roles") == ["user"]
    assert c.header == {}


def test_claims_survive_copy_deepcopy_and_pickle_unchanged_and_frozen() -> None:
    c = frozen_claims()
    assert copy.copy(c) is c and copy.deepcopy(c) is c
    back = pickle.loads(pickle.dumps(c))
    assert back == c and back.roles == {"user"} and back.paths == c.paths
    with pytest.raises(TypeError):
        back.raw["roles"].append("admin")


def test_claims_can_key_a_weak_dictionary_and_are_hashed_by_identity() -> None:
    c, twin = frozen_claims(), frozen_claims()
    derived: weakref.WeakKeyDictionary[Claims, str] = weakref.WeakKeyDictionary()
    derived[c] = "fingerprint"
    assert c == twin and derived.get(twin) is None and derived[c] == "fingerprint"
    del c
    gc.collect()
    assert len(derived) == 0


# -- attributes on first access (issue 18) ----------------------------------------


def test_every_attribute_is_computed_once_on_first_access_and_then_kept() -> None:
    c = claims({"sub": "alice", "roles": ["a", "b"], "aud": ["x"], "exp": 1700000300, "scope": "s"})
    for name in Claims.ATTRIBUTES:
        assert getattr(c, name) is getattr(c, name)
    assert (c.roles, c.scopes, c.audience) == ({"a", "b"}, {"s"}, ("x",))


def test_claims_slots_list_the_public_attributes_and_nothing_private() -> None:
    # oidc_decode prints type(claims).__slots__ minus raw/header/paths: the contract's attribute names.
    names = set(Claims.__slots__) - {"raw", "header", "paths"}
    assert names == set(Claims.ATTRIBUTES)
    assert {"sub", "issuer", "audience", "roles", "scopes", "permissions", "tenant_id"} <= names
    assert {"organization_ids", "org_role", "expires_at"} <= names
    assert not any(name.startswith("_") for name in names)
    with pytest.raises(AttributeError):
        frozen_claims()._derived  # type: ignore[attr-defined]  # noqa: B018


def test_oidc_decode_prints_every_claims_attribute_and_no_derived_slot() -> None:
    from drf_oidc_jwks.management.commands.oidc_decode import claims_attributes

    printed = claims_attributes(claims({"sub": "alice", "roles": ["b", "a"]}))
    assert set(printed) == set(Claims.ATTRIBUTES)
    assert printed["roles"] == ["a", "b"] and printed["sub"] == "alice"


def test_claims_equal_their_payload_and_an_equal_claims_object() -> None:
    c = frozen_claims()
    assert c == c and c == frozen_claims() and c == dict(c.raw)
    assert c != claims({"sub": "mallory"}) and c != {"sub": "alice"} and c != ["sub"]


def test_session_authentication_context_and_binding_attributes_are_read_as_the_token_carries_them() -> None:
    payload = {
        "sub": "u",
        "sid": "s-1",
        "acr": "urn:mace:incommon:iap:silver",
        "amr": ["pwd", "otp", 3],
        "auth_time": 1_700_000_000,
        "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
    }
    claims = Claims(payload)
    assert (claims.sid, claims.acr, claims.amr) == ("s-1", "urn:mace:incommon:iap:silver", ("pwd", "otp"))
    assert claims.auth_time == datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc)
    assert claims.dpop_jkt == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    assert claims.token_format == "jwt"
    bare = Claims({"sub": "u", "cnf": "not an object", "amr": "pwd", "auth_time": True})
    assert (bare.sid, bare.acr, bare.amr, bare.auth_time, bare.dpop_jkt) == (None, None, (), None, None)


def test_an_introspection_answer_is_claims_of_the_opaque_format_and_keeps_it_when_copied() -> None:
    import pickle

    claims = Claims({"sub": "u", "active": True}, token_format="opaque")
    assert claims.token_format == "opaque"
    assert pickle.loads(pickle.dumps(claims)).token_format == "opaque"
    with pytest.raises(AttributeError):
        claims.token_format = "jwt"  # type: ignore[misc]
