"""Every module imports before Django is configured: no settings or models touched at import time."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import drf_oidc_jwks

ROOT = Path(__file__).resolve().parent.parent
# Modules that define Django models or admin registrations need the app registry by nature; drf-spectacular
# (imported by drf_oidc_jwks.openapi, from the app's ready()) reads DRF's settings at import time.
NEEDS_APPS = {"drf_oidc_jwks.models", "drf_oidc_jwks.admin", "drf_oidc_jwks.openapi"}


def test_every_module_imports_without_django_configured():
    names = [
        m.name
        for m in pkgutil.walk_packages(drf_oidc_jwks.__path__, "drf_oidc_jwks.")
        if m.name not in NEEDS_APPS and ".migrations" not in m.name
    ]
    assert "drf_oidc_jwks.authentication" in names
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\nprint('ok')"
    env = {"PATH": "", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
