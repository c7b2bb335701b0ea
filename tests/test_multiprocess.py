"""Two real Python processes sharing one cache (FileBasedCache in a temp dir) fetch the JWKS once in total."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import django
    from django.conf import settings

    cache_dir, issuer, jwks_url, tokens = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    settings.configure(
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "drf_oidc_jwks"],
        CACHES={"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": cache_dir}},
        DATABASES={},
        DRF_OIDC_JWKS={"ISSUER": issuer, "JWKS_URL": jwks_url, "AUDIENCE": "https://api.test", "SYNC_USERS": False},
    )
    django.setup()
    from drf_oidc_jwks.tokens import verify_token
    ok = sum(1 for t in tokens if verify_token(t).sub)
    print(json.dumps({"ok": ok}))
    """
)


def run_worker(cache_dir: Path, issuer, server, tokens) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(cache_dir), issuer.issuer, server.url("/jwks.json"), json.dumps(tokens)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_sharing_a_cache_fetch_once(tmp_path, issuer, server):
    server.delay = 0.5  # the first process holds the fetch lock while the second arrives
    tokens = [issuer.token(sub=f"user-{i}") for i in range(20)]
    first = run_worker(tmp_path, issuer, server, tokens)
    time.sleep(0.15)
    second = run_worker(tmp_path, issuer, server, tokens)
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results == [{"ok": 20}, {"ok": 20}]
    assert server.total() == 1


def test_a_process_started_later_reuses_the_shared_copy(tmp_path, issuer, server):
    tokens = [issuer.token()]
    for _ in range(3):
        proc = run_worker(tmp_path, issuer, server, tokens)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert server.total() == 1
