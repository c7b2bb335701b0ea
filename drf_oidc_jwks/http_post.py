"""POST a form and read a JSON answer, within one deadline for the whole exchange.

TO BE REPLACED AT MERGE by the shared fetcher's POST support (the new http module); kept to the same
limits as ``jwks.http_fetch``: https (http on loopback or when allowed), no redirect to another host,
at most ``max_bytes`` read, no proxy or netrc from the environment. Unlike a per-read socket timeout,
a watchdog closes the connection at the deadline, so a server dripping bytes cannot hold a worker
past ``timeout``.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import certifi

from .conf import url_allowed
from .exceptions import KeySourceError

_CONTEXT: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _CONTEXT
    if _CONTEXT is None:
        # The CA bundle requests uses, so key fetches and introspection trust the same roots.
        _CONTEXT = ssl.create_default_context(cafile=certifi.where())
    return _CONTEXT


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _abort(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def http_post(
    url: str,
    *,
    data: Mapping[str, str],
    headers: Mapping[str, str],
    timeout: float,
    max_bytes: int,
    allow_insecure_http: bool,
) -> Any:
    """POST ``data`` form-encoded; return the JSON of a 200 answer or raise KeySourceError.

    Same-origin 307/308 redirects are followed (three at most); any other redirect is refused.
    """
    deadline = time.monotonic() + timeout
    body = urlencode(dict(data)).encode("ascii")
    for _hop in range(4):
        status, location, document = _exchange(url, body, headers, deadline, max_bytes, allow_insecure_http)
        if status in (307, 308):
            target = urljoin(url, location or "")
            a, b = urlsplit(url), urlsplit(target)
            if (a.scheme, a.hostname, a.port) != (b.scheme, b.hostname, b.port):
                raise KeySourceError("redirect to another host refused")
            url = target
            continue
        if status in (301, 302, 303):
            raise KeySourceError(f"HTTP {status}: a redirect that would drop the POST is refused")
        if status != 200:
            raise KeySourceError(f"HTTP {status}")
        return document
    raise KeySourceError("too many redirects")


def _exchange(
    url: str, body: bytes, headers: Mapping[str, str], deadline: float, max_bytes: int, allow_insecure_http: bool
) -> tuple[int, str | None, Any]:
    if not url_allowed(url, allow_insecure_http):
        raise KeySourceError("URL not allowed (https required)")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise KeySourceError("timed out")
    parts = urlsplit(url)
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, timeout=remaining, context=_tls())
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=remaining)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    watchdog = threading.Timer(remaining, _abort, (conn,))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
        response = conn.getresponse()
        if response.status != 200:
            return response.status, response.getheader("Location"), None
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise KeySourceError(f"response larger than {max_bytes} bytes")
        received = bytearray()
        while chunk := response.read1(16384):
            received += chunk
            if len(received) > max_bytes:
                raise KeySourceError(f"response larger than {max_bytes} bytes")
        if time.monotonic() >= deadline:
            raise KeySourceError("timed out")
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline:
            raise KeySourceError("timed out") from None
        raise KeySourceError(f"request failed: {type(exc).__name__}") from None
    finally:
        watchdog.cancel()
        conn.close()
    try:
        document = json.loads(bytes(received), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise KeySourceError("response is not JSON") from None
    return 200, None, document
