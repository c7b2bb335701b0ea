"""Tests that kill mutants of audience.py which the rest of the suite let through (scripts/mutation.sh).

Each names the rule it pins: which audiences are compared by the MCP canonical URI rule and which exactly.
"""

from __future__ import annotations

from typing import Any

import pytest

from drf_oidc_jwks.audience import any_audience_matches, audience_matches, canonical_uri
from drf_oidc_jwks.exceptions import TokenError
from drf_oidc_jwks.tokens import verify_token


def refused(token: str) -> str:
    with pytest.raises(TokenError) as exc:
        verify_token(token)
    return exc.value.code


@pytest.mark.parametrize("aud", ["HTTP://API.TEST/mcp", "Http://Api.Test/mcp", "http://api.test/mcp"])
def test_a_plain_http_audience_compares_scheme_and_host_case_insensitively(oidc_settings, issuer, aud):
    oidc_settings(AUDIENCE="http://api.test/mcp")
    assert verify_token(issuer.token(aud=aud)).sub == "alice"
    assert refused(issuer.token(aud="http://api.test/MCP")) == "invalid_audience"


@pytest.mark.parametrize(
    ("expected", "aud"),
    [("ftp://api.test/x", "FTP://API.TEST/x"), ("urn://api.test/x", "urn://API.test/x"), ("http:/mcp", "HTTP:/mcp")],
)
def test_an_audience_that_is_not_an_absolute_http_uri_is_compared_exactly(oidc_settings, issuer, expected, aud):
    oidc_settings(AUDIENCE=expected)
    assert verify_token(issuer.token(aud=expected)).sub == "alice"
    assert refused(issuer.token(aud=aud)) == "invalid_audience"


def test_canonical_uri_gives_the_lower_cased_scheme_and_host_and_the_rest_as_written():
    assert canonical_uri("HTTPS://Api.Test:8443/Mcp?A=1") == ("https", "api.test", 8443, "/Mcp", "A=1")
    assert canonical_uri("Http://API.test") == ("http", "api.test", None, "", "")
    assert canonical_uri("ftp://api.test/x") is None
    assert canonical_uri("https:///no-host") is None


@pytest.mark.parametrize("aud", [5, None, ["x"], {"x": 1}, True, b"x"])
def test_an_audience_value_that_is_not_a_string_never_matches(aud: Any):
    assert audience_matches(aud, "x") is False
    assert any_audience_matches([aud], ["x", "5", "True"]) is False
    assert audience_matches("x", "x") is True
