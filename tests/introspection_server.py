"""A real RFC 7662 introspection endpoint on 127.0.0.1 for the tests, with knobs for faults.

``server.tokens[token] = {...}`` makes a token active with that answer (``active: true`` added);
every other token is inactive. Client authentication is checked like an IdP does (Basic or
form fields); ``server.requests`` counts introspection calls and ``server.last`` keeps the last
request's headers and form. ``server.override = Response(...)`` answers every call with it.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    #: Seconds between bytes of the body (a server dripping its answer).
    drip: float = 0.0


class IntrospectionServer:
    def __init__(self, client_id: str = "api", client_secret: str = "s3cret:/&=") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.tokens: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.last: dict[str, Any] = {}
        self.override: Response | None = None
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        return self.base_url + "/introspect"

    def _authenticated(self, headers: dict[str, str], form: dict[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return (unquote(cid), unquote(secret)) == (self.client_id, self.client_secret)
        return (form.get("client_id"), form.get("client_secret")) == (self.client_id, self.client_secret)

    def answer(self, headers: dict[str, str], form: dict[str, str]) -> Response:
        if not self._authenticated(headers, form):
            return Response(401, b'{"error": "invalid_client"}', {"Content-Type": "application/json"})
        token = form.get("token", "")
        found = self.tokens.get(token)
        body = {"active": True, **found} if found is not None else {"active": False}
        return Response(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._connections.add(self.connection)

            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/.well-known/openid-configuration":
                    self._send(Response(404, b"not found"))
                    return
                doc = {"issuer": server.base_url, "jwks_uri": server.base_url + "/jwks.json"}
                doc["introspection_endpoint"] = server.url
                self._send(Response(200, json.dumps(doc).encode(), {"Content-Type": "application/json"}))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                headers = dict(self.headers.items())
                with server._lock:
                    server.requests += 1
                    server.last = {"headers": headers, "form": form, "path": self.path}
                self._send(server.override or server.answer(headers, form))

            def _send(self, response: Response) -> None:
                if response.delay:
                    time.sleep(response.delay)
                try:
                    self.send_response(response.status)
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    if response.drip:
                        for byte in response.body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(response.drip)
                    else:
                        self.wfile.write(response.body)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def introspection_server(**kwargs: Any) -> Iterator[IntrospectionServer]:
    server = IntrospectionServer(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
