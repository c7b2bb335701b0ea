"""The interop docs are tested: docs/providers.md's Better Auth config is what the tests run; the settings work."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from .conftest import API_AUDIENCE, INTEROP, ROOT

pytestmark = [pytest.mark.interop, pytest.mark.django_db]

DOC = ROOT / "docs" / "interop.md"
PROVIDERS = ROOT / "docs" / "providers.md"  # holds the tested Better Auth section


def section(title: str) -> str:
    text = (PROVIDERS if title == "Better Auth" else DOC).read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def documented_settings(title: str, replacements: dict[str, str]) -> dict[str, Any]:
    """Execute the section's first Python block with the example URLs replaced; return its DRF_OIDC_JWKS."""
    source = code_blocks(section(title), "python")[0]
    for example, real in replacements.items():
        source = source.replace(f'"{example}', f'"{real}')
    namespace: dict[str, Any] = {}
    exec(compile(source, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    return dict(namespace["DRF_OIDC_JWKS"])


def test_the_documented_better_auth_configuration_is_the_auth_ts_the_tests_run():
    (documented,) = code_blocks(section("Better Auth"), "ts")

    assert documented == (INTEROP / "auth.ts").read_text()


def test_the_documented_better_auth_configuration_type_checks_with_tsc_strict():
    node = shutil.which("node")
    assert node is not None and (INTEROP / "node_modules" / "typescript").is_dir(), "run scripts/install-interop.sh"

    result = subprocess.run(
        [node, "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_documented_better_auth_settings_verify_a_better_auth_jwt(settings, better_auth, bearer):
    settings.DRF_OIDC_JWKS = documented_settings(
        "Better Auth", {"https://auth.example.com": better_auth.url, "https://api.example.com": API_AUDIENCE}
    )
    user = better_auth.sign_up("Ada", admin=True)
    org = user.create_organization("Acme")

    response = bearer(user.jwt(), "/api/tenant/data")
    admin = bearer(user.jwt(), "/api/admin/users")

    assert response.status_code == 200, response.content
    assert response.json() == {"tenant_id": org, "org_role": "owner", "organizations": [org]}
    assert admin.status_code == 200


def test_the_documented_oidc_provider_settings_verify_a_client_credentials_token(settings, oidc_provider, bearer):
    settings.DRF_OIDC_JWKS = documented_settings(
        "oidc-provider (client credentials, discovery only)",
        {"https://op.example.com": oidc_provider.issuer, "https://api.example.com": API_AUDIENCE},
    )
    assert "JWKS_URL" not in settings.DRF_OIDC_JWKS

    response = bearer(oidc_provider.access_token(scope="reports:read"), "/api/reports")

    assert response.status_code == 200, response.content
