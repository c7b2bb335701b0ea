"""System checks: every id triggered by a bad setting, silent on its closest good one, documented once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import Error, Warning, run_checks
from django.core.exceptions import ImproperlyConfigured

from drf_oidc_jwks.authentication import JWKSAuthentication
from drf_oidc_jwks.checks import CHECK_IDS
from drf_oidc_jwks.conf import get_settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "checks.md"

GOOD = {"ISSUER": "https://auth.example.com", "AUDIENCE": "https://api.example.com"}
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "checks"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
APPS_WITHOUT = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework"]
DELETE = object()


class ProjectAuthentication(JWKSAuthentication):
    """A project's own subclass, named in DEFAULT_AUTHENTICATION_CLASSES by its dotted path."""


def oidc(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = dict(GOOD)
    for key, new in changes.items():
        if new is DELETE:
            value.pop(key, None)
        else:
            value[key] = new
    return value


def filebased(tmp: str = "/tmp") -> dict[str, Any]:
    return {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": tmp}}


INTRO = {"CLIENT_ID": "api", "CLIENT_SECRET": "s3cret"}
OTHER = "https://other.example.com"

# (id, Django settings that trigger it, the closest Django settings that must not)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("E001", {"DRF_OIDC_JWKS": DELETE}, {"DRF_OIDC_JWKS": GOOD}),
    ("E001", {"DRF_OIDC_JWKS": ["https://auth.example.com"]}, {"DRF_OIDC_JWKS": GOOD}),
    ("E002", {"DRF_OIDC_JWKS": oidc(AUDIENCES="x")}, {"DRF_OIDC_JWKS": oidc(AUDIENCE="x")}),
    ("E003", {"DRF_OIDC_JWKS": {"ISSUERS": [], "AUDIENCE": "x"}}, {"DRF_OIDC_JWKS": {"ISSUERS": [GOOD]}}),
    (
        "E003",
        {"DRF_OIDC_JWKS": {"ISSUERS": [GOOD, GOOD]}},
        {"DRF_OIDC_JWKS": {"ISSUERS": [GOOD, oidc(ISSUER="https://other.example.com")]}},
    ),
    ("E004", {"DRF_OIDC_JWKS": oidc(ISSUER=DELETE)}, {"DRF_OIDC_JWKS": GOOD}),
    ("E004", {"DRF_OIDC_JWKS": oidc(ISSUER="")}, {"DRF_OIDC_JWKS": GOOD}),
    (
        "E005",
        {"DRF_OIDC_JWKS": oidc(ISSUER="http://auth.example.com")},
        {"DRF_OIDC_JWKS": oidc(ISSUER="http://127.0.0.1:9000")},
    ),
    (
        "E005",
        {"DRF_OIDC_JWKS": oidc(JWKS_URL="http://auth.example.com/jwks")},
        {"DRF_OIDC_JWKS": oidc(JWKS_URL="http://auth.example.com/jwks", ALLOW_INSECURE_HTTP=True)},
    ),
    ("E006", {"DRF_OIDC_JWKS": oidc(AUDIENCE=DELETE)}, {"DRF_OIDC_JWKS": oidc(AUDIENCE=["a", "b"])}),
    ("E006", {"DRF_OIDC_JWKS": oidc(AUDIENCE=42)}, {"DRF_OIDC_JWKS": oidc(AUDIENCE="42")}),
    ("E007", {"DRF_OIDC_JWKS": oidc(ALGORITHMS=["HS256"])}, {"DRF_OIDC_JWKS": oidc(ALGORITHMS=["RS256", "EdDSA"])}),
    ("E007", {"DRF_OIDC_JWKS": oidc(ALGORITHMS=["none"])}, {"DRF_OIDC_JWKS": oidc(ALGORITHMS=["ES256"])}),
    ("E007", {"DRF_OIDC_JWKS": oidc(ALGORITHMS=[])}, {"DRF_OIDC_JWKS": oidc(ALGORITHMS=["PS256"])}),
    ("E008", {"DRF_OIDC_JWKS": oidc(PROVIDER="auth-0")}, {"DRF_OIDC_JWKS": oidc(PROVIDER="auth0")}),
    (
        "E009",
        {"DRF_OIDC_JWKS": oidc(CLAIMS={"role": "realm_access.roles"})},
        {"DRF_OIDC_JWKS": oidc(CLAIMS={"roles": "realm_access.roles"})},
    ),
    ("E009", {"DRF_OIDC_JWKS": oidc(CLAIMS=["roles"])}, {"DRF_OIDC_JWKS": oidc(CLAIMS={})}),
    ("E010", {"DRF_OIDC_JWKS": oidc(LEEWAY=-1)}, {"DRF_OIDC_JWKS": oidc(LEEWAY=0)}),
    ("E010", {"DRF_OIDC_JWKS": oidc(HTTP_TIMEOUT=0)}, {"DRF_OIDC_JWKS": oidc(HTTP_TIMEOUT=0.5)}),
    (
        "E011",
        {"DRF_OIDC_JWKS": oidc(RESOURCE="http://api.example.com")},
        {"DRF_OIDC_JWKS": oidc(RESOURCE="https://api.example.com")},
    ),
    ("E012", {"DRF_OIDC_JWKS": oidc(STAFF_ROLES=[1])}, {"DRF_OIDC_JWKS": oidc(STAFF_ROLES=["admin"])}),
    ("E013", {"DRF_OIDC_JWKS": oidc(SYNC_USERS="no")}, {"DRF_OIDC_JWKS": oidc(SYNC_USERS=False)}),
    ("E013", {"DRF_OIDC_JWKS": oidc(REQUIRED_SCOPES=5)}, {"DRF_OIDC_JWKS": oidc(REQUIRED_SCOPES=["docs:read"])}),
    (
        "E020",
        {"DRF_OIDC_JWKS": oidc(JWKS_CACHE_ALIAS="jwks")},
        {"DRF_OIDC_JWKS": oidc(JWKS_CACHE_ALIAS="jwks"), "CACHES": {**LOCMEM, "jwks": LOCMEM["default"]}},
    ),
    ("E021", {"CACHES": DUMMY}, {"CACHES": LOCMEM}),
    ("E022", {"INSTALLED_APPS": APPS_WITHOUT}, {"INSTALLED_APPS": [*APPS_WITHOUT, "drf_oidc_jwks"]}),
    (
        "E022",
        {
            "INSTALLED_APPS": APPS_WITHOUT,
            "REST_FRAMEWORK": {"DEFAULT_AUTHENTICATION_CLASSES": ["tests.test_checks.ProjectAuthentication"]},
        },
        {
            "INSTALLED_APPS": APPS_WITHOUT,
            "REST_FRAMEWORK": {
                "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"]
            },
        },
    ),
    (
        "E016",
        {"DRF_OIDC_JWKS": oidc(SCOPE_HIERARCHY={"a": ["b"], "b": ["a"]})},
        {"DRF_OIDC_JWKS": oidc(SCOPE_HIERARCHY={"a": ["b"]})},
    ),
    (
        "E016",
        {"DRF_OIDC_JWKS": oidc(SCOPES_SUPPORTED=["read", "offline_access"])},
        {"DRF_OIDC_JWKS": oidc(SCOPES_SUPPORTED=["read"])},
    ),
    (
        "E015",
        {"DRF_OIDC_JWKS": oidc(ISSUER="https://login.example.com/{tenant}/v2.0")},
        {"DRF_OIDC_JWKS": oidc(ISSUER="https://login.example.com/{tenant}/v2.0", TENANTS=["contoso"])},
    ),
    (
        "E015",
        {"DRF_OIDC_JWKS": oidc(ISSUER="https://login.example.com/{tenant}/v2.0", TENANTS="*")},
        {"DRF_OIDC_JWKS": oidc(ISSUER="https://login.example.com/{tenant}/v2.0", TENANTS=["contoso"])},
    ),
    ("E023", {"DRF_OIDC_JWKS": oidc(OPENAPI_SCHEME="oidc")}, {"DRF_OIDC_JWKS": oidc(OPENAPI_SCHEME="bearer")}),
    (
        "E024",
        {"DRF_OIDC_JWKS": oidc(USER_CACHE_ALIAS="nope")},
        {"DRF_OIDC_JWKS": oidc(USER_CACHE_ALIAS="nope"), "CACHES": {**LOCMEM, "nope": LOCMEM["default"]}},
    ),
    (
        "E025",
        {"DRF_OIDC_JWKS": {"ISSUERS": [oidc(INTROSPECTION=INTRO), oidc(ISSUER=OTHER, INTROSPECTION=INTRO)]}},
        {
            "DRF_OIDC_JWKS": {
                "ISSUERS": [oidc(INTROSPECTION=INTRO), oidc(ISSUER=OTHER, INTROSPECTION=INTRO)],
                "OPAQUE_TOKEN_ISSUER": OTHER,
            }
        },
    ),
    (
        "E025",
        {"DRF_OIDC_JWKS": oidc(OPAQUE_TOKEN_ISSUER=OTHER, INTROSPECTION=INTRO)},
        {"DRF_OIDC_JWKS": oidc(OPAQUE_TOKEN_ISSUER=GOOD["ISSUER"], INTROSPECTION=INTRO)},
    ),
    ("W001", {"DRF_OIDC_JWKS": oidc(AUDIENCE=None)}, {"DRF_OIDC_JWKS": GOOD}),
    (
        "W002",
        {
            "DRF_OIDC_JWKS": oidc(
                ISSUER="https://login.example.com/{tenant}/v2.0",
                TENANTS="*",
                JWKS_URL="https://login.example.com/common/keys",
            )
        },
        {
            "DRF_OIDC_JWKS": oidc(
                ISSUER="https://login.example.com/{tenant}/v2.0",
                TENANTS=["a"],
                JWKS_URL="https://login.example.com/common/keys",
            )
        },
    ),
    ("W020", {"CACHES": LOCMEM, "DEBUG": False}, {"CACHES": LOCMEM, "DEBUG": True}),
    ("W020", {"CACHES": LOCMEM, "DEBUG": False}, {"CACHES": "filebased", "DEBUG": False}),
    ("W021", {"DRF_OIDC_JWKS": oidc(LEEWAY=301)}, {"DRF_OIDC_JWKS": oidc(LEEWAY=300)}),
    ("W022", {"DRF_OIDC_JWKS": oidc(JWKS_REFRESH_COOLDOWN=0)}, {"DRF_OIDC_JWKS": oidc(JWKS_REFRESH_COOLDOWN=1)}),
    # DPoP (docs/dpop.md)
    ("E014", {"DRF_OIDC_JWKS": oidc(DPOP="on")}, {"DRF_OIDC_JWKS": oidc(DPOP="required")}),
    ("E014", {"DRF_OIDC_JWKS": oidc(DPOP_ALGORITHMS=["HS256"])}, {"DRF_OIDC_JWKS": oidc(DPOP_ALGORITHMS=["ES256"])}),
    ("E014", {"DRF_OIDC_JWKS": oidc(DPOP_ALGORITHMS=["none"])}, {"DRF_OIDC_JWKS": oidc(DPOP_ALGORITHMS=["EdDSA"])}),
    ("E014", {"DRF_OIDC_JWKS": oidc(DPOP_ALGORITHMS=[])}, {"DRF_OIDC_JWKS": oidc(DPOP_ALGORITHMS=["PS256"])}),
    ("E010", {"DRF_OIDC_JWKS": oidc(DPOP_PROOF_MAX_AGE=0)}, {"DRF_OIDC_JWKS": oidc(DPOP_PROOF_MAX_AGE=60)}),
    ("E013", {"DRF_OIDC_JWKS": oidc(DPOP_NONCE="yes")}, {"DRF_OIDC_JWKS": oidc(DPOP="off", DPOP_NONCE=True)}),
    (
        "E026",
        {"DRF_OIDC_JWKS": oidc(DPOP_NONCE=True), "MIDDLEWARE": ["django.middleware.common.CommonMiddleware"]},
        {"DRF_OIDC_JWKS": oidc(DPOP_NONCE=True), "MIDDLEWARE": ["drf_oidc_jwks.middleware.DPoPNonceMiddleware"]},
    ),
    # ISSUER_RESOLVER (docs/multi-tenant.md)
    (
        "E027",
        {"DRF_OIDC_JWKS": oidc(ISSUER_RESOLVER="testproject.api.tenants.no_such_function")},
        {"DRF_OIDC_JWKS": oidc(ISSUER_RESOLVER="testproject.api.tenants.resolve")},
    ),
]


def apply(settings: Any, tmp_path: Path, changes: dict[str, Any]) -> None:
    base: dict[str, Any] = {"DRF_OIDC_JWKS": GOOD, "DEBUG": True, "CACHES": LOCMEM}
    for name, value in {**base, **changes}.items():
        if value is DELETE:
            delattr(settings, name)
        elif value == "filebased":
            setattr(settings, name, filebased(str(tmp_path)))
        else:
            setattr(settings, name, value)


def our_messages() -> list[Any]:
    return [m for m in run_checks(tags=["drf_oidc_jwks"]) if m.id.startswith("drf_oidc_jwks.")]


def case_id(case: tuple[str, dict[str, Any], dict[str, Any]]) -> str:
    return case[0] + "-" + "-".join(f"{k}" for k in case[1])


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_each_check_fires_on_its_bad_setting_with_a_hint(settings, tmp_path, case):
    check_id, bad, _good = case
    apply(settings, tmp_path, bad)
    found = [m for m in our_messages() if m.id == f"drf_oidc_jwks.{check_id}"]
    assert found, [m.id for m in our_messages()]
    for message in found:
        assert isinstance(message, Error if check_id.startswith("E") else Warning)
        assert message.hint and len(message.hint) > 10


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_each_check_is_silent_on_the_closest_good_setting(settings, tmp_path, case):
    check_id, _bad, good = case
    apply(settings, tmp_path, good)
    assert f"drf_oidc_jwks.{check_id}" not in [m.id for m in our_messages()]


def test_a_good_production_configuration_raises_no_check_at_all(settings, tmp_path):
    apply(settings, tmp_path, {"DEBUG": False, "CACHES": "filebased"})
    assert our_messages() == []


def test_a_good_development_configuration_raises_no_check_at_all(settings, tmp_path):
    apply(settings, tmp_path, {"DEBUG": True})
    assert our_messages() == []


def test_every_check_id_has_a_triggering_case():
    assert sorted({c[0] for c in CASES}) == sorted(CHECK_IDS)


def test_check_ids_are_stable():
    # Changing this list breaks users' SILENCED_SYSTEM_CHECKS: add ids, never renumber.
    assert list(CHECK_IDS) == [
        "E001", "E002", "E003", "E004", "E005", "E006", "E007", "E008", "E009", "E010", "E011", "E012", "E013",
        "E014", "E015", "E016",
        "E020", "E021", "E022", "E023", "E024", "E025", "E026", "E027",
        "W001", "W002", "W020", "W021", "W022",
    ]  # fmt: skip
    assert all(re.fullmatch(r"[EW]0\d\d", i) for i in CHECK_IDS)


def test_every_check_id_is_documented_once_in_the_checks_page():
    rows = re.findall(r"^\| `drf_oidc_jwks\.([EW]\d{3})` \|", DOCS.read_text(), re.MULTILINE)
    assert sorted(rows) == sorted(CHECK_IDS)
    assert len(rows) == len(set(rows))


def test_unknown_key_hint_names_the_closest_valid_key(settings, tmp_path):
    apply(settings, tmp_path, {"DRF_OIDC_JWKS": oidc(AUDIENCES="x")})
    (message,) = [m for m in our_messages() if m.id == "drf_oidc_jwks.E002"]
    assert "Did you mean 'AUDIENCE'?" in message.hint


def test_missing_audience_hint_says_how_to_set_it_or_opt_out(settings, tmp_path):
    apply(settings, tmp_path, {"DRF_OIDC_JWKS": oidc(AUDIENCE=DELETE)})
    (message,) = [m for m in our_messages() if m.id == "drf_oidc_jwks.E006"]
    assert '"AUDIENCE"' in message.hint and "None" in message.hint


def test_missing_cache_alias_names_the_existing_entries(settings, tmp_path):
    apply(settings, tmp_path, {"DRF_OIDC_JWKS": oidc(JWKS_CACHE_ALIAS="jwks")})
    (message,) = [m for m in our_messages() if m.id == "drf_oidc_jwks.E020"]
    assert "'jwks'" in message.msg and "'default'" in message.msg


def test_the_locmem_warning_can_be_silenced_like_any_check(settings, tmp_path):
    apply(settings, tmp_path, {"DEBUG": False})
    assert [m.id for m in our_messages()] == ["drf_oidc_jwks.W020"]
    settings.SILENCED_SYSTEM_CHECKS = ["drf_oidc_jwks.W020"]
    assert [m.id for m in our_messages() if not m.is_silenced()] == []


def test_without_the_app_first_use_fails_with_the_same_id(settings, tmp_path):
    apply(settings, tmp_path, {"INSTALLED_APPS": APPS_WITHOUT})
    with pytest.raises(ImproperlyConfigured, match=r"drf_oidc_jwks\.E022: .*INSTALLED_APPS"):
        get_settings()


def test_first_use_works_again_once_the_app_is_back(settings, tmp_path):
    apply(settings, tmp_path, {"INSTALLED_APPS": APPS_WITHOUT})
    with pytest.raises(ImproperlyConfigured):
        get_settings()
    settings.INSTALLED_APPS = [*APPS_WITHOUT, "drf_oidc_jwks"]
    assert get_settings().issuers[0].issuer == GOOD["ISSUER"]


# -- a project that forgot the app: E022 before the first request ------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
PROJECT_WITHOUT_APP = """
SECRET_KEY = "not-secret"
DEBUG = True
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", *EXTRA_APPS]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "noapp_urls"
REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["drf_oidc_jwks.authentication.JWKSAuthentication"]}
DRF_OIDC_JWKS = {"ISSUER": "https://auth.example.com", "AUDIENCE": "https://api.example.com"}
"""
URLS = """
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class Me(APIView):
    def get(self, request):
        return Response({"user": str(request.user)})


urlpatterns = [path("me", Me.as_view())]
"""
# An app whose ready() imports the authentication class while apps are still loading.
EARLY_APP = """
from django.apps import AppConfig


class EarlyConfig(AppConfig):
    name = "noapp_early"

    def ready(self):
        import drf_oidc_jwks.authentication  # noqa: F401
"""


def manage_check(tmp_path: Path, extra_apps: list[str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "noapp_settings.py").write_text(f"EXTRA_APPS = {extra_apps!r}\n" + PROJECT_WITHOUT_APP)
    (tmp_path / "noapp_urls.py").write_text(URLS)
    (tmp_path / "noapp_early").mkdir()
    (tmp_path / "noapp_early" / "__init__.py").write_text("")
    (tmp_path / "noapp_early" / "apps.py").write_text(EARLY_APP)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "DJANGO_SETTINGS_MODULE": "noapp_settings"}
    command = [sys.executable, "-m", "django", "check"]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_manage_py_check_without_the_app_fails_with_e022_and_the_fix(tmp_path):
    result = manage_check(tmp_path, [])
    assert result.returncode != 0
    assert "drf_oidc_jwks.E022" in result.stderr
    assert 'Add "drf_oidc_jwks" to INSTALLED_APPS' in result.stderr


def test_without_the_app_an_early_import_registers_e022_for_manage_py_check(tmp_path):
    result = manage_check(tmp_path, ["noapp_early"])
    assert result.returncode != 0
    assert "SystemCheckError" in result.stderr
    assert "(drf_oidc_jwks.E022)" in result.stderr
    assert 'HINT: Add "drf_oidc_jwks" to INSTALLED_APPS' in result.stderr


def test_with_the_app_the_same_project_passes_manage_py_check(tmp_path):
    result = manage_check(tmp_path, ["drf_oidc_jwks"])
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_checks_are_registered_with_the_security_tag(settings, tmp_path):
    apply(settings, tmp_path, {"DRF_OIDC_JWKS": oidc(ALGORITHMS=["HS256"])})
    assert "drf_oidc_jwks.E007" in [m.id for m in run_checks(tags=["security"])]
    apply(settings, tmp_path, {"CACHES": DUMMY})
    assert "drf_oidc_jwks.E021" in [m.id for m in run_checks(tags=["caches"])]
    assert "drf_oidc_jwks.E021" not in [m.id for m in run_checks(tags=["security"])]


@pytest.mark.parametrize(
    ("changes", "check_id"),
    [
        ({"OPENAPI_SCHEME": "oauth2"}, "E023"),
        ({"SYNC_USERS": "no"}, "E013"),
        ({"USER_CACHE_ALIAS": "nope"}, "E024"),
        ({"JWKS_CACHE_ALIAS": None}, "E020"),
    ],
)
def test_first_use_refuses_what_the_system_checks_report(settings, tmp_path, changes, check_id):
    apply(settings, tmp_path, {"DRF_OIDC_JWKS": oidc(**changes)})
    assert [m.id for m in our_messages() if m.is_serious()] == [f"drf_oidc_jwks.{check_id}"]
    with pytest.raises(ImproperlyConfigured, match=rf"drf_oidc_jwks\.{check_id}: "):
        get_settings()


@pytest.mark.parametrize(("caches", "check_id"), [(DUMMY, "E021"), (LOCMEM, "W020")])
def test_a_cache_that_forgets_or_is_per_process_says_what_it_means_for_dpop_replays(
    settings, tmp_path, caches, check_id
):
    apply(settings, tmp_path, {"CACHES": caches, "DEBUG": False})
    (message,) = [m for m in our_messages() if m.id == f"drf_oidc_jwks.{check_id}"]
    assert "DPoP" in message.hint and ("replayed" in message.hint or "accepted again" in message.hint)
    apply(settings, tmp_path, {"CACHES": caches, "DEBUG": False, "DRF_OIDC_JWKS": oidc(DPOP="off")})
    (message,) = [m for m in our_messages() if m.id == f"drf_oidc_jwks.{check_id}"]
    assert "DPoP" not in message.hint
