"""oidc-provider driven as a browser would: its own login and consent forms (devInteractions) over HTTP.

Shared by the back-channel logout tests (test_oidc_provider_revocation.py) and the step-up tests
(test_oidc_provider_step_up.py): a web client signs a user in with the authorization code grant and PKCE,
for the resource ``API_AUDIENCE`` (so the access token is a JWT).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from .conftest import API_AUDIENCE, HTTP_TIMEOUT, NodeServer

WEB_CLIENT = "web-app"
REDIRECT_URI = "http://127.0.0.1/callback"


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


class Provider:
    def __init__(self, node: NodeServer, client_id: str, client_secret: str, web_secret: str = "") -> None:
        self.node, self.client_id, self.client_secret, self.web_secret = node, client_id, client_secret, web_secret
        self.issuer = node.url
        self.meta = _session().get(self.issuer + "/.well-known/openid-configuration", timeout=HTTP_TIMEOUT).json()

    def client_credentials(self, resource: str) -> str:
        r = _session().post(
            self.meta["token_endpoint"],
            data={"grant_type": "client_credentials", "resource": resource, "scope": "reports:read"},
            auth=(self.client_id, self.client_secret),
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def revoke(self, token: str) -> None:
        r = _session().post(
            self.meta["revocation_endpoint"],
            data={"token": token, "token_type_hint": "access_token"},
            auth=(self.client_id, self.client_secret),
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 200, r.text


class Browser:
    """Drives oidc-provider's own HTML forms over HTTP, as a browser would (cookies, form posts, redirects)."""

    def __init__(self, provider: Provider) -> None:
        self.p, self.http = provider, _session()
        self.logins = 0  # how many times the login form was shown and submitted

    def follow(self, response: requests.Response) -> requests.Response:
        # Follow redirects by hand, stopping at the client's redirect_uri (nothing listens there).
        while response.is_redirect:
            target = urljoin(response.url, response.headers["Location"])
            if target.startswith(REDIRECT_URI):
                response.url = target
                return response
            response = self.http.get(target, allow_redirects=False, timeout=HTTP_TIMEOUT)
        return response

    def submit(self, page: requests.Response, fields: dict[str, str]) -> requests.Response:
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        assert action, page.text[:2000]
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        data = {**{k: html.unescape(v) for k, v in hidden.items()}, **fields}
        target = urljoin(page.url, html.unescape(action.group(1)))
        return self.follow(self.http.post(target, data=data, allow_redirects=False, timeout=HTTP_TIMEOUT))

    def sign_in(self, login: str, **extra: str) -> dict[str, Any]:
        """Authorize (``extra``: more request parameters, e.g. ``acr_values``, ``max_age``), log in if asked, redeem."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "client_id": WEB_CLIENT,
            "response_type": "code",
            "scope": "openid reports:read",
            "redirect_uri": REDIRECT_URI,
            "resource": API_AUDIENCE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": secrets.token_urlsafe(8),
            **extra,
        }
        page = self.follow(
            self.http.get(
                self.p.meta["authorization_endpoint"], params=params, allow_redirects=False, timeout=HTTP_TIMEOUT
            )
        )
        if not page.url.startswith(REDIRECT_URI) and 'name="login"' in page.text:
            self.logins += 1
            page = self.submit(page, {"login": login, "password": "any"})  # the login form
        if not page.url.startswith(REDIRECT_URI):
            page = self.submit(page, {})  # the consent form
        code = parse_qs(urlsplit(page.url).query)["code"][0]
        r = self.http.post(
            self.p.meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "resource": API_AUDIENCE,
            },
            auth=(WEB_CLIENT, self.p.web_secret),
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def sign_out(self, id_token: str) -> None:
        page = self.follow(
            self.http.get(
                self.p.meta["end_session_endpoint"],
                params={"id_token_hint": id_token},
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
        )
        done = self.submit(page, {"logout": "yes"})  # the "Yes, sign me out" button
        assert done.status_code == 200, done.text[:2000]
