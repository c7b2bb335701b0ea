"""HTTP to the identity provider: one JSON exchange within one deadline, a size limit, same-origin redirects.

Used for discovery, the JWKS and userinfo (and what later talks to the IdP, such as introspection).
Built on :mod:`http.client` rather than requests: a deadline over the *whole* exchange needs every socket
read to get only the time left, and per-read timeouts cannot give that. A server dripping one byte every
0.2 s never trips a 1 s read timeout and held a worker for 8 s (connect, status line and headers, body,
with or without ``Content-Length``: all of it is now bounded by ``timeout``). Proxies and ``.netrc`` from
the environment are never used.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote_plus, urlencode, urljoin, urlsplit

from .conf import url_allowed
from .exceptions import KeySourceError
from .tracing import outbound

#: Redirects followed per exchange, each to the same scheme, host and port only.
MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)
_READ_SIZE = 65536
_ACCEPT = "application/json, application/jwk-set+json"


@dataclass(frozen=True)
class HTTPResult:
    """One answer: its status, headers (names lower-cased) and body parsed as JSON (None when it is not JSON)."""

    status: int
    headers: Mapping[str, str]
    document: Any
    is_json: bool


@dataclass(frozen=True)
class FetchResult:
    """A JSON document fetched with GET, with the freshness its ``Cache-Control`` asks for."""

    document: Any
    max_age: float | None
    #: 304 when a conditional request found the JWKS unchanged (``document`` is then None).
    status: int = 200
    #: The validators to send back next time (``If-None-Match`` / ``If-Modified-Since``).
    etag: str | None = None
    last_modified: str | None = None


class Fetcher(Protocol):
    """How the JWKS client fetches (injectable: tests and ``oidc_check`` pass their own)."""

    def __call__(self, url: str, *, timeout: float, max_bytes: int, allow_insecure_http: bool) -> FetchResult: ...


_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(no-cache|no-store)(?:$|[,\s=])", re.IGNORECASE)


def parse_max_age(cache_control: str | None) -> float | None:
    """Return the freshness lifetime a ``Cache-Control`` header asks for, or None."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


# ---------------------------------------------------------------------------
# Sockets that know the deadline


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


class _DeadlineSocket:
    """A connected socket whose every send and receive may take only the time left before the deadline.

    Closing waits for the response's reader, as :meth:`socket.socket.makefile` does: http.client closes
    the connection before reading a body that ends with it.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._readers = 0
        self._closed = False

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_left(self._deadline))
        self._sock.sendall(data)

    def recv_into(self, buffer: Any) -> int:
        self._sock.settimeout(_left(self._deadline))
        return self._sock.recv_into(buffer)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_Reader(self))

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closed and self._readers <= 0:
            self._sock.close()

    def close(self) -> None:
        self._closed = True
        if self._readers <= 0:
            self._sock.close()


class _Reader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.reader_closed()
        super().close()


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _tls
    if _tls is None:
        try:
            import certifi  # requests' CA bundle, so the trusted roots stay what they were

            _tls = ssl.create_default_context(cafile=certifi.where())
        except ImportError:  # pragma: no cover - certifi comes with requests
            _tls = ssl.create_default_context()
    return _tls


def _connect(host: str, port: int, deadline: float, tls: ssl.SSLContext | None) -> socket.socket:
    last: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _name, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock.settimeout(_left(deadline))  # the handshake as a whole gets the time left
                return tls.wrap_socket(sock, server_hostname=host)
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    raise last


class _Connection(http.client.HTTPConnection):
    """One request on a fresh connection (no pool: a stopped IdP is unreachable, not answered from a socket)."""

    def __init__(self, host: str, port: int, deadline: float, tls: ssl.SSLContext | None) -> None:
        super().__init__(host, port)
        self._deadline = deadline
        self._tls = tls

    def connect(self) -> None:
        self.sock = _DeadlineSocket(_connect(self.host, self.port, self._deadline, self._tls), self._deadline)


# ---------------------------------------------------------------------------
# One exchange


def basic_credentials(user: str, password: str) -> str:
    """An ``Authorization: Basic`` value; RFC 6749 2.3.1 form-encodes the client id and secret first."""
    raw = f"{quote_plus(user)}:{quote_plus(password)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def request_json(
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    allow_insecure_http: bool,
    headers: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    basic_auth: tuple[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
) -> HTTPResult:
    """Send one request (GET, or POST with ``form`` data) and read its JSON answer, all within ``timeout`` s.

    Any status is returned; KeySourceError when no answer could be had (URL refused, connection,
    deadline, more than ``max_bytes``, an unfollowable redirect).
    """
    deadline = time.monotonic() + timeout
    sent = {"Accept": _ACCEPT, **(headers or {})}
    if basic_auth is not None:
        sent["Authorization"] = basic_credentials(*basic_auth)
    body = None
    if form is not None:
        body = urlencode(form).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    for _hop in range(MAX_REDIRECTS + 1):
        if not url_allowed(url, allow_insecure_http):
            raise KeySourceError("URL not allowed (https required)")
        with outbound(method, url) as call:
            status, answer, payload = _exchange(method, url, sent, body, deadline, max_bytes, tls)
            call.answered(status)
        if status not in _REDIRECTS:
            return _result(status, answer, payload)
        target = urljoin(url, answer.get("location", ""))
        a, b = urlsplit(url), urlsplit(target)
        if (a.scheme, a.hostname, a.port) != (b.scheme, b.hostname, b.port):
            raise KeySourceError("redirect to another host refused")
        if status in (301, 302, 303) and method != "GET":
            method, body = "GET", None  # as browsers and requests do; 307/308 keep the method and body
            sent.pop("Content-Type", None)
        url = target
    raise KeySourceError("too many redirects")


def _result(status: int, headers: dict[str, str], payload: bytes) -> HTTPResult:
    try:
        return HTTPResult(status, headers, json.loads(payload), True)
    except (ValueError, RecursionError):
        return HTTPResult(status, headers, None, False)


def _exchange(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    deadline: float,
    max_bytes: int,
    tls: ssl.SSLContext | None,
) -> tuple[int, dict[str, str], bytes]:
    """One request and its answer, fully read; every failure is a KeySourceError naming its kind."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise KeySourceError("URL not allowed (bad port)") from None
    context = (tls or _tls_context()) if parts.scheme == "https" else None
    connection = _Connection(parts.hostname or "", port, deadline, context)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    response: http.client.HTTPResponse | None = None
    try:
        _left(deadline)
        try:
            connection.connect()
        except TimeoutError:
            raise
        except ssl.SSLError:
            raise KeySourceError("request failed: SSLError") from None
        except OSError:
            raise KeySourceError("request failed: ConnectionError") from None
        connection.request(method, path, body=body, headers=dict(headers))
        response = connection.getresponse()
        answer = {name.lower(): value for name, value in _merged(response.getheaders())}
        if response.status in _REDIRECTS:
            return response.status, answer, b""
        declared = answer.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise KeySourceError(f"response larger than {max_bytes} bytes")
        return response.status, answer, _read_body(response, max_bytes)
    except TimeoutError:
        raise KeySourceError("timed out") from None
    except (OSError, http.client.HTTPException) as exc:
        raise KeySourceError(f"reading failed: {type(exc).__name__}") from exc
    finally:
        if response is not None:
            response.close()
        connection.close()


def _merged(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        seen[key] = f"{seen[key]}, {value}" if key in seen else value
    return list(seen.items())


def _read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    body = bytearray()
    while True:
        chunk = response.read(min(_READ_SIZE, max_bytes + 1 - len(body)))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise KeySourceError(f"response larger than {max_bytes} bytes")


def http_fetch(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    allow_insecure_http: bool,
    headers: Mapping[str, str] | None = None,
) -> FetchResult:
    """GET a JSON document within ``timeout`` seconds in all, at most ``max_bytes`` long; only a 200 is an answer.

    A 304 is one too when ``headers`` made the request conditional (``If-None-Match``/``If-Modified-Since``).
    """
    result = request_json(
        "GET", url, timeout=timeout, max_bytes=max_bytes, allow_insecure_http=allow_insecure_http, headers=headers
    )
    max_age = parse_max_age(result.headers.get("cache-control"))
    etag, modified = result.headers.get("etag"), result.headers.get("last-modified")
    conditional = headers is not None and any(h.lower().startswith("if-") for h in headers)
    if result.status == 304 and conditional:
        return FetchResult(None, max_age, 304, etag, modified)
    if result.status != 200:
        raise KeySourceError(f"HTTP {result.status}")
    if not result.is_json:
        raise KeySourceError("response is not JSON")
    return FetchResult(result.document, max_age, 200, etag, modified)
