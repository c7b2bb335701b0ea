"""drf_oidc_jwks.contrib.devissuer: a local issuer that refuses to run outside development."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path

import jwt
import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from drf_oidc_jwks.contrib.devissuer import issuer

ROOT = Path(__file__).resolve().parent.parent
DEVISSUER = ROOT / "drf_oidc_jwks" / "contrib" / "devissuer"


@pytest.fixture
def dev(settings, tmp_path):
    settings.DEBUG = True
    settings.DEV_ISSUER_KEY_FILE = tmp_path / "keys" / "dev.pem"
    settings.DEV_ISSUER_URL = "http://testserver/dev-issuer"
    settings.DRF_OIDC_JWKS = {"ISSUER": "http://testserver/dev-issuer", "AUDIENCE": "http://testserver/api"}
    return settings


def mint(*args: str) -> str:
    out = StringIO()
    call_command("mint_token", *args, stdout=out)
    return out.getvalue().strip()


def test_it_refuses_to_run_with_debug_off(dev):
    dev.DEBUG = False
    with pytest.raises(ImproperlyConfigured, match=r"DEBUG = False.*INSTALLED_APPS"):
        issuer.refuse_unless_local()


@pytest.mark.parametrize(
    "url",
    ["https://auth.example.com", "http://10.0.0.1:8000/dev", "http://127.0.0.1.nip.io/dev", "ftp://127.0.0.1/x", "x"],
)
def test_it_refuses_an_issuer_url_off_loopback(dev, url):
    dev.DEV_ISSUER_URL = url
    with pytest.raises(ImproperlyConfigured, match=r"loopback host"):
        issuer.refuse_unless_local()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/dev-issuer", "http://localhost:9000", "http://127.0.0.5/x", "http://[::1]:8000/d"]
)
def test_it_accepts_loopback_issuer_urls(dev, url):
    dev.DEV_ISSUER_URL = url
    issuer.refuse_unless_local()
    assert issuer.discovery_document()["issuer"] == url.rstrip("/")


def test_without_its_own_setting_it_is_the_configured_issuer(dev):
    del dev.DEV_ISSUER_URL
    dev.DRF_OIDC_JWKS = {"ISSUERS": [{"ISSUER": "http://127.0.0.1:8000/dev/"}], "AUDIENCE": ["a", "b"]}
    assert issuer.issuer_url() == "http://127.0.0.1:8000/dev"
    assert issuer.default_audience() == "a"


def test_with_no_issuer_anywhere_the_message_names_the_settings(dev):
    del dev.DEV_ISSUER_URL
    dev.DRF_OIDC_JWKS = {"AUDIENCE": None}
    with pytest.raises(ImproperlyConfigured, match=r"DEV_ISSUER_URL or DRF_OIDC_JWKS\['ISSUER'\]"):
        issuer.issuer_url()


def run_check(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60
    )


def test_a_project_with_debug_off_does_not_start(tmp_path):
    result = run_check(DEBUG="false", DEV_ISSUER_ENABLED="true", VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "refuses to run with DEBUG = False" in result.stderr


def test_a_project_pointing_it_at_a_public_url_does_not_start(tmp_path):
    result = run_check(DEV_ISSUER_URL="https://auth.example.com", VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "refuses the issuer URL 'https://auth.example.com'" in result.stderr


def test_the_key_is_created_once_private_to_its_owner_and_reused(dev):
    path = dev.DEV_ISSUER_KEY_FILE
    first = issuer.jwks()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert issuer.jwks() == first
    (key,) = first["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_a_key_file_that_holds_no_rsa_key_is_named_in_the_error(dev):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    dev.DEV_ISSUER_KEY_FILE.parent.mkdir(parents=True)
    dev.DEV_ISSUER_KEY_FILE.write_bytes(pem)
    with pytest.raises(ImproperlyConfigured, match="does not hold an RSA private key"):
        issuer.jwks()


@pytest.mark.django_db
def test_mint_token_puts_any_claim_in_a_token_the_api_accepts_through_discovery(dev, live_server):
    dev.DEV_ISSUER_URL = live_server.url + "/dev-issuer"
    dev.DRF_OIDC_JWKS = {"ISSUER": dev.DEV_ISSUER_URL, "AUDIENCE": live_server.url + "/api"}
    token = mint("--sub", "carol", "--roles", "admin,auditor", "--claim", 'plan={"tier": 2}', "--claim", "team=red")
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["plan"] == {"tier": 2} and payload["team"] == "red"
    assert (payload["iss"], payload["aud"]) == (dev.DEV_ISSUER_URL, live_server.url + "/api")
    assert jwt.get_unverified_header(token)["kid"] == issuer.jwks()["keys"][0]["kid"]
    document = requests.get(dev.DEV_ISSUER_URL + "/.well-known/openid-configuration", timeout=10).json()
    assert document == issuer.discovery_document()
    response = requests.get(live_server.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert (response.json()["sub"], response.json()["roles"]) == ("carol", ["admin", "auditor"])


def test_mint_token_lets_a_claim_replace_a_default(dev):
    token = mint("--sub", "svc", "--claim", "aud=https://other.test", "--claim", "email=null", "--expires-in", "60")
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["aud"] == "https://other.test" and "email" not in payload
    assert payload["exp"] - payload["iat"] == 60


def test_mint_token_refuses_a_claim_without_a_name(dev):
    with pytest.raises(CommandError, match="name=value"):
        mint("--claim", "novalue")


def test_the_devissuer_imports_no_private_name_of_the_package():
    for path in DEVISSUER.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and ((node.module or "").startswith("drf_oidc_jwks") or node.level):
                module = node.module or ""
                assert not any(part.startswith("_") for part in module.split(".")), (path, module)
                assert not [a.name for a in node.names if a.name.startswith("_")], (path, module)
            if isinstance(node, ast.ImportFrom) and node.level:
                # Relative imports stay inside the devissuer package.
                depth = len(path.relative_to(DEVISSUER).parts) - 1
                assert node.level <= depth + 1, (path, node.level)
