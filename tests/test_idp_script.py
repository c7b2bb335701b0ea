"""scripts/idp.sh: start oidc-provider on loopback by hand, get a token, stop it (docs/interop.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.interop, pytest.mark.django_db]


def idp(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OP_CLIENT_")}
    env["IDP_STATE_DIR"] = str(state)
    return subprocess.run(
        ["bash", "scripts/idp.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def field(output: str, name: str) -> str:
    match = re.search(rf"^  {name}: +(.+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1).strip()


def test_start_prints_what_a_client_needs_token_gets_one_the_api_accepts_and_stop_stops(tmp_path, settings):
    started = idp(tmp_path, "start", "oidc-provider", "--port", "0", "--audience", "https://api.idp-script.test")
    try:
        assert started.returncode == 0, started.stderr
        out = started.stdout
        issuer = field(out, "issuer")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", issuer)
        client_id, secret = field(out, "client id"), field(out, "client secret")
        assert client_id == "reporting-service" and re.fullmatch(r"[0-9a-f]{48}", secret)
        # The printed curl line works as printed.
        (curl,) = [line.strip() for line in out.splitlines() if line.strip().startswith("curl ")]
        assert f"'{client_id}:{secret}'" in curl
        body = json.loads(subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30).stdout)
        assert body["token_type"] == "Bearer"

        token = idp(tmp_path, "token", "--scope", "reports:read")
        assert token.returncode == 0, token.stderr
        access_token = token.stdout.strip()
        # The printed settings are the ones the API needs.
        line = field(out, "settings")
        settings.DRF_OIDC_JWKS = json.loads(line.removeprefix("DRF_OIDC_JWKS = "))
        response = APIClient().get("/api/reports", HTTP_AUTHORIZATION=f"Bearer {access_token}")
        assert response.status_code == 200, response.content
        again = idp(tmp_path, "start")
        assert again.returncode != 0 and "already running" in again.stderr
    finally:
        stopped = idp(tmp_path, "stop")
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopped (pid ")
    with pytest.raises(requests.ConnectionError):
        requests.get(issuer + "/.well-known/openid-configuration", timeout=5)
    after = idp(tmp_path, "token")
    assert after.returncode != 0 and "no identity provider is running" in after.stderr
