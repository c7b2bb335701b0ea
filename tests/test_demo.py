"""The demo project: public health, /api/me, the development issuer, mint_token, and the README demo command."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def test_health_is_public(api):
    response = api.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture
def dev_issuer(settings, live_server, tmp_path):
    """The development issuer served by the live test server itself."""
    settings.DEV_ISSUER_KEY_FILE = tmp_path / "dev_key.pem"
    settings.DEV_ISSUER_URL = live_server.url + "/dev-issuer"
    settings.API_AUDIENCE = live_server.url + "/api"
    settings.DRF_OIDC_JWKS = {
        "ISSUER": settings.DEV_ISSUER_URL,
        "AUDIENCE": settings.API_AUDIENCE,
        "PROVIDER": "better-auth",
    }
    return live_server


def test_minted_token_is_accepted_over_real_http_through_discovery(dev_issuer):
    out = StringIO()
    call_command("mint_token", "--sub", "alice", "--role", "admin", "--tenant", "acme", stdout=out)
    token = out.getvalue().strip()
    response = requests.get(f"{dev_issuer.url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["sub"], body["role"], body["tenant_id"], body["email"]) == (
        "alice",
        "admin",
        "acme",
        "alice@example.com",
    )


def test_token_minted_for_another_audience_is_refused(dev_issuer):
    out = StringIO()
    call_command("mint_token", "--sub", "alice", "--claim", 'aud="https://other.test"', stdout=out)
    response = requests.get(
        f"{dev_issuer.url}/api/me", headers={"Authorization": f"Bearer {out.getvalue().strip()}"}, timeout=10
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_audience"


def test_dev_issuer_urls_serve_a_public_key_only(dev_issuer):
    keys = requests.get(f"{dev_issuer.url}/dev-issuer/jwks.json", timeout=10).json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_readme_demo_command_starts_a_server_and_prints_a_working_curl_line(tmp_path):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "VAR_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.Popen(
        ["bash", "scripts/demo.sh"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        curl = None
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            lines.append(line)
            if line.strip().startswith("curl "):
                curl = line.strip()
                break
        assert curl, "".join(lines)
        match = re.search(r"(http://127\.0\.0\.1:\d+/api/me) -H \"Authorization: Bearer ([\w.-]+)\"", curl)
        assert match, curl
        url, token = match.groups()
        response = None
        while time.monotonic() < deadline:
            try:
                response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert response is not None and response.status_code == 200, response and response.text
        assert response.json()["sub"] == "alice"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
