"""The DRF_OIDC_JWKS setting: defaults, validation with hints, and re-reading on setting_changed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from drf_oidc_jwks.conf import ALL_KEYS, get_settings, validate


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
