"""``oidc_check`` and ``oidc_decode`` against a real loopback identity provider: good, down, and every refusal."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.jwks import get_client
from drf_oidc_jwks.management.commands.oidc_check import redact
from drf_oidc_jwks.models import OIDCIdentity
from drf_oidc_jwks.testing import Response, TestIssuer, generate_key

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def run(name: str, *args: str) -> tuple[int, str]:
    """Run a command in-process; return (exit status, stdout)."""
    out = io.StringIO()
    try:
        call_command(name, *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def check_json() -> tuple[int, dict[str, Any]]:
    status, out = run("oidc_check", "--json")
    return status, json.loads(out)


def shared_jwks_entry() -> Any:
    client = get_client(get_settings().issuers[0])
    return caches["default"].get(client._prefix + "jwks")


# -- oidc_check --


def test_check_reports_issuer_jwks_uri_keys_cache_and_checks_on_a_good_config(issuer, server, oidc_settings, settings):
    oidc_settings(JWKS_URL=None)  # discovery, as most deployments run
    status, out = run("oidc_check")
    assert status == 0, out
    assert f"Issuer {issuer.issuer}" in out
    assert f"discovery:  {issuer.issuer}/.well-known/openid-configuration" in out
    assert f"jwks_uri:   {issuer.issuer}/jwks.json" in out
    assert f"kid={issuer.key.kid}  kty=RSA  alg=RS256  size=2048 bits  verifies: RS256" in out
    assert f"backend:  {settings.CACHES['default']['BACKEND']}" in out
    assert "System checks" in out
    assert "OK: tokens of every configured issuer can be verified." in out
    assert server.total("/.well-known/openid-configuration") == 1 and server.total("/jwks.json") == 1


def test_check_json_lists_every_key_with_kid_kty_alg_and_size(issuer, server, oidc_settings):
    ec = issuer.add_key("ES256")
    okp = issuer.add_key("EdDSA")
    oidc_settings()
    status, report = check_json()
    assert status == 0
    assert report["ok"] is True
    (entry,) = report["issuers"]
    assert entry["status"] == "ok"
    assert entry["jwks_uri"] == server.url("/jwks.json")
    keys = {k["kid"]: k for k in entry["keys"]}
    assert keys[issuer.keys[0].kid] | {} == {
        "kid": issuer.keys[0].kid, "kty": "RSA", "alg": "RS256", "crv": None, "size": 2048, "verifies": ["RS256"],
    }  # fmt: skip
    assert (keys[ec.kid]["kty"], keys[ec.kid]["crv"], keys[ec.kid]["size"], keys[ec.kid]["verifies"]) == (
        "EC", "P-256", 256, ["ES256"],
    )  # fmt: skip
    assert (keys[okp.kid]["kty"], keys[okp.kid]["crv"], keys[okp.kid]["verifies"]) == ("OKP", "Ed25519", ["EdDSA"])
    assert report["cache"]["alias"] == "default"


def test_check_reports_what_the_shared_cache_holds_and_leaves_it_untouched(issuer, server, oidc_settings):
    status, report = check_json()
    assert report["issuers"][0]["cache"]["jwks"] is None
    assert shared_jwks_entry() is None  # the live fetch used a scratch cache
    issuer.install(ttl=120)
    status, report = check_json()
    held = report["issuers"][0]["cache"]["jwks"]
    assert held["keys"] == 1 and held["kids"] == [issuer.key.kid]
    assert 110 < held["fresh_for"] <= 120


def test_check_fails_when_the_identity_provider_is_down_and_nothing_is_cached(issuer, server, oidc_settings):
    server.stop()
    status, out = run("oidc_check")
    assert status == 1
    assert "ERROR no keys: request failed: ConnectionError" in out
    assert "every token is answered 503 idp_unavailable" in out
    assert "status: failing" in out
    assert "FAILING" in out


def test_check_fails_when_the_identity_provider_answers_500(issuer, server, oidc_settings):
    server.respond("/jwks.json", Response(500, b"boom"))
    status, report = check_json()
    assert status == 1
    assert report["ok"] is False
    assert report["issuers"][0]["fetch_error"] == f"HTTP 500 ({server.url('/jwks.json')})"
    assert report["issuers"][0]["requests"][0]["error"] == "HTTP 500"


def test_check_is_degraded_but_passes_while_cached_keys_still_serve(issuer, server, oidc_settings):
    issuer.install()
    server.stop()
    status, report = check_json()
    assert status == 0
    (entry,) = report["issuers"]
    assert entry["status"] == "degraded"
    assert "cannot be reached now" in entry["warnings"][0]


def test_check_fails_when_no_key_can_verify_the_configured_algorithms(oidc_settings, issuer, server):
    issuer.keys[:] = [generate_key("EdDSA")]  # Better Auth's default, while ALGORITHMS stays RS256
    oidc_settings(ALGORITHMS=["RS256"])
    status, report = check_json()
    assert status == 1
    (error,) = report["issuers"][0]["errors"]
    assert error.startswith("no key of the JWKS can verify RS256")
    assert "EdDSA: add that to ALGORITHMS" in error


def test_check_lists_keys_it_skips_and_why(issuer, server, oidc_settings):
    weak = issuer.add_key("RS256", rsa_bits=1024, fresh=True)
    issuer.keys.append(issuer.keys.pop(0))  # keep signing with the good key
    status, report = check_json()
    assert status == 0
    (skipped,) = report["issuers"][0]["skipped_keys"]
    assert skipped["kid"] == weak.kid
    assert skipped["reason"] == "RSA key of 1024 bits is below the minimum of 2048"


def test_check_names_the_issuer_a_foreign_discovery_document_claims(issuer, server, oidc_settings):
    oidc_settings(JWKS_URL=None)
    body = json.dumps({"issuer": "https://elsewhere.test", "jwks_uri": server.url("/jwks.json")}).encode()
    server.respond("/.well-known/openid-configuration", Response(200, body, {"Content-Type": "application/json"}))
    status, report = check_json()
    assert status == 1
    assert "names another issuer: 'https://elsewhere.test', expected" in report["issuers"][0]["fetch_error"]


def test_check_fails_on_a_system_check_error(issuer, server, oidc_settings, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    status, report = check_json()
    assert status == 1
    assert [c["id"] for c in report["checks"] if c["level"] == "error"] == ["drf_oidc_jwks.E021"]


def test_check_fails_on_broken_settings_and_says_why(settings):
    settings.DRF_OIDC_JWKS = {"ISSUER": "https://auth.example.com"}
    status, out = run("oidc_check")
    assert status == 1
    assert "ERROR drf_oidc_jwks.E006: DRF_OIDC_JWKS has no AUDIENCE." in out
    assert 'fix: Set "AUDIENCE"' in out


def test_check_hides_cache_passwords():
    assert redact("redis://:s3cret@cache.internal:6379/0") == "redis://:***@cache.internal:6379/0"
    assert redact(["redis://u:p@a:1", "redis://b:2"]) == ["redis://u:***@a:1", "redis://b:2"]
    assert redact("unique-snowflake") == "unique-snowflake"


def test_check_verdict_during_an_outage_with_a_warm_cache_is_stale_keys_until_when_and_the_server_agrees(
    issuer, server, oidc_settings, call
):
    oidc_settings(JWKS_URL=None, JWKS_CACHE_TTL=1, JWKS_MAX_STALE=600, JWKS_FAILURE_BACKOFF=0.2, SYNC_USERS=False)
    token = issuer.token()
    assert call(token).status_code == 200  # warm: discovery and the JWKS fetched and shared
    time.sleep(1.1)  # past freshness: stale now
    server.stop()
    status, report = check_json()
    assert status == 0, report
    (entry,) = report["issuers"]
    held = entry["cache"]["jwks"]
    assert entry["status"] == "degraded"
    assert entry["verdict"] == f"stale keys are served until {held['stale_until']}, then 503 idp_unavailable"
    assert "answered 503" not in " ".join(entry["errors"])
    assert call(token).status_code == 200  # what the server does: serves the stale keys
    status, out = run("oidc_check")
    assert f"verdict: stale keys are served until {held['stale_until']}" in out
    assert "DEGRADED" in out and "FAILING" not in out


def test_check_verdict_with_a_trailing_slash_on_issuer_is_invalid_issuer_as_the_server_answers(
    issuer, server, settings, call
):
    settings.DRF_OIDC_JWKS = {"ISSUER": issuer.issuer + "/", "AUDIENCE": "https://api.test", "SYNC_USERS": False}
    status, report = check_json()
    assert status == 1
    (entry,) = report["issuers"]
    assert entry["verdict"] == f"tokens issued by {issuer.issuer!r} are refused with 401 invalid_issuer"
    (error,) = entry["errors"]
    assert f"set ISSUER to exactly {issuer.issuer!r}" in error
    assert "every token is answered 503" not in error
    response = call(issuer.token())
    assert (response.status_code, response.json()["code"]) == (401, "invalid_issuer")


def test_check_verdict_with_an_issuer_path_that_has_no_discovery_is_invalid_issuer_as_the_server_answers(
    issuer, server, settings, call
):
    settings.DRF_OIDC_JWKS = {"ISSUER": issuer.issuer + "/oidc", "AUDIENCE": "https://api.test", "SYNC_USERS": False}
    status, report = check_json()
    assert status == 1
    (entry,) = report["issuers"]
    assert entry["fetch_error"].startswith("HTTP 404")
    assert entry["verdict"] == "tokens issued by another issuer are refused with 401 invalid_issuer"
    response = call(issuer.token())
    assert (response.status_code, response.json()["code"]) == (401, "invalid_issuer")


def test_check_with_a_per_process_cache_it_cannot_see_says_what_warm_and_cold_server_processes_do(
    issuer, server, oidc_settings, settings
):
    # A LocMemCache of its own: what `manage.py oidc_check` sees beside a running server (another process).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "other"}}
    oidc_settings(JWKS_CACHE_TTL=300, JWKS_MAX_STALE=3600)
    server.stop()
    status, report = check_json()
    assert status == 1
    (entry,) = report["issuers"]
    assert entry["verdict"] == (
        "a server process that fetched keys less than 3900s ago serves them; "
        "one holding none answers 503 idp_unavailable"
    )
    assert "this command cannot see the keys the server's processes hold" in entry["errors"][0]


def manage(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), "VAR_DIR": env.pop("VAR_DIR"), **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_exit_status_from_the_command_line(issuer, server, tmp_path):
    env = {"OIDC_ISSUER": issuer.issuer, "OIDC_AUDIENCE": "https://api.test", "OIDC_PROVIDER": "generic"}
    ok = manage("oidc_check", "--json", env={**env, "VAR_DIR": str(tmp_path)})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["issuers"][0]["keys"][0]["kid"] == issuer.key.kid
    server.stop()
    down = manage("oidc_check", env={**env, "VAR_DIR": str(tmp_path)})
    assert down.returncode == 1
    assert "CommandError: tokens would be refused" in down.stderr


def test_check_prints_w020_once_from_the_command_line(issuer, server, tmp_path):
    # DEBUG off with the default LocMemCache: W020. Django's own banner printed it a second time.
    env = {"OIDC_ISSUER": issuer.issuer, "OIDC_AUDIENCE": "https://api.test", "DEBUG": "false"}
    result = manage("oidc_check", env={**env, "VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    printed = result.stdout + result.stderr
    assert printed.count("is a LocMemCache: each worker process fetches its own copy") == 1, printed
    assert "WARNING drf_oidc_jwks.W020" in result.stdout


# -- oidc_decode --


def decode(*args: str) -> tuple[int, str]:
    return run("oidc_decode", *args)


def test_decode_prints_header_claims_attributes_and_the_user_of_an_accepted_token(issuer, server, oidc_settings):
    token = issuer.token(sub="alice", roles=["admin"], scope="reports:read", tenant_id="acme", email="a@example.com")
    status, out = decode(token)
    assert status == 0, out
    assert '"alg": "RS256"' in out and f'"kid": "{issuer.key.kid}"' in out
    assert '"sub": "alice"' in out
    assert re.search(r"exp: 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in (299|300)s\)", out)  # in UTC and relative
    assert "roles: ['admin']" in out
    assert "scopes: ['reports:read']" in out
    assert "tenant_id: 'acme'" in out
    assert "kind: 'new'" in out
    assert "ACCEPTED" in out
    assert token not in out and token.split(".")[2] not in out  # never the token or its signature


def test_decode_reads_the_token_from_stdin_with_or_without_a_bearer_prefix(issuer, server, oidc_settings, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"Bearer {issuer.token(sub='bob')}\n"))
    status, out = decode("--json")
    assert status == 0
    assert json.loads(out)["claims"]["sub"] == "bob"


def test_decode_without_a_token_says_so(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Bearer \n"))
    status, _ = decode()
    assert status == 2


def test_decode_never_writes_a_user_unless_asked_to_sync(issuer, server, oidc_settings):
    token = issuer.token(sub="carol", email="carol@example.com")
    status, out = decode("--json", token)
    assert status == 0
    assert json.loads(out)["user"]["kind"] == "new"
    assert (get_user_model().objects.count(), OIDCIdentity.objects.count()) == (0, 0)
    status, out = decode("--json", "--sync", token)
    assert status == 0
    synced = json.loads(out)["user"]
    assert synced["synced"] is True
    assert OIDCIdentity.objects.get(issuer=issuer.issuer, subject="carol").user.pk == synced["pk"]
    status, out = decode("--json", token)
    user = json.loads(out)["user"]
    assert (user["kind"], user["pk"], user["up_to_date"]) == ("existing", synced["pk"], True)


def test_decode_refuses_a_locally_deactivated_user_as_a_request_would(issuer, server, oidc_settings):
    token = issuer.token(sub="dan")
    assert decode("--sync", token)[0] == 0
    user = OIDCIdentity.objects.get(subject="dan").user
    user.is_active = False
    user.save()
    status, out = decode(token)
    assert status == 1
    assert "REFUSED: user_inactive (401)" in out


def refusal(*args: str) -> dict[str, Any]:
    status, out = decode("--json", *args)
    assert status == 1, out
    result = json.loads(out)
    assert result["accepted"] is False
    return result["refusal"]


def test_decode_explains_a_malformed_token(oidc_settings):
    r = refusal("not-a-jwt")
    assert (r["code"], r["status"], r["reason"]) == ("malformed_token", 401, "1 segments, 3 expected")


def test_decode_explains_an_algorithm_outside_the_allow_list(issuer, server, oidc_settings):
    ec = issuer.add_key("ES256")
    oidc_settings(ALGORITHMS=["RS256"])
    r = refusal(issuer.token(key=ec))
    assert r["code"] == "unsupported_algorithm"
    assert r["reason"] == "alg ES256 not in ['RS256']"
    assert "ALGORITHMS of" in r["context"]


def test_decode_explains_an_unknown_key_with_the_kids_the_jwks_holds(issuer, server, oidc_settings):
    r = refusal(issuer.foreign_token(same_kid=False))
    assert r["code"] == "unknown_key"
    assert f"holds kids ['{issuer.key.kid}']" in r["context"]


def test_decode_explains_an_invalid_signature(issuer, server, oidc_settings):
    r = refusal(issuer.foreign_token())
    assert r["code"] == "invalid_signature"
    assert r["reason"] == f"signature does not verify with key '{issuer.key.kid}' (RSA, RS256)"


def test_decode_says_how_many_seconds_ago_a_token_expired(issuer, server, oidc_settings):
    r = refusal(issuer.expired_token(expired_for=125))
    assert r["code"] == "token_expired"
    assert re.match(r"expired 12[56]s ago \(exp \d+, ", r["reason"]), r["reason"]
    assert r["reason"].endswith("leeway 30s)")


def test_decode_explains_a_token_not_yet_valid(issuer, server, oidc_settings):
    r = refusal(issuer.token(nbf=int(time.time()) + 600))
    assert r["code"] == "token_not_yet_valid"
    assert re.fullmatch(r"nbf is (599|600)s in the future \(leeway 30s\)", r["reason"])


def test_decode_lists_the_configured_issuers_for_a_foreign_issuer(issuer, server, oidc_settings):
    r = refusal(issuer.token(iss="https://evil.test"))
    assert r["code"] == "invalid_issuer"
    assert r["reason"] == f"iss https://evil.test is not a configured ISSUER ('{issuer.issuer}')"


def test_decode_says_which_audience_was_expected_and_which_came(issuer, server, oidc_settings):
    r = refusal(issuer.token(aud="https://other-api.test"))
    assert r["code"] == "invalid_audience"
    assert r["reason"] == "aud https://other-api.test, expected one of ['https://api.test']"


def test_decode_names_the_missing_claim(issuer, server, oidc_settings):
    r = refusal(issuer.token(sub=None))
    assert r["code"] == "missing_claim"
    assert r["reason"] == "required claim 'sub' is absent (REQUIRED_CLAIMS ['exp', 'sub'])"


def test_decode_explains_a_refused_token_type(issuer, server, oidc_settings):
    oidc_settings(ALLOWED_TYPES=["at+jwt"])
    r = refusal(issuer.token())
    assert (r["code"], r["reason"]) == ("invalid_token_type", "typ JWT not in ['at+jwt']")


def test_decode_explains_a_sender_constrained_token(issuer, server, oidc_settings):
    r = refusal(issuer.token(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}))
    assert (r["code"], r["reason"]) == ("sender_constrained", "cnf claim present")


def test_decode_explains_a_missing_required_scope_with_403(issuer, server, oidc_settings):
    oidc_settings(REQUIRED_SCOPES=["api"])
    r = refusal(issuer.token(scope="other"))
    assert (r["code"], r["status"]) == ("insufficient_scope", 403)
    assert r["reason"] == "REQUIRED_SCOPES ['api'] not in scopes"


def test_decode_reports_the_identity_provider_down_as_idp_unavailable(issuer, server, oidc_settings):
    server.stop()
    r = refusal(issuer.token())
    assert (r["code"], r["status"]) == ("idp_unavailable", 503)
    assert r["reason"].startswith("request failed: ConnectionError (Retry-After ")


def test_decode_reports_the_identity_provider_answering_500(issuer, server, oidc_settings):
    server.respond("/jwks.json", Response(500, b"boom"))
    r = refusal(issuer.token())
    assert r["code"] == "idp_unavailable"
    assert r["reason"].startswith("HTTP 500")


def test_decode_prints_the_code_reason_and_a_pointer_to_the_docs(issuer, server, oidc_settings):
    status, out = decode(issuer.expired_token())
    assert status == 1
    assert "REFUSED: token_expired (401)" in out
    assert re.search(r"reason:      expired 360[01]s ago", out)
    assert "see: docs/troubleshooting.md#token_expired" in out


def test_every_refusal_code_has_a_cause_and_a_troubleshooting_section():
    from drf_oidc_jwks.exceptions import CODES
    from drf_oidc_jwks.management.commands.oidc_decode import CAUSES

    assert set(CODES) <= set(CAUSES)
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    for code in CAUSES:
        assert f"### `{code}`" in text, code


def test_decode_from_the_command_line_reads_stdin_and_exits_1_on_refusal(tmp_path):
    issuer = TestIssuer(audience="https://api.test")
    with issuer.serve():
        env = {"OIDC_ISSUER": issuer.issuer, "OIDC_AUDIENCE": "https://api.test", "OIDC_SYNC_USERS": "false"}
        ok = manage("oidc_decode", env={**env, "VAR_DIR": str(tmp_path)}, stdin=issuer.token(sub="eve"))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "kind: 'TokenUser'" in ok.stdout
        bad = manage("oidc_decode", env={**env, "VAR_DIR": str(tmp_path)}, stdin=issuer.expired_token())
        assert bad.returncode == 1
        assert "CommandError: token refused: token_expired" in bad.stderr
