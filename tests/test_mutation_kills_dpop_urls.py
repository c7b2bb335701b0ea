"""The URL form DPoP compares ``htu`` in: dot segments, the length and character bounds, host, port and path rules.

Written against surviving mutants of drf_oidc_jwks/dpop_urls.py (docs/security.md, "Mutation testing"). The
plain functions are called (``normalized_htu``, ``absolute_url``), and the memoised names checked to give the same
answers: a memo filled before a mutant is switched on would answer for the unmutated code.
"""

from __future__ import annotations

from typing import Any

import pytest

from drf_oidc_jwks.dpop_urls import (
    MAX_URL_LENGTH,
    absolute_url,
    normalize_htu,
    normalized_htu,
    remove_dot_segments,
    request_url,
)


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("/", "/"),
        ("/a", "/a"),
        ("/a/b/c/./../../g", "/a/g"),  # RFC 3986 5.2.4's own example
        ("/a/b/../c", "/a/c"),
        ("/a/./b", "/a/b"),
        ("/a/.", "/a/"),
        ("/a/b/..", "/a/"),
        ("/a/..", "/"),
        ("/..", "/"),
        ("/.", "/"),
        ("/../a", "/a"),
        ("/a/b/c/../../..", "/"),
        ("/a/b/", "/a/b/"),
        ("/a//b", "/a//b"),
        ("/..a/b./.c", "/..a/b./.c"),  # dots inside a segment are no dot segments
        ("/a/.../b", "/a/.../b"),
    ],
)
def test_dot_segments_resolve_as_rfc_3986_says(path: str, resolved: str) -> None:
    assert remove_dot_segments(path) == resolved


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("HTTPS://API.Example.COM/Api/Me", "https://api.example.com/Api/Me"),
        ("https://h", "https://h/"),
        ("https://h?x=1#f", "https://h/"),
        ("https://h/a/./b/../c?q", "https://h/a/c"),
        ("https://h/a/..", "https://h/"),
        ("https://h:443/x", "https://h/x"),
        ("http://h:80/x", "http://h/x"),
        ("http://h:443/x", "http://h:443/x"),
        ("https://h:80/x", "https://h:80/x"),
        ("https://h:0/x", "https://h:0/x"),
        ("https://h:8443/x", "https://h:8443/x"),
        ("http://[::1]:8000/x", "http://[::1]:8000/x"),
        ("http://[::1]/x", "http://[::1]/x"),
        ("https://h/a!b", "https://h/a!b"),  # "!" (0x21) is the first character that is no control or space
        ("https://h/a\x80b", "https://h/a%C2%80b"),  # 0x80 is past DEL: encoded, not refused
        ("https://h/%7e%7E~", "https://h/~~~"),
        ("https://h/a%20b", "https://h/a%20b"),
        ("https://h/a%2Fb", "https://h/a/b"),  # decoded as Django routes it
        ("https://h/%ff", "https://h/%FF"),  # not UTF-8: the octet itself, kept
        ("https://h/caf%C3%A9", "https://h/caf%C3%A9"),
        ("https://h/café", "https://h/caf%C3%A9"),
        ("https://h/a;b=c,d:e@f$g&h'i(j)k*l+m", "https://h/a;b=c,d:e@f$g&h'i(j)k*l+m"),
        ('https://h/a"b<c>d', "https://h/a%22b%3Cc%3Ed"),
    ],
)
def test_an_htu_normalises_to_one_form(url: str, normal: str) -> None:
    assert normalized_htu(url) == normal
    assert normalize_htu(url) == normal


def test_a_url_of_exactly_max_url_length_normalises_and_one_more_character_does_not() -> None:
    prefix = "https://h/"
    longest = prefix + "a" * (MAX_URL_LENGTH - len(prefix))
    assert normalized_htu(longest) == longest
    with pytest.raises(ValueError, match="sensible length"):
        normalized_htu(longest + "a")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "sensible length"),
        (None, "sensible length"),
        (b"https://h/", "sensible length"),
        ("https://h/a\x00b", "control characters"),
        ("https://h/a\x1fb", "control characters"),
        ("https://h/a b", "control characters"),
        ("https://h/a\x7fb", "control characters"),
        ("ftp://h/x", "not an http"),
        ("h/x", "not an http"),
        ("https://user@h/x", "credentials"),
        ("https://u:p@h/x", "credentials"),
        ("https:///x", "no host"),
        ("https://hé.example/x", "no host"),
        ("https://h%41/x", "no host"),
        ("https://h:99999/x", "out of range"),
    ],
)
def test_what_is_no_plain_http_url_does_not_normalise(url: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalized_htu(url)  # type: ignore[arg-type]


def test_the_request_url_is_scheme_host_and_the_escaped_path() -> None:
    expected = "https://api.test:8443/a%20b/caf%C3%A9/x%3By"  # Django's escape_uri_path, as build_absolute_uri
    assert absolute_url("https", "api.test:8443", "/a b/café/x;y") == expected
    assert request_url("https", "api.test:8443", "/a b/café/x;y") == expected


# request_host: Django's get_host(), checked once per (X-Forwarded-Host, Host) value.


@pytest.fixture
def host_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each call of Django's own ``HttpRequest.get_host`` (it still runs), recorded with its answer."""
    from django.http import HttpRequest

    from drf_oidc_jwks import dpop_urls

    calls: list[str] = []
    original = HttpRequest.get_host

    def counted(self: HttpRequest) -> str:
        host = original(self)
        calls.append(host)
        return host

    monkeypatch.setattr(HttpRequest, "get_host", counted)
    dpop_urls._HOSTS.clear()  # answers kept by earlier tests would hide the checks counted here
    return calls


def django_request(**meta: str) -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/api/me", **meta)
    if "HTTP_HOST" not in meta:
        request.META.pop("HTTP_HOST", None)
    return request


def test_the_host_is_checked_once_per_host_header_value(settings, host_checks) -> None:
    from drf_oidc_jwks.dpop_urls import request_host

    settings.ALLOWED_HOSTS = ["api.test", "other.test"]
    assert [request_host(django_request(HTTP_HOST="api.test")) for _ in range(3)] == ["api.test"] * 3
    assert host_checks == ["api.test"]
    assert request_host(django_request(HTTP_HOST="other.test")) == "other.test"
    assert request_host(django_request(HTTP_HOST="api.test")) == "api.test"
    assert host_checks == ["api.test", "other.test"]


def test_without_a_host_header_the_host_is_checked_on_every_request(settings, host_checks) -> None:
    from drf_oidc_jwks.dpop_urls import request_host

    settings.ALLOWED_HOSTS = ["backend.internal"]
    for _ in range(2):
        assert request_host(django_request(SERVER_NAME="backend.internal", SERVER_PORT="80")) == "backend.internal"
    assert host_checks == ["backend.internal", "backend.internal"]


def test_the_same_host_header_with_another_x_forwarded_host_is_another_answer(settings, host_checks) -> None:
    from drf_oidc_jwks.dpop_urls import request_host

    settings.ALLOWED_HOSTS = ["*"]
    settings.USE_X_FORWARDED_HOST = True
    assert request_host(django_request(HTTP_HOST="internal:8000")) == "internal:8000"
    forwarded = django_request(HTTP_HOST="internal:8000", HTTP_X_FORWARDED_HOST="api.example.com")
    assert request_host(forwarded) == "api.example.com"
    assert request_host(django_request(HTTP_HOST="internal:8000")) == "internal:8000"
    assert host_checks == ["internal:8000", "api.example.com"]
