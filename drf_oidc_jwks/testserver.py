"""The loopback identity provider of :mod:`drf_oidc_jwks.testing`: a real HTTP server with knobs for faults.

Serves a :class:`~drf_oidc_jwks.testing.TestIssuer`'s JWKS and discovery document on 127.0.0.1, and any
path an override says: a status, a body, a delay, or a drip of one byte every so often (status line and
headers too), with or without ``Content-Length``, as a struggling or hostile identity provider answers.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

__all__ = ["JWKSServer", "Response"]


class ServedIssuer(Protocol):
    """What the server serves of an issuer (a :class:`~drf_oidc_jwks.testing.TestIssuer`)."""

    def jwks(self) -> dict[str, Any]: ...

    def discovery_document(self) -> dict[str, Any]: ...


@dataclass
class Response:
    """One answer of :class:`JWKSServer`: status, body, headers, and how slowly to send them.

    ``delay`` waits before answering; ``drip`` sends the body one byte every ``drip`` seconds (with
    ``drip_head`` the status line and headers too), as a struggling or hostile identity provider can;
    ``content_length=False`` leaves ``Content-Length`` out, so the body ends when the connection closes.
    """

    status: int = 200
    body: bytes | Callable[[], bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0
    drip_head: bool = False
    content_length: bool = True


class _QuietServer(ThreadingHTTPServer):
    owner: JWKSServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (its deadline, a size limit) is expected here, not an error to print.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Answers as its :class:`JWKSServer` says: overrides, delays, drips."""

    server: _QuietServer

    protocol_version = "HTTP/1.1"

    @property
    def owner(self) -> JWKSServer:
        return self.server.owner

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.owner._lock:
            self.owner._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:  # noqa: N802
        self._serve(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = self.headers.get("Content-Length", "0")
        self._serve(self.rfile.read(int(length)) if length.isdigit() else b"")

    def _serve(self, request_body: bytes) -> None:
        path = self.path.split("?")[0]
        with self.owner._lock:
            self.owner.hits[path] += 1
            self.owner.last_headers[path] = dict(self.headers.items())
            self.owner.last_bodies[path] = request_body
            self.owner.in_flight += 1
            self.owner.max_in_flight = max(self.owner.max_in_flight, self.owner.in_flight)
        try:
            response = self.owner.overrides.get(path) or self.owner._default(path)
            response = self.owner.revalidated(response, dict(self.headers.items()))
            delay = response.delay or self.owner.delay
            if delay:
                time.sleep(delay)
            self._answer(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up (its deadline, or a size limit)
        finally:
            with self.owner._lock:
                self.owner.in_flight -= 1

    def _answer(self, response: Response) -> None:
        body = response.body() if callable(response.body) else response.body
        headers = dict(response.headers)
        if response.content_length:
            headers.setdefault("Content-Length", str(len(body)))
        else:
            headers["Connection"] = "close"  # HTTP/1.1 without a length: the body ends at the close
        if headers.get("Connection", "").lower() == "close":
            self.close_connection = True
        phrase = self.responses.get(response.status, ("",))[0]
        lines = [f"HTTP/1.1 {response.status} {phrase}", *(f"{k}: {v}" for k, v in headers.items())]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.owner._send(self.wfile, head, response.drip if response.drip_head else 0.0)
        self.owner._send(self.wfile, body, response.drip)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class JWKSServer:
    """A real HTTP server on 127.0.0.1 serving an issuer's JWKS, with knobs for faults.

    ``hits["/jwks.json"]`` counts requests per path; ``max_in_flight`` is the most
    requests served at once; ``respond(path, Response(...))`` overrides a path.
    """

    def __init__(self, issuer: ServedIssuer | None = None) -> None:
        self.issuer = issuer
        self.hits: Counter[str] = Counter()
        #: The request headers of the last request per path (e.g. the bearer token a userinfo call sent).
        self.last_headers: dict[str, dict[str, str]] = {}
        #: The request body of the last request per path (a POSTed form, e.g.).
        self.last_bodies: dict[str, bytes] = {}
        self.overrides: dict[str, Response] = {}
        self.delay = 0.0
        self.cache_control: str | None = None
        #: When True, the JWKS is served with an ``ETag`` and ``Last-Modified`` and answers a matching
        #: ``If-None-Match`` (or, without one, ``If-Modified-Since``) with 304; ``not_modified`` counts those.
        self.conditional = False
        self.not_modified = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def respond(self, path: str, response: Response | None) -> None:
        """Answer ``path`` with ``response`` (None restores the default)."""
        if response is None:
            self.overrides.pop(path, None)
        else:
            self.overrides[path] = response

    def total(self, path: str = "/jwks.json") -> int:
        with self._lock:
            return self.hits[path]

    def _send(self, wfile: Any, data: bytes, drip: float) -> None:
        """Write ``data`` at once, or one byte every ``drip`` seconds until done or the server stops."""
        if not drip:
            wfile.write(data)
            return
        for index in range(len(data)):
            if self._httpd is None:
                raise BrokenPipeError("server stopped")
            wfile.write(data[index : index + 1])
            time.sleep(drip)

    def _default(self, path: str) -> Response:
        if self.issuer is not None and path == "/jwks.json":
            headers = {"Content-Type": "application/json"}
            if self.cache_control:
                headers["Cache-Control"] = self.cache_control
            return Response(200, json.dumps(self.issuer.jwks()).encode(), headers)
        if self.issuer is not None and path == "/.well-known/openid-configuration":
            document = json.dumps(self.issuer.discovery_document()).encode()
            return Response(200, document, {"Content-Type": "application/json"})
        return Response(404, b"not found")

    def revalidated(self, response: Response, request_headers: dict[str, str]) -> Response:
        """With ``conditional`` on: add validators to a 200 JWKS answer, or answer 304 when they match."""
        if not self.conditional or response.status != 200:
            return response
        body = response.body() if callable(response.body) else response.body
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        modified = "Mon, 01 Jan 2024 00:00:00 GMT"
        asked = {k.lower(): v for k, v in request_headers.items()}
        match = (
            asked["if-none-match"] == etag if "if-none-match" in asked else asked.get("if-modified-since") == modified
        )
        headers = {**response.headers, "ETag": etag, "Last-Modified": modified}
        if match:
            with self._lock:
                self.not_modified += 1
            kept = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            return Response(304, b"", kept, response.delay, response.drip, response.drip_head)
        return Response(200, body, headers, response.delay, response.drip, response.drip_head, response.content_length)

    def start(self) -> None:
        """Listen on 127.0.0.1 (a free port) in a background thread."""
        self._httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, closing kept-alive connections too: a stopped IdP must be unreachable."""
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
                pass  # already closed by the client

    def __enter__(self) -> JWKSServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
