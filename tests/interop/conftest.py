"""Real identity providers on loopback: Better Auth and oidc-provider as Node.js subprocesses.

Each server is started from ``interop/`` (installed by ``scripts/install-interop.sh`` from the
committed lockfile), binds 127.0.0.1 on a port it picks itself (no race between choosing a free
port and binding it) and prints ``READY <url>``; the fixtures wait for that line within a bound,
and stop the process by its PID at the end of the session.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent.parent
INTEROP = ROOT / "interop"
READY_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0

#: The API's identifier: the ``aud`` the identity providers put in tokens for this API.
API_AUDIENCE = "https://api.interop.test"
#: Addresses Better Auth makes admins at sign-up (``ADMIN_EMAILS`` in interop/auth.ts).
ADMIN_EMAIL_DOMAIN = "admins.interop.test"


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only: never a proxy from the environment
    return session


@dataclass
class NodeServer:
    """A Node.js identity provider running as a subprocess."""

    name: str
    process: subprocess.Popen[str]
    url: str
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _require_node() -> str:
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "better-auth").is_dir():
        pytest.fail(
            "The interop identity providers are not installed: run `bash scripts/install-interop.sh` "
            "(the README test command does).",
            pytrace=False,
        )
    return node


def start_node_server(name: str, script: str, env: dict[str, str], log_dir: Path) -> NodeServer:
    """Start ``interop/<script>`` and wait (bounded) for its ``READY <url>`` line."""
    node = _require_node()
    log = log_dir / f"{name}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("npm_", "NODE_OPTIONS"))}
    full_env.update(env)
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [node, script, "0"],
            cwd=INTEROP,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    server = NodeServer(name, process, "", log)
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=0.2):
                line = process.stdout.readline()
                if line.startswith("READY "):
                    server.url = line.split()[1]
                    return server
    finally:
        selector.close()
    server.stop()
    pytest.fail(f"{name} did not become ready within {READY_TIMEOUT:.0f}s:\n{server.log_tail()}", pytrace=False)


@pytest.fixture(scope="session")
def interop_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("interop-logs")


# ---------------------------------------------------------------------------
# Better Auth


@dataclass
class BetterAuthUser:
    """A signed-in Better Auth user: its session cookie lives in ``http``."""

    server: BetterAuth
    http: requests.Session
    id: str
    email: str
    organizations: list[str] = field(default_factory=list)

    def create_organization(self, name: str) -> str:
        """Create an organisation (the user becomes its owner and it becomes active); return its id."""
        slug = f"{name.lower()}-{uuid.uuid4().hex[:8]}"
        body = self.server.post(self.http, "/api/auth/organization/create", {"name": name, "slug": slug})
        self.organizations.append(body["id"])
        return str(body["id"])

    def set_active_organization(self, organization_id: str) -> None:
        self.server.post(self.http, "/api/auth/organization/set-active", {"organizationId": organization_id})

    def jwt(self) -> str:
        """The JWT of the JWT plugin's ``/api/auth/token`` endpoint for the current session."""
        response = self.http.get(self.server.url + "/api/auth/token", timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])


@dataclass
class BetterAuth:
    """A running Better Auth server (interop/auth.ts) and an HTTP client for it."""

    node: NodeServer
    alg: str

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def jwks_url(self) -> str:
        return self.url + "/api/auth/jwks"

    def post(self, http: requests.Session, path: str, body: dict[str, Any]) -> Any:
        # A browser sends Origin on these calls; Better Auth's CSRF check refuses cookie-authenticated
        # POSTs without it.
        response = http.post(self.url + path, json=body, headers={"Origin": self.url}, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()

    def sign_up(self, name: str = "Ada", *, admin: bool = False, extra: dict[str, Any] | None = None) -> BetterAuthUser:
        """Sign a new user up by HTTP, then sign in with the password (a fresh session)."""
        domain = ADMIN_EMAIL_DOMAIN if admin else "users.interop.test"
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@{domain}"
        password = uuid.uuid4().hex
        http = _session()
        self.post(
            http, "/api/auth/sign-up/email", {"email": email, "password": password, "name": name, **(extra or {})}
        )
        http.cookies.clear()
        body = self.post(http, "/api/auth/sign-in/email", {"email": email, "password": password})
        return BetterAuthUser(self, http, str(body["user"]["id"]), email)

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The DRF_OIDC_JWKS value docs/providers.md gives for this server."""
        value: dict[str, Any] = {
            "ISSUER": self.url,
            "JWKS_URL": self.jwks_url,
            "AUDIENCE": API_AUDIENCE,
            "ALGORITHMS": [self.alg],
            "PROVIDER": "better-auth",
        }
        value.update(overrides)
        return value


def _better_auth(alg: str, logs: Path) -> Iterator[BetterAuth]:
    env = {
        "JWT_ALG": alg,
        "API_AUDIENCE": API_AUDIENCE,
        # Every test user gets a unique address; admins share one domain.
        "ADMIN_EMAILS": "@" + ADMIN_EMAIL_DOMAIN,
    }
    node = start_node_server(f"better-auth-{alg}", "better-auth-server.mjs", env, logs)
    try:
        yield BetterAuth(node, alg)
    finally:
        node.stop()


@pytest.fixture(scope="session")
def better_auth(interop_logs: Path) -> Iterator[BetterAuth]:
    """Better Auth with its JWT plugin as configured by default: EdDSA (Ed25519)."""
    yield from _better_auth("EdDSA", interop_logs)


@pytest.fixture(scope="session")
def better_auth_rs256(interop_logs: Path) -> Iterator[BetterAuth]:
    """Better Auth with its JWT plugin configured for RS256."""
    yield from _better_auth("RS256", interop_logs)


# ---------------------------------------------------------------------------
# oidc-provider


@dataclass
class OidcProvider:
    """A running oidc-provider (interop/oidc-provider-server.mjs) with one client-credentials client."""

    node: NodeServer
    client_id: str
    client_secret: str

    @property
    def issuer(self) -> str:
        return self.node.url

    def discovery(self) -> dict[str, Any]:
        response = _session().get(self.issuer + "/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def access_token(self, resource: str = API_AUDIENCE, scope: str | None = None) -> str:
        """A client-credentials access token for ``resource`` (RFC 8707), in JWT format."""
        data = {"grant_type": "client_credentials", "resource": resource}
        if scope is not None:
            data["scope"] = scope
        response = _session().post(
            self.discovery()["token_endpoint"],
            data=data,
            auth=(self.client_id, self.client_secret),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer"
        return str(body["access_token"])

    def rotate(self) -> str:
        """Have the running provider publish a new RSA key and sign with it; return its ``kid``."""
        response = _session().post(self.issuer + "/__rotate", timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        return str(response.json()["kid"])

    def jwks(self) -> dict[str, Any]:
        response = _session().get(self.discovery()["jwks_uri"], timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="session")
def oidc_provider(interop_logs: Path) -> Iterator[OidcProvider]:
    client_id, client_secret = "reporting-service", uuid.uuid4().hex
    env = {"OP_CLIENT_ID": client_id, "OP_CLIENT_SECRET": client_secret}
    node = start_node_server("oidc-provider", "oidc-provider-server.mjs", env, interop_logs)
    try:
        yield OidcProvider(node, client_id, client_secret)
    finally:
        node.stop()


# ---------------------------------------------------------------------------
# The API under test


@pytest.fixture
def bearer(api: APIClient) -> Callable[..., Any]:
    """``bearer(token, path, method="get", **kwargs)``: call the testproject API in-process with a Bearer token."""

    def _call(token: str, path: str = "/api/me", method: str = "get", **kwargs: Any) -> Any:
        return getattr(api, method)(path, HTTP_AUTHORIZATION=f"Bearer {token}", **kwargs)

    return _call


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload of a compact JWS, decoded without verification (for assertions on layout)."""
    import base64

    def decode(segment: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))

    header, payload, _signature = token.split(".")
    return decode(header), decode(payload)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DjangoServer:
    """The testproject under ``manage.py runserver --noreload`` in its own process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def start_django(env: dict[str, str], workdir: Path, port: int | None = None) -> DjangoServer:
    """Migrate a fresh SQLite database in ``workdir`` and serve the testproject on ``port`` (default: a free one)."""
    full_env = {
        **os.environ,
        "VAR_DIR": str(workdir),
        # A throwaway database: never migrate whatever DATABASE_URL the test run itself points at.
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "DEBUG": "False",
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
    }
    full_env.update(env)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=full_env, check=True, timeout=120
    )
    port = port or free_port()
    log = workdir / "runserver.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = DjangoServer(process, f"http://127.0.0.1:{port}", log)
    http = _session()
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if http.get(server.url + "/api/health", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            time.sleep(0.1)
    server.stop()
    pytest.fail(f"runserver did not answer within {READY_TIMEOUT:.0f}s:\n{log.read_text(errors='replace')[-4000:]}")
