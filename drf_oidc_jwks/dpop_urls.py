"""The URL form a DPoP proof's ``htu`` and the request URL are compared in (RFC 9449 4.3, RFC 3986 6.2.2-6.2.3).

Query and fragment are dropped. Scheme and host are lower-cased, the scheme's default port is dropped and an
empty path becomes ``/``. The path is compared as Django routes it: every percent-encoded octet is decoded
(Django's ``PATH_INFO`` arrives decoded, so ``/a%3Bb`` and ``/a;b`` reach the same view), dot segments are
removed, and one fixed encoding is applied, so ``%7e``, ``%7E`` and ``~`` all compare equal.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from django.utils.encoding import escape_uri_path

from .conf import register_reset

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: RFC 3986 3.3 pchar (unreserved, sub-delims, ":" and "@") plus "/": left as they are; all else percent-encoded.
_PATH_SAFE = "-._~!$&'()*+,;=:@/"
MAX_URL_LENGTH = 4096


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4: resolve ``.`` and ``..`` segments of an absolute path."""
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    # A trailing "." or ".." leaves a directory: keep its slash.
    if path.rsplit("/", 1)[-1] in (".", ".."):
        output.append("")
    return "/" + "/".join(output)


def normalized_htu(url: str) -> str:
    """Return ``url`` without query and fragment, normalised for comparison; ValueError when it is no http(s) URL."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise ValueError("not a URL of a sensible length")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise ValueError("control characters or spaces in the URL")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("not an http or https URL")
    if "@" in parts.netloc:
        raise ValueError("credentials in the URL")
    host = parts.hostname
    if not host or not host.isascii() or "%" in host:
        raise ValueError("no host, or a host that is not plain ASCII")
    port = parts.port  # ValueError for a port that is not a number in range
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    decoded = unquote(parts.path, errors="surrogateescape")
    if decoded and not decoded.startswith("/"):
        raise ValueError("relative path")  # urlsplit gives none with a host; kept as a guard
    path = remove_dot_segments(decoded) if decoded else "/"
    return f"{scheme}://{netloc}{quote(path, safe=_PATH_SAFE, errors='surrogateescape')}"


#: :func:`normalized_htu`, memoised: it is pure, and the same few URLs come back on every request. (Plain
#: functions wrapped here rather than ``@lru_cache`` on the definitions: mutmut mutates no decorated function.)
normalize_htu = functools.lru_cache(maxsize=1024)(normalized_htu)


def absolute_url(scheme: str, host: str, path: str) -> str:
    """The request's absolute URL without query: what ``build_absolute_uri()`` starts with, for ``htu``.

    ``scheme`` and ``host`` as Django derives them (``request.scheme``, ``request.get_host()``: proxy settings and
    ``ALLOWED_HOSTS`` apply), ``path`` as Django routes it (``request.path``).
    """
    return f"{scheme}://{host}{escape_uri_path(path)}"


#: :func:`absolute_url`, memoised: the same few (scheme, host, path) come back on every request.
request_url = functools.lru_cache(maxsize=1024)(absolute_url)


#: (X-Forwarded-Host, Host) header values -> what ``get_host()`` answered for them; only accepted hosts are kept.
_HOSTS: dict[tuple[Any, Any], str] = {}
_HOSTS_MAX = 256
#: The settings ``get_host()`` reads besides the request's headers: a change forgets the answers kept.
_HOST_SETTINGS = frozenset({"ALLOWED_HOSTS", "USE_X_FORWARDED_HOST", "USE_X_FORWARDED_PORT", "DEBUG"})


def request_host(request: Any) -> str:
    """``request.get_host()`` (proxy settings and ``ALLOWED_HOSTS`` apply), checked once per header value.

    Django's answer depends only on the ``Host`` and ``X-Forwarded-Host`` headers and the settings above; a
    host it refuses raises ``DisallowedHost`` on every request, as before, and is never kept.
    """
    meta = request.META
    key = (meta.get("HTTP_X_FORWARDED_HOST"), meta.get("HTTP_HOST"))
    host = _HOSTS.get(key) if key[1] is not None else None
    if host is None:
        host = request.get_host()
        if key[1] is not None:  # without a Host header Django rebuilds it from the server's name and port
            if len(_HOSTS) >= _HOSTS_MAX:
                _HOSTS.clear()
            _HOSTS[key] = host
    return host


register_reset("dpop_urls.hosts", _HOSTS.clear, django_settings=_HOST_SETTINGS)
