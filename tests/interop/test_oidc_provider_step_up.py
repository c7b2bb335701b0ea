"""Step-up authentication (RFC 9470) with panva's oidc-provider: a real interactive login, its acr and auth_time.

``OP_STEP_UP_ACR_VALUES="pwd mfa"``: a user signs in through oidc-provider's own login form (driven over
HTTP), and the JWT access token carries the login's ``acr``, ``amr`` and ``auth_time``. The testproject's
``HasAuthLevel`` endpoints answer 200 when the login is strong and recent enough, and otherwise 401
``insufficient_user_authentication`` whose challenge names ``acr_values`` / ``max_age``; the client sends
those in a new authorization request, the provider asks for a new login, and the new token passes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drf_oidc_jwks.challenges import parse_challenges

from .conftest import API_AUDIENCE, ROOT, jwt_parts, start_node_server
from .oidc_browser import WEB_CLIENT, Browser, Provider

pytestmark = [pytest.mark.interop, pytest.mark.django_db]

METADATA = API_AUDIENCE + "/.well-known/oauth-protected-resource"
AUTHORIZATION_PAGE = ROOT / "docs" / "authorization.md"


def assert_documented(response: Any) -> None:
    """docs/authorization.md shows this challenge exactly as sent (its samples come from these tests)."""
    line = f"WWW-Authenticate: {response['WWW-Authenticate']}\n"
    assert line in AUTHORIZATION_PAGE.read_text(), line


@pytest.fixture(scope="module")
def step_up_provider(interop_logs: Path) -> Iterator[Provider]:
    web_secret = uuid.uuid4().hex
    env = {
        "OP_CLIENT_ID": "reporting-service",
        "OP_CLIENT_SECRET": uuid.uuid4().hex,
        "OP_WEB_CLIENT_ID": WEB_CLIENT,
        "OP_WEB_CLIENT_SECRET": web_secret,
        "OP_STEP_UP_ACR_VALUES": "pwd mfa",
    }
    node = start_node_server("oidc-provider-step-up", "oidc-provider-server.mjs", env, interop_logs)
    try:
        yield Provider(node, env["OP_CLIENT_ID"], env["OP_CLIENT_SECRET"], web_secret)
    finally:
        node.stop()


@pytest.fixture
def api_settings(settings: Any, step_up_provider: Provider) -> Any:
    settings.DRF_OIDC_JWKS = {
        "ISSUER": step_up_provider.issuer,
        "AUDIENCE": API_AUDIENCE,
        "RESOURCE": API_AUDIENCE,
        "SYNC_USERS": False,
    }
    return settings


def step_up_challenge(response: Any) -> dict[str, str]:
    """The one Bearer challenge of a 401 ``insufficient_user_authentication``, parsed by RFC 9110's grammar."""
    assert (response.status_code, response.json()["code"]) == (401, "insufficient_user_authentication")
    [challenge] = parse_challenges(response["WWW-Authenticate"])
    assert challenge.scheme == "Bearer"
    return challenge.params


def test_the_providers_login_puts_acr_amr_and_auth_time_in_the_jwt_access_token(step_up_provider):
    before = int(time.time())
    header, payload = jwt_parts(Browser(step_up_provider).sign_in("alice")["access_token"])
    assert header["typ"] == "at+jwt"
    assert (payload["sub"], payload["aud"], payload["acr"], payload["amr"]) == ("alice", API_AUDIENCE, "pwd", ["pwd"])
    assert before - 1 <= payload["auth_time"] <= time.time()
    assert step_up_provider.meta["acr_values_supported"] == ["pwd", "mfa"]


def test_a_password_login_is_refused_at_the_mfa_endpoint_until_the_user_steps_up(
    api_settings, step_up_provider, bearer
):
    browser = Browser(step_up_provider)
    password = browser.sign_in("alice")["access_token"]
    assert bearer(password, "/api/me").status_code == 200

    refused = bearer(password, "/api/payments", method="post")
    challenge = step_up_challenge(refused)
    assert challenge == {
        "realm": "api",
        "error": "insufficient_user_authentication",
        "acr_values": "mfa",
        "error_description": "A different authentication level is required.",
        "resource_metadata": METADATA,
    }
    assert_documented(refused)

    # RFC 9470 section 4: a new authorization request with the challenge's acr_values; prompt=login makes
    # the provider ask again although the session is still there.
    stepped_up = browser.sign_in("alice", acr_values=challenge["acr_values"], prompt="login")["access_token"]
    assert browser.logins == 2 and jwt_parts(stepped_up)[1]["acr"] == "mfa"
    paid = bearer(stepped_up, "/api/payments", method="post")
    assert (paid.status_code, paid.json()) == (201, {"paid": True, "acr": "mfa"})


def test_a_login_older_than_max_age_is_refused_and_the_provider_makes_the_user_log_in_again(
    api_settings, step_up_provider, bearer
):
    api_settings.STEP_UP_MAX_AGE = 3
    browser = Browser(step_up_provider)
    token = browser.sign_in("alice")["access_token"]
    auth_time = jwt_parts(token)[1]["auth_time"]
    fresh = bearer(token, "/api/account/security")
    assert fresh.status_code == 200, fresh.content
    assert fresh.json()["amr"] == ["pwd"]

    time.sleep(max(0.0, auth_time + 3 + 1.1 - time.time()))  # the login is now more than max_age old
    refused = bearer(token, "/api/account/security")
    challenge = step_up_challenge(refused)
    assert_documented(refused)
    assert challenge == {
        "realm": "api",
        "error": "insufficient_user_authentication",
        "max_age": "3",
        "error_description": "A more recent authentication is required.",
        "resource_metadata": METADATA,
    }

    # The same browser session: without max_age the provider would not ask again; with it, it must.
    again = browser.sign_in("alice", max_age=challenge["max_age"])["access_token"]
    assert browser.logins == 2 and jwt_parts(again)[1]["auth_time"] > auth_time
    assert bearer(again, "/api/account/security").status_code == 200


def test_the_scope_challenges_docs_authorization_md_shows_are_the_ones_sent(
    api_settings, step_up_provider, api, bearer
):
    # /api/analytics needs reports:read and analytics:read; the client-credentials token holds reports:read.
    anonymous = api.get("/api/analytics")
    token = step_up_provider.client_credentials(API_AUDIENCE)
    other_api = step_up_provider.client_credentials("https://other.example")
    lacking, refused = bearer(token, "/api/analytics"), bearer(other_api, "/api/analytics")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    assert (lacking.status_code, lacking.json()["code"]) == (403, "insufficient_scope")
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_audience")
    for response in (anonymous, lacking, refused):
        bearer_challenge = parse_challenges(response["WWW-Authenticate"])[0]
        assert bearer_challenge.params["scope"] == "reports:read analytics:read"
        assert bearer_challenge.params["resource_metadata"] == METADATA
        assert_documented(response)
