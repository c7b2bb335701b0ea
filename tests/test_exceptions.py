"""Error classes and their registry: one class per code, and every documented code table lists exactly them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from drf_oidc_jwks import exceptions
from drf_oidc_jwks.exceptions import REGISTRY, KeySourceError, TokenError, error_for
from testproject.api.models import Task

ROOT = Path(__file__).resolve().parent.parent
#: Codes DRF itself answers with that the docs explain beside ours (a refused composition, no credentials).
DRF_CODES = {"permission_denied"}


def _headings(page: str) -> set[str]:
    text = (ROOT / "docs" / page).read_text()
    return set(re.findall(r"^### `([a-z_]+)`", text, flags=re.MULTILINE))


def test_every_code_has_exactly_one_class_with_its_status() -> None:
    classes = [spec.cls for spec in REGISTRY.values()]
    assert len(classes) == len(set(classes))
    for code, spec in REGISTRY.items():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code), code
        assert spec.status in (401, 403, 503), code
        assert spec.description.endswith("."), code


def test_token_errors_are_401s_raised_by_their_class_with_a_reason_that_defaults_to_the_description() -> None:
    for code in exceptions.CODES:
        if code == KeySourceError.code:
            continue
        cls = error_for(code)
        assert issubclass(cls, TokenError) and cls.status == 401
        plain, precise = cls(), cls("why", description="A precise description.")
        assert (plain.code, plain.reason, plain.description) == (code, cls.description, cls.description)
        assert (precise.reason, precise.description, cls.description) == (
            "why",
            "A precise description.",
            cls.description,
        )


def test_error_for_refuses_a_code_that_is_not_a_refused_token() -> None:
    with pytest.raises(KeyError):
        error_for("tenant_required")
    with pytest.raises(KeyError):
        error_for("no_such_code")


def test_the_troubleshooting_page_has_a_section_for_exactly_the_registered_codes() -> None:
    assert _headings("troubleshooting.md") == set(REGISTRY) | DRF_CODES


def test_oidc_decode_explains_exactly_the_registered_codes_with_their_status() -> None:
    from drf_oidc_jwks.management.commands.oidc_decode import CAUSES

    assert set(CAUSES) == set(REGISTRY)
    for code, (status, cause) in CAUSES.items():
        assert status == REGISTRY[code].status and cause, code


def test_the_authorization_pages_code_tables_name_only_registered_codes() -> None:
    text = (ROOT / "docs" / "authorization.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", text, flags=re.MULTILINE))
    assert rows, "the code table of docs/authorization.md was not found"
    for code, status in rows:
        if code == "not_found":
            continue  # Django's Http404 for another tenant's object, formatted by our handler
        assert int(status) == REGISTRY[code].status, code


@pytest.mark.django_db
def test_a_cross_tenant_object_id_answers_404_with_the_not_found_code_in_the_body(
    oidc_settings: Any, issuer: Any, api: Any
) -> None:
    from testproject.api.models import Project

    foreign = Task.objects.create(
        project=Project.objects.create(tenant_id="globex", name="p"), created_by="y", title="t"
    )
    token = issuer.token(sub="ann", tenant_id="acme", org_role="member")
    response = api.get(f"/api/tenant/tasks/{foreign.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_settings_pages_code_table_lists_exactly_the_codes_a_refused_token_can_carry() -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    table = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", table, flags=re.MULTILINE))
    # The authentication class's own answers, and REQUIRED_SCOPES' 403, which it raises too.
    assert set(rows) == set(exceptions.CODES) | {"insufficient_scope"}
    for code, status in rows.items():
        assert int(status) == REGISTRY[code].status, code
