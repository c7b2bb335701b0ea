"""The DRF_OIDC_JWKS setting: defaults, validation with hints, and re-reading on setting_changed."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from drf_oidc_jwks import settings_values as v
from drf_oidc_jwks.conf import ALL_KEYS, TABLE, first_issuer, get_settings, merge_issuer_keys, validate
from drf_oidc_jwks.settings_values import REQUIRED


def ids(raw):
    return [p.id for p in validate(raw)]


def test_a_minimal_setting_is_valid():
    assert validate({"ISSUER": "https://auth.example.com", "AUDIENCE": "https://api.example.com"}) == []


def test_missing_audience_refuses_to_start_with_a_clear_message(settings):
    settings.DRF_OIDC_JWKS = {"ISSUER": "https://auth.example.com"}
    with pytest.raises(ImproperlyConfigured) as exc:
        get_settings()
    assert "AUDIENCE" in str(exc.value)
    assert '"AUDIENCE": None' in str(exc.value)


def test_audience_none_is_the_explicit_opt_out_with_a_warning(settings):
    raw = {"ISSUER": "https://auth.example.com", "AUDIENCE": None}
    problems = validate(raw)
    assert [(p.id, p.error) for p in problems] == [("W001", False)]
    settings.DRF_OIDC_JWKS = raw
    assert get_settings().issuers[0].audience is None


def test_missing_setting_is_reported(settings):
    del settings.DRF_OIDC_JWKS
    with pytest.raises(ImproperlyConfigured, match="DRF_OIDC_JWKS setting is missing"):
        get_settings()


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("AUDIENCES", "AUDIENCE"), ("JWKS_URI", "JWKS_URL"), ("LEEWAY_SECONDS", "LEEWAY"), ("ALGORITHM", "ALGORITHMS")],
)
def test_unknown_keys_are_reported_with_the_closest_name(typo, suggestion):
    problems = validate({"ISSUER": "https://a.test", "AUDIENCE": "x", typo: 1})
    assert [p.id for p in problems] == ["E002"]
    assert f"Did you mean {suggestion!r}?" in problems[0].hint


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "NONE"])
def test_hmac_and_none_algorithms_are_refused(alg):
    problems = validate({"ISSUER": "https://a.test", "AUDIENCE": "x", "ALGORITHMS": ["RS256", alg]})
    assert [p.id for p in problems] == ["E007"]


def test_unsupported_algorithm_is_refused():
    assert ids({"ISSUER": "https://a.test", "AUDIENCE": "x", "ALGORITHMS": ["XS999"]}) == ["E007"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://auth.example.com", True),
        ("http://auth.example.com", False),
        ("http://localhost:3001", True),
        ("http://127.0.0.1:3001", True),
        ("http://127.8.9.10", True),
        ("http://[::1]:8080", True),
        ("ftp://auth.example.com", False),
        ("auth.example.com", False),
    ],
)
def test_http_issuer_is_allowed_only_on_loopback(url, allowed):
    assert ("E005" not in ids({"ISSUER": url, "AUDIENCE": "x"})) is allowed


def test_allow_insecure_http_opens_http_for_other_hosts():
    assert ids({"ISSUER": "http://auth.internal", "AUDIENCE": "x", "ALLOW_INSECURE_HTTP": True}) == []


def test_http_jwks_url_on_another_host_is_refused():
    assert ids({"ISSUER": "https://a.test", "AUDIENCE": "x", "JWKS_URL": "http://keys.example.com/jwks"}) == ["E005"]


@pytest.mark.parametrize("key", ["JWKS_CACHE_TTL", "LEEWAY", "HTTP_TIMEOUT", "JWKS_MAX_STALE"])
def test_numeric_settings_must_be_non_negative_numbers(key):
    assert ids({"ISSUER": "https://a.test", "AUDIENCE": "x", key: -1}) == ["E010"]
    assert ids({"ISSUER": "https://a.test", "AUDIENCE": "x", key: "5"}) == ["E010"]


def test_numeric_settings_are_used_as_given(settings):
    settings.DRF_OIDC_JWKS = {"ISSUER": "https://a.test", "AUDIENCE": "x", "JWKS_CACHE_TTL": 1, "HTTP_TIMEOUT": 0.2}
    s = get_settings()
    assert (s.jwks_cache_ttl, s.http_timeout) == (1, 0.2)


def test_every_key_has_a_default_documented_in_the_settings_reference():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text()
    missing = [key for key in ALL_KEYS if f"`{key}`" not in text]
    assert missing == []


def test_override_settings_is_picked_up_at_once(settings):
    settings.DRF_OIDC_JWKS = {"ISSUER": "https://one.test", "AUDIENCE": "x"}
    assert get_settings().issuers[0].issuer == "https://one.test"
    settings.DRF_OIDC_JWKS = {"ISSUER": "https://two.test", "AUDIENCE": "x"}
    assert get_settings().issuers[0].issuer == "https://two.test"


def test_several_issuers_inherit_top_level_keys():
    from drf_oidc_jwks.conf import build

    s = build(
        {
            "AUDIENCE": "https://api.test",
            "ALGORITHMS": ["RS256", "EdDSA"],
            "ISSUERS": [{"ISSUER": "https://a.test"}, {"ISSUER": "https://b.test", "AUDIENCE": "other"}],
        }
    )
    assert [(i.issuer, i.audience, i.algorithms) for i in s.issuers] == [
        ("https://a.test", ("https://api.test",), ("RS256", "EdDSA")),
        ("https://b.test", ("other",), ("RS256", "EdDSA")),
    ]


def test_system_check_reports_the_same_problems(settings):
    from django.core.checks import run_checks

    settings.DRF_OIDC_JWKS = {"ISSUER": "https://a.test", "AUDIENCE": "x", "ALGORITHMS": ["HS256"]}
    # Errors only: the suite's LocMemCache with DEBUG False also (rightly) warns W020.
    messages = [m for m in run_checks() if m.id.startswith("drf_oidc_jwks.") and m.is_serious()]
    assert [m.id for m in messages] == ["drf_oidc_jwks.E007"]
    assert messages[0].hint


# -- one table: what passes validation is what gets built; first use refuses what the checks report --------

BASE = {"ISSUER": "https://a.test", "AUDIENCE": "x"}
NUMERIC = [k.name for k in TABLE if k.parse in (v.count,) or "seconds" in getattr(k.parse, "__qualname__", "")]
FLAGS = [k.name for k in TABLE if k.parse is v.flag]


def refused_at_first_use(settings, value) -> str:
    settings.DRF_OIDC_JWKS = value
    with pytest.raises(ImproperlyConfigured) as exc:
        get_settings()
    return str(exc.value)


def test_the_numeric_and_boolean_keys_are_found_in_the_table():
    assert {"LEEWAY", "HTTP_TIMEOUT", "JWKS_MAX_BYTES", "TOKEN_CACHE_SIZE", "USER_LOCAL_CACHE_TTL"} <= set(NUMERIC)
    assert {"SYNC_USERS", "ALLOW_INSECURE_HTTP", "USERINFO", "SYNC_GROUPS", "LINK_BY_VERIFIED_EMAIL"} <= set(FLAGS)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_nan_or_infinite_leeway_is_a_configuration_error_not_a_switched_off_expiry(settings, number):
    message = refused_at_first_use(settings, {**BASE, "LEEWAY": number})
    assert "drf_oidc_jwks.E010: LEEWAY" in message
    assert ids({**BASE, "LEEWAY": number}) == ["E010"]


@pytest.mark.parametrize("key", NUMERIC)
@pytest.mark.parametrize(
    "number", [math.nan, math.inf, 10**400, 1e300, 2**60], ids=["nan", "inf", "10e400", "1e300", "2e60"]
)
def test_every_numeric_key_refuses_non_finite_and_absurd_numbers(settings, key, number):
    assert key in refused_at_first_use(settings, {**BASE, key: number})


@pytest.mark.parametrize("key", ["JWKS_MAX_BYTES", "MAX_TOKEN_BYTES", "MIN_RSA_KEY_SIZE", "TOKEN_CACHE_SIZE"])
def test_a_size_is_a_whole_number_never_truncated(key):
    assert ids({**BASE, key: 1024.5}) == ["E010"]
    assert ids({**BASE, key: 1024}) == []


@pytest.mark.parametrize(
    ("key", "value"), [("ALLOWED_TYPES", 5), ("REQUIRED_SCOPES", 5), ("REQUIRED_CLAIMS", None), ("ALLOWED_TYPES", [1])]
)
def test_list_keys_of_the_wrong_type_are_configuration_errors_not_type_errors(settings, key, value):
    message = refused_at_first_use(settings, {**BASE, key: value})
    assert f"drf_oidc_jwks.E013: DRF_OIDC_JWKS: {key}" in message or f"drf_oidc_jwks.E013: {key}" in message


@pytest.mark.parametrize("key", FLAGS)
@pytest.mark.parametrize("value", ["no", "False", 0, 1, None])
def test_boolean_keys_accept_only_true_or_false(settings, key, value):
    assert key in refused_at_first_use(settings, {**BASE, key: value})


def test_sync_users_no_is_refused_rather_than_read_as_true(settings):
    assert "E013" in refused_at_first_use(settings, {**BASE, "SYNC_USERS": "no"})
    settings.DRF_OIDC_JWKS = {**BASE, "SYNC_USERS": False}
    assert get_settings().sync_users is False


@pytest.mark.parametrize(
    ("key", "value", "check_id"), [("USER_CACHE_ALIAS", "nope", "E024"), ("JWKS_CACHE_ALIAS", None, "E020")]
)
def test_a_cache_alias_that_names_no_cache_is_refused_at_first_use(settings, key, value, check_id):
    assert f"drf_oidc_jwks.{check_id}: {key}" in refused_at_first_use(settings, {**BASE, key: value})


def test_an_unknown_openapi_scheme_is_refused_at_first_use(settings):
    assert "drf_oidc_jwks.E023: OPENAPI_SCHEME" in refused_at_first_use(settings, {**BASE, "OPENAPI_SCHEME": "oauth2"})


def test_the_warnings_of_the_checks_come_from_the_same_walk_and_do_not_refuse(settings):
    raw = {**BASE, "LEEWAY": 301, "JWKS_REFRESH_COOLDOWN": 0}
    assert [(p.id, p.error) for p in validate(raw)] == [("W021", False), ("W022", False)]
    settings.DRF_OIDC_JWKS = raw
    assert (get_settings().leeway, get_settings().jwks_refresh_cooldown) == (301, 0)


def test_a_userinfo_url_over_plain_http_is_refused_as_the_bearer_token_would_travel_in_clear():
    assert ids({**BASE, "USERINFO_URL": "http://idp.example.com/userinfo"}) == ["E005"]
    assert ids({**BASE, "USERINFO_URL": "http://127.0.0.1:9000/userinfo"}) == []


@pytest.mark.parametrize("path", [[1, 2], [["a", 1]], [], {"a": "b"}, 5])
def test_a_claims_path_is_never_coerced_to_strings(path):
    assert ids({**BASE, "CLAIMS": {"roles": path}}) == ["E009"]


def test_a_user_field_source_must_be_a_claim_path():
    assert ids({**BASE, "USER_FIELDS": {"email": 5}}) == ["E012"]


@pytest.mark.parametrize("realm", ['a"b', "a\\b", "line\nbreak", 5])
def test_the_realm_must_be_safe_inside_the_challenge_header(realm):
    assert ids({**BASE, "REALM": realm}) == ["E013"]


def test_a_value_that_passes_builds_to_exactly_what_was_given(settings):
    settings.DRF_OIDC_JWKS = {
        **BASE,
        "LEEWAY": 7,
        "HTTP_TIMEOUT": 0.25,
        "REQUIRED_SCOPES": "docs:read",
        "ALLOWED_TYPES": ["at+jwt"],
        "STAFF_ROLES": ["admin", "ops"],
    }
    s = get_settings()
    assert (s.leeway, type(s.leeway), s.http_timeout) == (7, int, 0.25)
    assert (s.required_scopes, s.issuers[0].allowed_types, s.staff_roles) == (
        ("docs:read",),
        ("at+jwt",),
        frozenset({"admin", "ops"}),
    )


def test_one_helper_merges_top_level_keys_into_issuers_entries():
    raw = {"AUDIENCE": "x", "JWKS_URL": "https://a.test/jwks", "ISSUERS": [{"ISSUER": "https://a.test"}], "LEEWAY": 1}
    assert merge_issuer_keys(raw, raw["ISSUERS"][0]) == {"AUDIENCE": "x", "ISSUER": "https://a.test"}
    assert first_issuer(raw) == {"AUDIENCE": "x", "ISSUER": "https://a.test"}
    assert first_issuer({**BASE, "LEEWAY": 1}) == BASE
    assert first_issuer(["not", "a", "dict"]) == {}


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")


def _render(value):
    if value is REQUIRED:
        return "— (required)"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_render(i) for i in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_render(i)}" for k, i in value.items()) + "}"
    return repr(value)


def test_the_settings_page_documents_every_key_of_the_table_in_its_section_with_its_default():
    text = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text()
    sections = {_slug(m[0]): m[1] for m in re.findall(r"^## (.+)\n((?:(?!^## ).*\n)*)", text, re.MULTILINE)}
    rows = {}
    for key in TABLE:
        page, anchor = key.doc.split("#")
        assert page == "settings.md" and anchor in sections, key.doc
        found = re.findall(rf"^\| `{key.name}` \| (.+?) \|", sections[anchor], re.MULTILINE)
        rows[key.name] = found[0] if len(found) == 1 else found
    assert rows == {
        key.name: (f"`{_render(key.default)}`" if key.default is not REQUIRED else _render(REQUIRED)) for key in TABLE
    }
