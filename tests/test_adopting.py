"""docs/adopting.md, done as written on fresh ``django-admin startproject`` projects.

The page's Python blocks are the sections of docs/examples/adopting_example.py (it includes them); this
module puts them where the page says, runs every shell block of the page (``runserver`` in the background),
checks each ``curl`` answer against the comment under it, and counts the settings lines the page quotes.
Port 8000 and 9000 of the page become free ports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from drf_oidc_jwks.authentication import JWKSAuthentication

pytest_plugins = ["drf_oidc_jwks.pytest_plugin"]

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "adopting.md"
EXAMPLE = ROOT / "docs" / "examples" / "adopting_example.py"


def sections() -> dict[str, str]:
    return dict(re.findall(r"# --8<-- \[start:([\w-]+)\]\n(.*?)# --8<-- \[end:\1\]", EXAMPLE.read_text(), re.S))


def shell_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", PAGE.read_text(), re.S)


def code_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def real_idp_settings() -> str:
    """The first settings block with its DRF_OIDC_JWKS replaced by the IdP's, as step 3 says."""
    first = sections()["settings"]
    start = first.index("DRF_OIDC_JWKS = {")
    end = first.index("}\n", start) + 2
    return first[:start] + sections()["real-idp"] + first[end:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Project:
    """A startproject directory, its shell environment and its runserver."""

    def __init__(self, path: Path, port: int, idp_port: int, state: Path) -> None:
        self.path, self.port, self.idp_port = path, port, idp_port
        self.server: subprocess.Popen[str] | None = None
        self.log_path = path.parent / "runserver.log"
        self.log = open(self.log_path, "a")  # noqa: SIM115  (closed with the server)
        bin_dir = path / "bin"
        bin_dir.mkdir(parents=True)
        # A wrapper, not a symlink: a venv's interpreter finds its site-packages from the path it is run by.
        (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        (bin_dir / "python").chmod(0o755)
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "VAR_DIR")}
        # This checkout's package (the suite tests it), Django and the rest from this interpreter.
        env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", PYTHONPATH=str(ROOT), IDP_STATE_DIR=str(state))
        self.env = env
        subprocess.run(
            [sys.executable, "-m", "django", "startproject", "mysite", str(path)], check=True, env=env, timeout=60
        )

    def localize(self, text: str) -> str:
        text = text.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        text = text.replace("127.0.0.1:9000", f"127.0.0.1:{self.idp_port}").replace(
            "--port 9000", f"--port {self.idp_port}"
        )
        return text.replace("bash scripts/idp.sh", f"bash {ROOT}/scripts/idp.sh")

    def append(self, name: str, *texts: str) -> None:
        with open(self.path / "mysite" / name, "a") as fh:
            fh.write("".join("\n" + self.localize(t) for t in texts))

    def run_block(self, block: str) -> str:
        """Run a shell block of the page; a ``runserver`` line starts the server in the background instead."""
        script = []
        for line in self.localize(block).splitlines():
            if "manage.py runserver" in line:
                self.start_server(line)
            else:
                script.append(line)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", "\n".join(script)],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start_server(self, line: str) -> None:
        self.stop_server()
        self.server = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            cwd=self.path,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/", timeout=2)
                return
            except requests.ConnectionError:
                assert self.server.poll() is None, f"runserver exited:\n{self.log_path.read_text()[-3000:]}"
                time.sleep(0.2)
        raise AssertionError("runserver did not answer within 60s")

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            self.server.wait(timeout=20)
        self.server = None
        self.log.flush()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    made = Project(tmp_path / "site", free_port(), free_port(), tmp_path / "idp")
    try:
        yield made
    finally:
        made.stop_server()
        subprocess.run(["bash", str(ROOT / "scripts" / "idp.sh"), "stop"], env=made.env, capture_output=True)


def assert_answer_as_commented(block: str, output: str) -> None:
    """The curl output is JSON whose ``sub`` is the one in the ``# {...}`` comment under it."""
    (expected,) = re.findall(r"^# (\{.*\})$", block, re.MULTILINE)
    answer, _end = json.JSONDecoder().raw_decode(output[output.index("{") :])  # curl prints no newline after it
    assert answer["sub"] == json.loads(expected)["sub"], output


@pytest.mark.slow
def test_the_page_walks_a_fresh_project_to_a_200_from_the_dev_issuer_then_beside_session_logins(project):
    s = sections()
    project.append("settings.py", s["settings"], s["devissuer-settings"])
    (project.path / "mysite" / "views.py").write_text(s["views"])
    project.append("urls.py", s["urls"], s["devissuer-urls"])
    blocks = shell_blocks()
    project.run_block(blocks[0])  # migrate; runserver
    assert requests.get(project.url("/api/me"), timeout=10).status_code == 401
    out = project.run_block(blocks[1])  # mint_token; curl
    assert_answer_as_commented(blocks[1], out)
    token = re.search(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", subprocess.run(
        ["python", "manage.py", "mint_token"], cwd=project.path, env=project.env, capture_output=True, text=True
    ).stdout).group(0)  # fmt: skip

    # Step 5: session logins beside bearer tokens, JWKSAuthentication first.
    project.append("settings.py", s["session-settings"])
    project.append("urls.py", s["session-urls"])
    project.start_server(f"python manage.py runserver 127.0.0.1:{project.port}")
    env = {**project.env, "DJANGO_SUPERUSER_PASSWORD": "correct-horse-9"}
    subprocess.run(
        ["python", "manage.py", "createsuperuser", "--noinput", "--username", "admin", "--email", "a@example.com"],
        cwd=project.path, env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    browser = requests.Session()
    page = browser.get(project.url("/api/me"), headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 401 and page.headers["WWW-Authenticate"].startswith("Bearer")
    assert re.search(r"href=['\"]/api-auth/login/\?next=/api/me['\"]>Log in<", page.text)  # the browsable API's link
    form = browser.get(project.url("/api-auth/login/"), timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    logged_in = browser.post(
        project.url("/api-auth/login/?next=/api/me"),
        data={"username": "admin", "password": "correct-horse-9", "csrfmiddlewaretoken": csrf, "next": "/api/me"},
        headers={"Referer": project.url("/api-auth/login/")},
        timeout=10,
    )
    assert logged_in.status_code == 200 and logged_in.url.endswith("/api/me"), logged_in.text[:500]
    assert browser.get(project.url("/api/me"), timeout=10).json() == {"user": "admin", "sub": None}
    bearer = requests.get(project.url("/api/me"), headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bearer.status_code == 200 and bearer.json()["sub"] == "alice"
    # A bad token with a valid session cookie is refused: it never falls through to the session.
    refused = browser.get(project.url("/api/me"), headers={"Authorization": "Bearer not.a.token"}, timeout=10)
    assert refused.status_code == 401


@pytest.mark.slow
@pytest.mark.interop
def test_the_page_walks_a_fresh_project_to_a_200_from_a_real_idp(project):
    s = sections()
    project.append("settings.py", real_idp_settings())
    (project.path / "mysite" / "views.py").write_text(s["views"])
    project.append("urls.py", s["urls"])
    blocks = shell_blocks()
    project.run_block(blocks[0])  # migrate; runserver
    started = project.run_block(blocks[2])  # idp.sh start
    assert f"issuer:        http://127.0.0.1:{project.idp_port}" in started
    assert f'"ISSUER": "http://127.0.0.1:{project.idp_port}"' in project.localize(s["real-idp"])
    out = project.run_block(blocks[3])  # idp.sh token; curl; idp.sh stop
    assert_answer_as_commented(blocks[3], out)
    assert re.search(r"stopped \(pid \d+\)$", out.strip()), out


def test_the_page_has_the_shell_blocks_these_tests_run_and_includes_every_section():
    blocks = shell_blocks()
    assert len(blocks) == 4
    assert "runserver" in blocks[0] and "mint_token" in blocks[1]
    assert "idp.sh start" in blocks[2] and "idp.sh token" in blocks[3]
    included = re.findall(r'^--8<-- "adopting_example\.py:([\w-]+)"$', PAGE.read_text(), re.MULTILINE)
    assert sorted(included) == sorted(sections())


def test_the_closing_figures_are_the_counted_lines():
    s = sections()
    dev_settings = code_lines(s["settings"]) + code_lines(s["devissuer-settings"])
    real_settings = code_lines(real_idp_settings())
    dev_urls = code_lines(s["urls"]) + code_lines(s["devissuer-urls"])
    page = {
        k: int(v)
        for k, v in re.findall(r"^\| (the development issuer|a real IdP)[^|]*\| \*\*(\d+)\*\*", PAGE.read_text(), re.M)
    }
    urls = {
        k: int(v)
        for k, v in re.findall(
            r"^\| (the development issuer|a real IdP)[^|]*\| \*\*\d+\*\* \| (\d+) \|", PAGE.read_text(), re.M
        )
    }
    assert page == {"the development issuer": dev_settings, "a real IdP": real_settings}
    assert urls == {"the development issuer": dev_urls, "a real IdP": code_lines(s["urls"])}
    assert f"a view ({code_lines(s['views'])} lines)" in PAGE.read_text()


class Probe(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({})


@pytest.mark.parametrize(
    ("classes", "status", "challenge"),
    [
        ([SessionAuthentication, JWKSAuthentication], 403, None),
        ([JWKSAuthentication, SessionAuthentication], 401, 'Bearer realm="api"'),
    ],
)
def test_drf_answers_an_anonymous_caller_with_the_first_classs_challenge(oidc_settings, classes, status, challenge):
    # The page's reason for the order: DRF takes the 401 challenge from the first class only.
    view = Probe.as_view(authentication_classes=classes)
    response = view(APIRequestFactory().get("/probe"))
    assert response.status_code == status
    assert response.get("WWW-Authenticate") == challenge
