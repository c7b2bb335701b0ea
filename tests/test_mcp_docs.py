"""docs/mcp.md: the MCP server set-up it includes (docs/examples/mcp_example.py) answers as the page says."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drf_oidc_jwks.challenges import parse_challenges

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE = DOCS / "examples" / "mcp_example.py"
METADATA = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"


@pytest.fixture
def example(settings: Any, oidc_settings: Any, issuer: Any) -> Iterator[Any]:
    """The example module as the URLconf, its settings with the test issuer in place of ISSUER."""
    spec = importlib.util.spec_from_file_location("mcp_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["mcp_example"] = module
    settings.ROOT_URLCONF = "mcp_example"
    documented = {k: v for k, v in module.DRF_OIDC_JWKS.items() if k != "ISSUER"}
    issuer.audience = documented["AUDIENCE"]
    oidc_settings(**documented, DPOP="allowed")
    yield module
    sys.modules.pop("mcp_example", None)


def rpc(api: Any, message: dict[str, Any], token: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return api.post("/mcp", message, format="json", **headers)


def tool(name: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {}}}


def assert_documented(response: Any) -> None:
    """docs/mcp.md shows this challenge exactly as sent."""
    line = f"WWW-Authenticate: {response['WWW-Authenticate']}\n"
    assert line in (DOCS / "mcp.md").read_text(), line


def bearer_params(response: Any) -> dict[str, str]:
    challenges = parse_challenges(response["WWW-Authenticate"])
    assert [c.scheme for c in challenges][0] == "Bearer"
    return challenges[0].params


def test_the_page_includes_every_section_of_its_example_module() -> None:
    page = (DOCS / "mcp.md").read_text()
    included = re.findall(r'^--8<-- "mcp_example\.py:([\w-]+)"$', page, re.MULTILINE)
    sections = re.findall(r"# --8<-- \[start:([\w-]+)\]", EXAMPLE.read_text())
    assert sorted(included) == sorted(sections) == ["settings", "urls", "view"]


def test_the_metadata_names_the_resource_its_issuer_and_every_scope(example, issuer, api) -> None:
    body = api.get("/.well-known/oauth-protected-resource/mcp").json()
    [shown] = re.findall(r"```json\n(.*?)```", (DOCS / "mcp.md").read_text(), re.S)
    # The page's document, but for the issuer: the test's runs on loopback.
    assert body == {**json.loads(shown), "authorization_servers": [issuer.issuer]}


def test_a_call_without_a_token_is_told_the_scope_of_that_message_and_where_the_metadata_is(example, api) -> None:
    anonymous = rpc(api, tool("write_file"))
    assert anonymous.status_code == 401
    assert bearer_params(anonymous) == {"realm": "api", "scope": "files:write", "resource_metadata": METADATA}
    assert bearer_params(rpc(api, {"jsonrpc": "2.0", "id": 1, "method": "initialize"}))["scope"] == "mcp"
    assert 'DPoP algs="' in anonymous["WWW-Authenticate"]
    assert_documented(anonymous)


def test_broader_scopes_imply_narrower_ones_and_the_403_names_only_what_this_call_needs(example, issuer, api) -> None:
    writer, reader = issuer.token(scope="files:write"), issuer.token(scope="files:read")
    assert rpc(api, tool("search_files"), writer).status_code == 200  # files:write implies files:read
    assert rpc(api, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, reader).status_code == 200  # and mcp
    refused = rpc(api, tool("write_file"), reader)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    assert bearer_params(refused) == {
        "realm": "api",
        "error": "insufficient_scope",
        "scope": "files:write",
        "error_description": "Requires scope: files:write.",
        "resource_metadata": METADATA,
    }
    assert_documented(refused)


def test_audiences_compare_by_the_canonical_uri_rule(example, issuer, api) -> None:
    upper = issuer.token(scope="mcp", aud="https://MCP.example.com/mcp")
    slash = issuer.token(scope="mcp", aud="https://mcp.example.com/mcp/")
    ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
    assert rpc(api, ping, upper).status_code == 200
    refused = rpc(api, ping, slash)
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_audience")
