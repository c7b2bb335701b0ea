"""The MCP server set-up of docs/mcp.md: the page includes the ``[start:name]`` sections verbatim
(pymdownx.snippets), and tests/test_mcp_docs.py serves this module's view with these settings and checks the
answers the page describes.

``handle_jsonrpc`` stands for the MCP SDK or package that answers the JSON-RPC messages: this library does
the resource-server half (the token, the challenges, the metadata), not the protocol.
"""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from drf_oidc_jwks.permissions import HasScope


def handle_jsonrpc(message: Any, claims: Any) -> dict[str, Any]:
    """A stand-in for the MCP message handler: echoes the method and the caller."""
    return {"jsonrpc": "2.0", "id": message.get("id"), "result": {"method": message.get("method"), "sub": claims.sub}}


# --8<-- [start:settings]
DRF_OIDC_JWKS = {
    "ISSUER": "https://auth.example.com",
    # The MCP server's canonical URI: the resource clients name (RFC 8707), the token's aud, the metadata's resource.
    "AUDIENCE": "https://mcp.example.com/mcp",
    "RESOURCE": "https://mcp.example.com/mcp",
    "SCOPE_HIERARCHY": {
        "files:write": ["files:read"],  # a token granted files:write may also read
        "files:read": ["mcp"],
    },
}
# --8<-- [end:settings]


# --8<-- [start:view]
#: The scope each tool needs; every other message (initialize, tools/list, ...) needs "mcp".
TOOL_SCOPES = {"search_files": "files:read", "write_file": "files:write"}


class MCPView(APIView):
    permission_classes = [HasScope]  # the requirement comes from get_required_scopes, per message

    def get_required_scopes(self, request: Request) -> list[str]:
        message = request.data if isinstance(request.data, dict) else {}
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        if message.get("method") == "tools/call":
            return [TOOL_SCOPES.get(params.get("name"), "mcp")]
        return ["mcp"]

    def post(self, request: Request) -> Response:
        return Response(handle_jsonrpc(request.data, request.auth))


# --8<-- [end:view]

# --8<-- [start:urls]
urlpatterns = [
    path("", include("drf_oidc_jwks.urls")),  # /.well-known/oauth-protected-resource/mcp (RFC 9728)
    path("mcp", MCPView.as_view()),
]
# --8<-- [end:urls]
