"""Many tenants per identity provider: {tenant} issuers, the issuer index, shared key sets, ISSUER_RESOLVER.

The verifier is wired to these in step two; here :func:`verify` composes the same public parts the
verifier will (index -> key-set client -> signature -> claims -> TENANT_CLAIM) against a real loopback
IdP that plays Entra: every tenant's issuer path, one common key set, and one key set per tenant.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from drf_oidc_jwks.audience import any_audience_matches, audience_matches
from drf_oidc_jwks.conf import IssuerSettings, get_settings, validate
from drf_oidc_jwks.exceptions import InvalidIssuer, KeySourceError, TokenError
from drf_oidc_jwks.issuers import (
    IssuerIndex,
    IssuerRule,
    check_tenant_claim,
    compile_template,
    match,
    template_problems,
)
from drf_oidc_jwks.jwks import JWKSClient
from drf_oidc_jwks.resolver import ResolverCache, load_resolver, plausible_issuer
from drf_oidc_jwks.testing import JWKSServer, Response, TestIssuer
from drf_oidc_jwks.tokens import read_unverified, validate_claims, verify_signature

ENTRA = "https://login.microsoftonline.com/{tenant}/v2.0"
T1, T2 = "72f988bf-86f1-41af-91ab-2d7cd011db47", "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

# -- templates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "iss", "tenant"),
    [
        (ENTRA, f"https://login.microsoftonline.com/{T1}/v2.0", T1),
        ("https://sts.windows.net/{tenant}/", f"https://sts.windows.net/{T1}/", T1),
        ("https://{tenant}.auth0.com/", "https://acme.auth0.com/", "acme"),
        ("https://sso.example.com/realms/{tenant}", "https://sso.example.com/realms/team-a", "team-a"),
        (ENTRA, "https://login.microsoftonline.com/a/b/v2.0", None),
        (ENTRA, "https://login.microsoftonline.com//v2.0", None),
        (ENTRA, "https://login.microsoftonline.com/../v2.0", None),
        (ENTRA, "https://login.microsoftonline.com/./v2.0", None),
        (ENTRA, "https://login.microsoftonline.com/a%2Fb/v2.0", None),
        (ENTRA, "https://login.microsoftonline.com/a?b/v2.0", None),
        (ENTRA, f"https://login.microsoftonline.com/{T1}/v2.0/", None),
        (ENTRA, f"http://login.microsoftonline.com/{T1}/v2.0", None),
        (ENTRA, f"https://LOGIN.microsoftonline.com/{T1}/v2.0", None),
        ("https://{tenant}.auth0.com/", "https://a.b.auth0.com/", None),
        ("https://{tenant}.auth0.com/", "https://-a.auth0.com/", None),
        ("https://{tenant}.auth0.com/", "https://evil.com#.auth0.com/", None),
        (ENTRA, 42, None),
    ],
)
def test_tenant_stands_for_exactly_one_safe_path_segment_or_host_label(template: str, iss: Any, tenant: Any) -> None:
    assert match(template, iss) == tenant


def test_only_listed_tenants_match_when_tenants_is_a_list() -> None:
    compiled = compile_template(ENTRA, [T1])
    assert compiled.match(compiled.concrete(T1)) == T1
    assert compiled.match(compiled.concrete(T2)) is None
    assert compiled.tenant_of(compiled.concrete(T2)) == T2


@pytest.mark.parametrize(
    ("template", "tenants", "reason"),
    [
        ("https://login.example.com/v2.0", "*", "exactly once"),
        ("https://x.example.com/{tenant}/{tenant}", "*", "exactly once"),
        ("https://x.example.com/t{tenant}/v2", "*", "whole path segment"),
        ("https://x.example.com/{tenant}/{region}", "*", "only placeholder"),
        ("https://x.example.com:{tenant}/", "*", "port"),
        ("https://x.example.{tenant}/", "*", "below the domain"),
        ("https://x{tenant}.example.com/", "*", "whole label"),
        ("https://x.example.com/a?t={tenant}", "*", "no query"),
        ("ftp://x.example.com/{tenant}", "*", "http(s) URL"),
        (ENTRA, None, "needs TENANTS"),
        (ENTRA, "all", "TENANTS must be"),
        (ENTRA, [], "non-empty list"),
        (ENTRA, ["a/b"], "non-empty list of path segments"),
        ("https://{tenant}.auth0.com/", ["a.b"], "host labels"),
    ],
)
def test_a_template_that_cannot_be_matched_safely_is_refused_with_the_reason(
    template: str, tenants: Any, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        compile_template(template, tenants)


def test_tenant_claim_must_equal_the_tenant_of_iss_exactly() -> None:
    check_tenant_claim({"tid": T1}, "tid", T1)
    check_tenant_claim({}, None, T1)
    for payload in ({"tid": T2}, {}, {"tid": [T1]}, {"tid": T1.upper()}):
        with pytest.raises(InvalidIssuer) as caught:
            check_tenant_claim(payload, "tid", T1)
        assert caught.value.code == "invalid_issuer"


# -- the index: exact first, then templates, and the key-set identity ---------------------------


def rule(
    issuer: str, tenants: Any = None, jwks_url: str | None = None, tenant_claim: str | None = None
) -> IssuerRule[str]:
    template = compile_template(issuer, tenants) if "{tenant}" in issuer else None
    return IssuerRule(issuer, issuer, template, jwks_url, tenant_claim)


def test_an_exact_issuer_wins_over_a_template_that_also_matches() -> None:
    index = IssuerIndex([rule(ENTRA, "*", "https://k/common"), rule(f"https://login.microsoftonline.com/{T1}/v2.0")])
    found = index.find(f"https://login.microsoftonline.com/{T1}/v2.0")
    assert (
        found is not None and found.settings == f"https://login.microsoftonline.com/{T1}/v2.0" and found.tenant is None
    )
    other = index.find(f"https://login.microsoftonline.com/{T2}/v2.0")
    assert other is not None and other.settings == ENTRA and other.tenant == T2


def test_templates_are_tried_in_order_and_an_unknown_issuer_finds_nothing() -> None:
    index = IssuerIndex([rule(ENTRA, [T1], "https://k/1"), rule(ENTRA.replace("/v2.0", "/v2"), "*", "https://k/2")])
    assert index.find("https://login.microsoftonline.com/x/v2") is not None
    assert index.find(f"https://login.microsoftonline.com/{T2}/v2.0") is None
    assert index.find(None) is None
    with pytest.raises(InvalidIssuer):
        index.require("https://evil.example.com/")


def test_without_tenant_in_jwks_url_every_tenant_shares_one_key_set() -> None:
    index = IssuerIndex([rule(ENTRA, "*", "https://login.microsoftonline.com/common/discovery/v2.0/keys", "tid")])
    a, b = (index.require(f"https://login.microsoftonline.com/{t}/v2.0") for t in (T1, T2))
    assert a.keyset_id == b.keyset_id == "jwks:https://login.microsoftonline.com/common/discovery/v2.0/keys"
    assert a.issuer != b.issuer and a.tenant_claim == "tid"


def test_tenant_in_jwks_url_gives_each_tenant_its_key_set_and_discovery_is_per_issuer() -> None:
    per = IssuerIndex([rule(ENTRA, [T1, T2], "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys")])
    a, b = (per.require(f"https://login.microsoftonline.com/{t}/v2.0") for t in (T1, T2))
    assert a.jwks_url == f"https://login.microsoftonline.com/{T1}/discovery/v2.0/keys" and a.keyset_id != b.keyset_id
    found = IssuerIndex([rule(ENTRA, [T1])]).require(f"https://login.microsoftonline.com/{T1}/v2.0")
    assert found.jwks_url is None and found.keyset_id == f"discovery:https://login.microsoftonline.com/{T1}/v2.0"


@pytest.mark.parametrize(
    ("entry", "fragment", "error"),
    [
        ({"ISSUER": ENTRA, "TENANTS": "*"}, 'TENANTS "*" needs a JWKS_URL without {tenant}', True),
        ({"ISSUER": ENTRA, "TENANTS": "*", "JWKS_URL": "https://k/{tenant}"}, "needs a JWKS_URL", True),
        ({"ISSUER": ENTRA, "TENANTS": "*", "JWKS_URL": "https://k/common"}, "every tenant", False),
        ({"ISSUER": ENTRA}, "needs TENANTS", True),
        ({"ISSUER": "https://a.example.com", "TENANTS": ["x"]}, "need {tenant} in ISSUER", True),
        ({"ISSUER": "https://a.example.com", "TENANT_CLAIM": "tid"}, "need {tenant} in ISSUER", True),
        ({"ISSUER": ENTRA, "TENANTS": [T1], "TENANT_CLAIM": ""}, "TENANT_CLAIM must be", True),
        ({"ISSUER": ENTRA, "TENANTS": [T1], "JWKS_URL": "https://k/{tenant}/{tenant}"}, "at most once", True),
    ],
)
def test_template_problems_explain_each_mistake(entry: dict[str, Any], fragment: str, error: bool) -> None:
    problems = template_problems(entry, "ISSUERS[0]")
    assert any(fragment in p.msg and p.error is error for p in problems), problems


def test_a_sound_template_entry_has_no_problem() -> None:
    entry = {"ISSUER": ENTRA, "TENANTS": [T1, T2], "TENANT_CLAIM": "tid", "JWKS_URL": "https://k/{tenant}/keys"}
    assert template_problems(entry, "ISSUERS[0]") == []
    assert template_problems({"ISSUER": "https://a.example.com"}, "DRF_OIDC_JWKS") == []


# -- a loopback multi-tenant IdP ----------------------------------------------------------------


class TenantIdP:
    """Entra's shape on 127.0.0.1: ``/{tenant}/v2.0`` issuers, ``/common/keys`` and ``/{tenant}/keys``."""

    def __init__(self, tenants: list[str]) -> None:
        self.server = JWKSServer()
        self.common = TestIssuer(audience="api://app")
        self.own = {t: TestIssuer(audience="api://app") for t in tenants}

    def start(self) -> None:
        self.server.start()
        base = self.server.base_url
        self.server.respond("/common/keys", self.json(self.common.jwks()))
        for tenant, own in self.own.items():
            own.issuer = f"{base}/{tenant}/v2.0"
            self.server.respond(f"/{tenant}/keys", self.json(own.jwks()))
            document = {"issuer": own.issuer, "jwks_uri": f"{base}/{tenant}/keys"}
            self.server.respond(f"/{tenant}/v2.0/.well-known/openid-configuration", self.json(document))

    @staticmethod
    def json(document: Mapping[str, Any]) -> Response:
        return Response(200, json.dumps(document).encode(), {"Content-Type": "application/json"})

    def template(self) -> str:
        return self.server.base_url + "/{tenant}/v2.0"

    def token(self, tenant: str, *, shared: bool = True, iss_tenant: str | None = None, **claims: Any) -> str:
        signer = self.common if shared else self.own[tenant]
        claims.setdefault("tid", tenant)
        return signer.token(iss=f"{self.server.base_url}/{iss_tenant or tenant}/v2.0", **claims)

    def requests(self) -> int:
        return sum(self.server.hits.values())


@pytest.fixture
def idp(oidc_settings: Any) -> Iterator[TenantIdP]:
    provider = TenantIdP([f"tenant-{i}" for i in range(100)])
    provider.start()
    yield provider
    provider.server.stop()


def issuer_settings(issuer: str, jwks_url: str | None) -> IssuerSettings:
    """One issuer's settings as the settings table builds them (so every key has its default)."""
    from dataclasses import replace

    from drf_oidc_jwks.conf import build

    raw = {"ISSUER": "https://login.example.com/v2.0", "AUDIENCE": "api://app", "PROVIDER": "entra"}
    # Built concrete, then given the issuer and JWKS URL under test (templates are checked by the index here).
    return replace(build(raw).issuers[0], issuer=issuer, jwks_url=jwks_url)


def verify(raw: str, index: IssuerIndex[IssuerSettings], clients: dict[str, JWKSClient]) -> dict[str, Any]:
    """What the verifier does in step two: index, the key set's one client, signature, claims, TENANT_CLAIM."""
    s = get_settings()
    parsed = read_unverified(raw, s.max_token_bytes)
    found = index.require(parsed.payload.get("iss"))
    alg, kid = parsed.header["alg"], parsed.header.get("kid")
    client = clients.get(found.keyset_id)
    if client is None:
        # The client's identity is the key set's: the template for a shared URL, the concrete issuer otherwise.
        name = (
            found.settings.issuer
            if found.jwks_url and "{tenant}" not in (found.settings.jwks_url or "")
            else found.issuer
        )
        client = clients[found.keyset_id] = JWKSClient(issuer_settings(name, found.jwks_url), s)
    verify_signature(parsed, client.get_key(kid, alg), alg)
    validate_claims(parsed.payload, dataclasses.replace(found.settings, issuer=found.issuer), s.leeway, time.time())
    found.check_payload(parsed.payload)
    return parsed.payload


def shared_index(idp: TenantIdP, tenants: Any = "*") -> IssuerIndex[IssuerSettings]:
    template = idp.template()
    settings = issuer_settings(template, idp.server.url("/common/keys"))
    return IssuerIndex([IssuerRule(settings, template, compile_template(template, tenants), settings.jwks_url, "tid")])


def test_a_hundred_tenants_on_one_templated_issuer_cost_one_jwks_fetch(idp: TenantIdP) -> None:
    index, clients = shared_index(idp), {}
    for i in range(100):
        payload = verify(idp.token(f"tenant-{i}"), index, clients)
        assert payload["iss"].endswith(f"/tenant-{i}/v2.0")
    assert idp.server.total("/common/keys") == 1 and idp.requests() == 1
    assert len(clients) == 1


def test_the_shared_key_set_is_one_cache_entry_seen_by_a_new_process(idp: TenantIdP) -> None:
    index = shared_index(idp)
    verify(idp.token("tenant-1"), index, {})
    verify(idp.token("tenant-2"), index, {})  # a fresh client map: another worker, the same Django cache
    assert idp.server.total("/common/keys") == 1


def test_a_tenant_claim_that_disagrees_with_iss_is_an_invalid_issuer(idp: TenantIdP) -> None:
    with pytest.raises(InvalidIssuer) as caught:
        verify(idp.token("tenant-1", tid="tenant-2"), shared_index(idp), {})
    assert caught.value.code == "invalid_issuer"


def test_an_unlisted_tenant_is_refused_with_no_network_request(idp: TenantIdP) -> None:
    with pytest.raises(InvalidIssuer):
        verify(idp.token("tenant-7"), shared_index(idp, ["tenant-1"]), {})
    assert idp.requests() == 0


def test_per_tenant_key_sets_are_fetched_once_each(idp: TenantIdP) -> None:
    template = idp.template()
    jwks = idp.server.base_url + "/{tenant}/keys"
    settings = issuer_settings(template, jwks)
    tenants = ["tenant-1", "tenant-2", "tenant-3"]
    index = IssuerIndex([IssuerRule(settings, template, compile_template(template, tenants), jwks, "tid")])
    clients: dict[str, JWKSClient] = {}
    for _ in range(3):
        for tenant in tenants:
            verify(idp.token(tenant, shared=False), index, clients)
    assert [idp.server.total(f"/{t}/keys") for t in tenants] == [1, 1, 1] and len(clients) == 3


def test_with_per_tenant_keys_one_tenants_key_cannot_sign_for_another(idp: TenantIdP) -> None:
    template = idp.template()
    jwks = idp.server.base_url + "/{tenant}/keys"
    settings = issuer_settings(template, jwks)
    index = IssuerIndex(
        [IssuerRule(settings, template, compile_template(template, ["tenant-1", "tenant-2"]), jwks, None)]
    )
    forged = idp.token("tenant-1", shared=False, iss_tenant="tenant-2", tid="tenant-2")
    with pytest.raises(TokenError) as caught:
        verify(forged, index, {})
    assert caught.value.code in ("unknown_key", "invalid_signature")


def test_without_jwks_url_each_listed_tenant_is_found_by_its_own_discovery(idp: TenantIdP) -> None:
    template = idp.template()
    settings = issuer_settings(template, None)
    index = IssuerIndex([IssuerRule(settings, template, compile_template(template, ["tenant-4"]), None, "tid")])
    verify(idp.token("tenant-4", shared=False), index, {})
    assert idp.server.total("/tenant-4/v2.0/.well-known/openid-configuration") == 1
    assert idp.server.total("/tenant-4/keys") == 1


# -- ISSUER_RESOLVER --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def build(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate like an ISSUERS entry (bound to the settings table's per-issuer validation at merge)."""
    errors = [p for p in validate(dict(raw)) if p.error]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{p.id}: {p.msg}" for p in errors))
    return dict(raw)


KNOWN = "https://acme.auth.example.com/"


def tenants_table(iss: str, request: Any) -> dict[str, Any] | None:
    if iss == KNOWN:
        return {"ISSUER": iss, "AUDIENCE": "https://api.example.com"}
    return None


def make(resolve: Any = tenants_table, **kwargs: Any) -> tuple[ResolverCache[dict[str, Any]], Clock]:
    clock = Clock()
    return ResolverCache(resolve, build, clock=clock, **kwargs), clock


def test_a_known_issuer_is_resolved_once_per_cache_period() -> None:
    cache, clock = make(ttl=300)
    for _ in range(50):
        assert cache.lookup(KNOWN)["AUDIENCE"] == "https://api.example.com"
    assert cache.calls == 1
    clock.now += 301
    cache.lookup(KNOWN)
    assert cache.calls == 2


def test_an_unknown_issuer_is_invalid_issuer_and_remembered_for_the_negative_ttl(caplog: Any) -> None:
    cache, clock = make(negative_ttl=60)
    for _ in range(10):
        with pytest.raises(InvalidIssuer) as caught:
            cache.lookup("https://stranger.example.com/")
        assert caught.value.code == "invalid_issuer"
    assert cache.calls == 1
    clock.now += 61
    with pytest.raises(InvalidIssuer):
        cache.lookup("https://stranger.example.com/")
    assert cache.calls == 2


def test_a_resolver_that_raises_is_a_503_with_retry_after_and_a_log_line(caplog: Any) -> None:
    def broken(iss: str, request: Any) -> Any:
        raise ConnectionError("tenant database unreachable")

    cache, clock = make(broken, failure_ttl=5)
    with caplog.at_level(logging.WARNING, logger="drf_oidc_jwks"), pytest.raises(KeySourceError) as caught:
        cache.lookup(KNOWN)
    assert caught.value.code == "idp_unavailable" and caught.value.retry_after == 5
    assert "ISSUER_RESOLVER raised ConnectionError" in caplog.text
    with pytest.raises(KeySourceError):
        cache.lookup(KNOWN)
    assert cache.calls == 1
    clock.now += 6
    with pytest.raises(KeySourceError):
        cache.lookup(KNOWN)
    assert cache.calls == 2


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        (["not", "a", "dict"], "a list, not a dict"),
        ({"ISSUER": "https://other.example.com/", "AUDIENCE": "x"}, "not the token's iss"),
        ({"ISSUER": KNOWN}, "no AUDIENCE"),
        ({"ISSUER": KNOWN, "AUDIENCE": "x", "JWKS_URL": "http://10.0.0.1/keys"}, "E005"),
        ({"ISSUER": KNOWN, "AUDIENCE": "x", "ALGORITHMS": ["HS256"]}, "E007"),
        ({"ISSUER": KNOWN, "AUDIENCE": "x", "NO_SUCH_KEY": 1}, "E002"),
    ],
)
def test_invalid_settings_from_the_resolver_are_refused_and_logged_as_an_error(
    answer: Any, logged: str, caplog: Any
) -> None:
    cache, _ = make(lambda iss, request: answer)
    with caplog.at_level(logging.ERROR, logger="drf_oidc_jwks"), pytest.raises(InvalidIssuer):
        cache.lookup(KNOWN)
    assert "ISSUER_RESOLVER returned invalid settings" in caplog.text and logged in caplog.text


@pytest.mark.parametrize(
    "iss",
    [
        None,
        7,
        "",
        "not a url",
        "ftp://x/",
        "https://x/" + "a" * 2000,
        'https://x/"',
        "https://x/ y",
        "https://x/{tenant}",
    ],
)
def test_what_cannot_be_an_issuer_never_reaches_the_resolver(iss: Any) -> None:
    cache, _ = make()
    assert not plausible_issuer(iss)
    with pytest.raises(InvalidIssuer):
        cache.lookup(iss)
    assert cache.calls == 0


def test_a_flood_of_unknown_issuers_costs_one_call_each_and_never_evicts_a_known_tenant() -> None:
    cache, _ = make(maxsize=100)
    cache.lookup(KNOWN)
    for i in range(2000):
        with pytest.raises(InvalidIssuer):
            cache.lookup(f"https://t{i}.example.com/")
    assert cache.calls == 2001
    cache.lookup(KNOWN)
    assert cache.calls == 2001 and len(cache) <= 101


def test_concurrent_requests_for_one_issuer_wait_for_a_single_resolver_call() -> None:
    def slow(iss: str, request: Any) -> dict[str, Any] | None:
        time.sleep(0.2)
        return tenants_table(iss, request)

    cache = ResolverCache(slow, build)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(cache.lookup(KNOWN))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.calls == 1 and len(results) == 8


def test_the_resolver_gets_the_request() -> None:
    seen: list[Any] = []
    cache, _ = make(lambda iss, request: seen.append(request))
    with pytest.raises(InvalidIssuer):
        cache.lookup(KNOWN, "the request")
    assert seen == ["the request"]


def test_load_resolver_imports_a_dotted_path_and_names_the_key_when_it_cannot() -> None:
    assert load_resolver("tests.test_tenants.tenants_table") is tenants_table
    for bad in ("tests.test_tenants.no_such", "no.such.module.f", "", None, "tests.test_tenants.KNOWN"):
        with pytest.raises(ImproperlyConfigured, match="ISSUER_RESOLVER"):
            load_resolver(bad)


# -- audience: the MCP canonical URI rule -------------------------------------------------------


@pytest.mark.parametrize(
    ("aud", "expected", "matches"),
    [
        ("https://api.example.com/mcp", "https://api.example.com/mcp", True),
        ("HTTPS://API.Example.COM/mcp", "https://api.example.com/mcp", True),
        ("https://api.example.com/MCP", "https://api.example.com/mcp", False),
        ("https://api.example.com/mcp/", "https://api.example.com/mcp", False),
        ("https://api.example.com:8443/mcp", "https://api.example.com/mcp", False),
        ("https://api.example.com:443/mcp", "https://api.example.com/mcp", False),
        ("http://api.example.com/mcp", "https://api.example.com/mcp", False),
        ("https://user@api.example.com/mcp", "https://api.example.com/mcp", False),
        ("https://api.example.com/mcp#x", "https://api.example.com/mcp", False),
        ("https://api.example.com/mcp?a=1", "https://api.example.com/mcp?a=1", True),
        ("my-client-id", "my-client-id", True),
        ("My-Client-Id", "my-client-id", False),
        (["https://api.example.com/mcp"], "https://api.example.com/mcp", False),
        (None, "x", False),
    ],
)
def test_audience_compares_scheme_and_host_case_insensitively_and_the_path_exactly(
    aud: Any, expected: str, matches: bool
) -> None:
    assert audience_matches(aud, expected) is matches


def test_any_audience_matches_looks_at_every_pair() -> None:
    assert any_audience_matches(["other", "https://API.example.com/mcp"], ["x", "https://api.example.com/mcp"])
    assert not any_audience_matches(["other"], ["x"])


def test_an_issuer_found_by_the_resolver_gets_the_same_key_set_identity_rules() -> None:
    from drf_oidc_jwks.issuers import exact_match

    found = exact_match("settings", KNOWN, "https://keys.example.com/jwks")
    assert (found.issuer, found.tenant, found.keyset_id) == (KNOWN, None, "jwks:https://keys.example.com/jwks")
    assert exact_match("settings", KNOWN, None).keyset_id == "discovery:" + KNOWN
    found.check_payload({})  # no TENANT_CLAIM for a resolved issuer
