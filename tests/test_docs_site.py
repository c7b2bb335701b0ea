"""scripts/docs.sh: the site builds (--strict), can be kept or served, and loads nothing from a CDN."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def pinned(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", (ROOT / "scripts" / "docs.sh").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    result = subprocess.run(
        ["bash", "scripts/docs.sh", "--keep", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"kept in {out}" in result.stdout
    return out


def test_the_flow_diagram_is_rendered_by_the_sites_own_mermaid(site):
    page = (site / "flow" / "index.html").read_text()
    assert '<pre class="mermaid">' in page
    assert '<script src="../javascripts/mermaid.min.js">' in page
    bundled = (site / "javascripts" / "mermaid.min.js").read_bytes()
    assert hashlib.sha256(bundled).hexdigest() == pinned("MERMAID_SHA256")


def test_no_page_loads_a_script_stylesheet_or_font_from_elsewhere(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 19
    for page in pages:
        html = page.read_text()
        remote = re.findall(r"<(?:script|link)[^>]+(?:src|href)=\"(?:https?:)?//[^\"]+\"", html)
        assert not remote, (page, remote)


def test_included_examples_are_rendered_and_wide_code_keeps_clear_of_the_copy_button(site):
    for page in site.rglob("*.html"):
        assert "--8&lt;--" not in page.read_text() and '--8<-- "' not in page.read_text(), page
    assert "SWAGGER_UI_OAUTH2_CONFIG" in (site / "openapi" / "index.html").read_text()
    index = (site / "index.html").read_text()
    assert '<link rel="stylesheet" href="stylesheets/extra.css">' in index
    css = (site / "stylesheets" / "extra.css").read_text()
    assert re.search(r"\.md-code__nav \{\s*top: -", css)


def test_serve_answers_on_the_given_address_until_stopped():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["bash", "scripts/docs.sh", "serve", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        response = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/flow/", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert response is not None and response.status_code == 200
        assert "How a request is verified" in response.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
