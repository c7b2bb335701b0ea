"""ISSUER_RESOLVER end to end: issuers found in a Django model at run time, verified against real loopback JWKS.

The resolver under test is the documentation's own (testproject/api/tenants.py over IdentityProvider, included
by docs/multi-tenant.md); odd answers come from a module-level table here. Resolver calls are counted on the
process's resolver cache, HTTP requests on the loopback servers.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from drf_oidc_jwks.conf import get_settings, validate
from drf_oidc_jwks.exceptions import InvalidIssuer
from drf_oidc_jwks.issuer_lookup import resolver_for
from drf_oidc_jwks.models import OIDCIdentity
from drf_oidc_jwks.testing import JWKSServer, TestIssuer
from drf_oidc_jwks.tokens import verify_token
from testproject.api.models import IdentityProvider

pytestmark = pytest.mark.django_db

AUDIENCE = "https://api.example.com"
MODEL_RESOLVER = "testproject.api.tenants.resolve"
TABLE_RESOLVER = "tests.test_resolver.from_table"
ROOT = Path(__file__).resolve().parent.parent

#: Answers of :func:`from_table`, by issuer; what the resolver was handed, in order.
ANSWERS: dict[str, Any] = {}
SEEN: list[tuple[str, Any]] = []


def from_table(unverified_iss: str, request: Any) -> Any:
    SEEN.append((unverified_iss, request))
    return ANSWERS.get(unverified_iss)


def broken(unverified_iss: str, request: Any) -> Any:
    raise ConnectionError("tenant database unreachable")


@pytest.fixture(autouse=True)
def _clean_table() -> Iterator[None]:
    ANSWERS.clear()
    SEEN.clear()
    yield
    ANSWERS.clear()
    SEEN.clear()


class Tenant:
    """One customer's identity provider: a TestIssuer served on its own loopback server."""

    def __init__(self) -> None:
        self.idp = TestIssuer(audience=AUDIENCE)
        self._serving = self.idp.serve()
        self.server: JWKSServer = self._serving.__enter__()

    @property
    def issuer(self) -> str:
        return self.idp.issuer

    def register(self, *, jwks: bool = True, **fields: Any) -> IdentityProvider:
        values = {"issuer": self.issuer, "audience": AUDIENCE, **fields}
        if jwks:
            values.setdefault("jwks_url", self.server.url("/jwks.json"))
        return IdentityProvider.objects.create(**values)

    def requests(self) -> int:
        return sum(self.server.hits.values())

    def stop(self) -> None:
        self._serving.__exit__(None, None, None)


@pytest.fixture
def tenants() -> Iterator[list[Tenant]]:
    made = [Tenant(), Tenant()]
    yield made
    for tenant in made:
        tenant.stop()


def configure(settings: Any, resolver: str = MODEL_RESOLVER, **keys: Any) -> None:
    settings.DRF_OIDC_JWKS = {"ISSUER_RESOLVER": resolver, "ALGORITHMS": ["RS256"], **keys}


def calls() -> int:
    cache = resolver_for(get_settings())
    return cache.calls if cache is not None else 0


def code_of(response: Any) -> str:
    return str(response.json().get("code", ""))


def test_a_resolved_issuers_token_gets_200_and_request_auth_issuer_is_that_issuer(
    settings: Any, tenants: list[Tenant], call: Any
) -> None:
    configure(settings)
    tenants[0].register()
    response = call(tenants[0].idp.token())
    assert response.status_code == 200, response.content
    assert response.json()["claims"]["issuer"] == tenants[0].issuer
    assert calls() == 1 and tenants[0].server.total("/jwks.json") == 1


def test_users_are_keyed_by_the_resolved_issuer(settings: Any, tenants: list[Tenant], call: Any) -> None:
    configure(settings)
    for tenant in tenants:
        tenant.register()
        assert call(tenant.idp.token(sub="same-sub")).status_code == 200
    issuers = sorted(OIDCIdentity.objects.filter(subject="same-sub").values_list("issuer", flat=True))
    assert issuers == sorted(t.issuer for t in tenants)


def test_a_resolved_issuer_without_jwks_url_is_found_by_its_own_validated_discovery(
    settings: Any, tenants: list[Tenant], call: Any
) -> None:
    configure(settings)
    tenants[0].register(jwks=False)
    assert call(tenants[0].idp.token()).status_code == 200
    assert tenants[0].server.total("/.well-known/openid-configuration") == 1


def test_tokens_of_a_resolved_issuer_share_one_key_fetch(settings: Any, tenants: list[Tenant], call: Any) -> None:
    configure(settings, TOKEN_CACHE_TTL=0)
    tenants[0].register()
    for n in range(10):
        assert call(tenants[0].idp.token(sub=f"user-{n}")).status_code == 200
    assert tenants[0].requests() == 1 and calls() == 1


def test_an_unknown_issuer_is_invalid_issuer_and_makes_no_network_request(
    settings: Any, tenants: list[Tenant], call: Any
) -> None:
    configure(settings)
    tenants[0].register(active=False)  # a tenant switched off: its server would answer, if it were asked
    for tenant in tenants:
        response = call(tenant.idp.token())
        assert (response.status_code, code_of(response)) == (401, "invalid_issuer")
        assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert [t.requests() for t in tenants] == [0, 0] and calls() == 2


def test_a_flood_of_unknown_issuers_costs_one_resolver_call_each_per_period_and_no_http_request(
    settings: Any, tenants: list[Tenant], call: Any
) -> None:
    configure(settings, ISSUER_RESOLVER_NEGATIVE_TTL=60)
    tenants[0].register()
    base = tenants[1].server.base_url  # made-up issuers on a live server: any fetch would be counted
    strangers = [TestIssuer(f"{base}/t{n}", audience=AUDIENCE) for n in range(50)]
    strangers[0].keys = strangers[1].keys = tenants[1].idp.keys  # even signed with that server's real key
    for n in range(200):
        response = call(strangers[n % 50].token(sub=f"user-{n}"))
        assert (response.status_code, code_of(response)) == (401, "invalid_issuer")
    assert calls() == 50 and tenants[1].requests() == 0
    assert call(tenants[0].idp.token()).status_code == 200  # the known tenant is still served
    assert calls() == 51


def test_unknown_issuers_are_asked_again_after_the_negative_ttl(settings: Any, call: Any) -> None:
    configure(settings, TABLE_RESOLVER, ISSUER_RESOLVER_NEGATIVE_TTL=0.3)
    stranger = TestIssuer("https://stranger.example.com", audience=AUDIENCE)
    for _ in range(5):
        assert call(stranger.token()).status_code == 401
    assert calls() == 1
    time.sleep(0.35)
    assert call(stranger.token()).status_code == 401
    assert calls() == 2


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ({"JWKS_URL": "http://10.0.0.1/keys"}, "JWKS_URL"),  # no fetch of a URL that is not validated
        ({"ALGORITHMS": ["HS256"]}, "ALGORITHMS"),
        ({"DPOP": "sometimes"}, "DPOP"),
        ({"AUDIENCES": AUDIENCE}, "AUDIENCES"),
        ({"TENANTS": ["a"]}, "TENANTS"),
        ({"ISSUER": "https://someone-else.example.com"}, "ISSUER"),
        ({"AUDIENCE": 7}, "AUDIENCE"),
    ],
)
def test_invalid_settings_from_the_resolver_are_invalid_issuer_and_an_error_log_naming_the_key(
    settings: Any, tenants: list[Tenant], call: Any, caplog: Any, answer: dict[str, Any], named: str
) -> None:
    configure(settings, TABLE_RESOLVER)
    tenant = tenants[0]
    ANSWERS[tenant.issuer] = {"ISSUER": tenant.issuer, "AUDIENCE": AUDIENCE, **answer}
    token = tenant.idp.token()
    with caplog.at_level(logging.ERROR, logger="drf_oidc_jwks"):
        response = call(token)
    assert (response.status_code, code_of(response)) == (401, "invalid_issuer")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "ISSUER_RESOLVER returned invalid settings" in errors[0]
    assert named in errors[0]
    assert token not in caplog.text and token.split(".")[2] not in caplog.text
    assert tenant.requests() == 0


def test_a_resolver_that_raises_is_503_idp_unavailable_with_retry_after_and_a_warning(
    settings: Any, tenants: list[Tenant], call: Any, caplog: Any
) -> None:
    configure(settings, "tests.test_resolver.broken", ISSUER_RESOLVER_FAILURE_TTL=5)
    token = tenants[0].idp.token()
    with caplog.at_level(logging.WARNING, logger="drf_oidc_jwks"):
        response = call(token)
        again = call(token)
    assert (response.status_code, code_of(response)) == (503, "idp_unavailable")
    assert response["Retry-After"] == "5" and again.status_code == 503 and 1 <= int(again["Retry-After"]) <= 5
    assert "ISSUER_RESOLVER raised ConnectionError" in caplog.text and token not in caplog.text
    assert calls() == 1 and tenants[0].requests() == 0


def test_resolved_settings_are_cached_for_the_ttl_and_asked_again_after_it(
    settings: Any, tenants: list[Tenant], call: Any
) -> None:
    configure(settings, ISSUER_RESOLVER_CACHE_TTL=0.5)
    tenants[0].register()
    token = tenants[0].idp.token()
    for n in range(5):
        assert call(tenants[0].idp.token(sub=f"user-{n}")).status_code == 200
        assert call(token).status_code == 200
    assert calls() == 1
    time.sleep(0.55)
    assert call(token).status_code == 200  # the memoised token too goes back to the resolver
    assert calls() == 2 and tenants[0].server.total("/jwks.json") == 1  # the keys stay cached


def test_a_changed_audience_takes_effect_after_the_ttl_even_for_a_memoised_token(
    settings: Any, tenants: list[Tenant], call: Any
) -> None:
    configure(settings, ISSUER_RESOLVER_CACHE_TTL=0.5, TOKEN_CACHE_TTL=60)
    row = tenants[0].register()
    token = tenants[0].idp.token()
    assert call(token).status_code == 200
    IdentityProvider.objects.filter(pk=row.pk).update(audience="https://moved.example.com")
    assert call(token).status_code == 200  # within the cache period: the answer in use
    time.sleep(0.55)
    response = call(token)
    assert (response.status_code, code_of(response)) == (401, "invalid_audience")
    IdentityProvider.objects.filter(pk=row.pk).update(active=False)
    time.sleep(0.55)
    assert code_of(call(tenants[0].idp.token(aud="https://moved.example.com"))) == "invalid_issuer"


def test_the_resolver_is_handed_the_request_and_none_outside_one(settings: Any, call: Any) -> None:
    configure(settings, TABLE_RESOLVER)
    stranger = TestIssuer("https://stranger.example.com", audience=AUDIENCE)
    call(stranger.token(), path="/api/me?tenant=acme")
    with pytest.raises(InvalidIssuer):
        verify_token(TestIssuer("https://other.example.com").token())
    (iss, request), (_, none) = SEEN
    assert iss == "https://stranger.example.com"
    assert request.path == "/api/me" and request.GET["tenant"] == "acme"
    assert none is None


def test_configured_issuers_come_first_and_never_reach_the_resolver(
    settings: Any, tenants: list[Tenant], call: Any
) -> None:
    configure(settings, TABLE_RESOLVER, **tenants[0].idp.settings())
    ANSWERS[tenants[1].issuer] = {"ISSUER": tenants[1].issuer, "AUDIENCE": AUDIENCE}
    assert call(tenants[0].idp.token()).status_code == 200
    assert calls() == 0
    # No JWKS_URL in the answer: the resolved issuer's own discovery, never the configured issuer's keys.
    assert call(tenants[1].idp.token()).status_code == 200
    assert calls() == 1 and tenants[1].server.total("/.well-known/openid-configuration") == 1


def test_answers_inherit_the_top_level_per_issuer_keys(settings: Any, tenants: list[Tenant], call: Any) -> None:
    configure(settings, ALGORITHMS=["ES256"])
    tenants[0].register()
    response = call(tenants[0].idp.token())  # RS256, which the inherited ALGORITHMS do not allow
    assert (response.status_code, code_of(response)) == (401, "unsupported_algorithm")


def test_the_resolver_may_be_the_only_source_of_issuers_and_its_settings_are_checked_at_start() -> None:
    assert [p for p in validate({"ISSUER_RESOLVER": MODEL_RESOLVER}) if p.error] == []
    problems = [p for p in validate({"ISSUER_RESOLVER": MODEL_RESOLVER, "ALGORITHMS": ["HS256"]}) if p.error]
    assert [p.id for p in problems] == ["E007"]
    assert [p.id for p in validate({"ISSUER_RESOLVER": 7}) if p.error] == ["E013"]
    assert [p.id for p in validate({"ISSUER_RESOLVER": MODEL_RESOLVER, "ISSUER_RESOLVER_CACHE_TTL": -1})] == ["E010"]


def test_a_resolver_that_cannot_be_imported_is_improperly_configured_naming_e027(settings: Any) -> None:
    configure(settings, "tests.test_resolver.no_such_function")
    with pytest.raises(ImproperlyConfigured, match=r"E027.*ISSUER_RESOLVER"):
        verify_token(TestIssuer("https://stranger.example.com").token())


def test_oidc_check_shows_the_resolver_and_oidc_decode_says_it_was_asked(settings: Any) -> None:
    configure(settings, TABLE_RESOLVER)
    out = io.StringIO()
    call_command("oidc_check", stdout=out)
    assert f"ISSUER_RESOLVER {TABLE_RESOLVER}" in out.getvalue() and not SEEN  # shown, not called
    out = io.StringIO()
    call_command("oidc_check", "--json", stdout=out)
    assert json.loads(out.getvalue())["resolver"] == TABLE_RESOLVER
    out = io.StringIO()
    with pytest.raises(CommandError, match="invalid_issuer"):
        call_command("oidc_decode", TestIssuer("https://stranger.example.com").token(), "--json", stdout=out)
    refusal = json.loads(out.getvalue())["refusal"]
    assert refusal["code"] == "invalid_issuer" and f"ISSUER_RESOLVER {TABLE_RESOLVER}" in refusal["context"]
    assert [iss for iss, _ in SEEN] == ["https://stranger.example.com"]


def test_the_documentation_shows_the_tested_resolver_and_model() -> None:
    page = (ROOT / "docs" / "multi-tenant.md").read_text()
    included = re.findall(r'^--8<-- "(api/[\w.]+):(\w+)"$', page, re.MULTILINE)
    assert sorted(included) == [("api/models.py", "model"), ("api/tenants.py", "resolver")]
    for path, section in included:
        source = (ROOT / "testproject" / path).read_text()
        assert f"# --8<-- [start:{section}]" in source and f"# --8<-- [end:{section}]" in source
    assert f'"ISSUER_RESOLVER": "{MODEL_RESOLVER}"' in page


def test_a_resolved_issuers_own_keys_apply_after_verification_too(
    settings: Any, tenants: list[Tenant], call: Any
) -> None:
    # DPOP "required" is checked after the signature, on the settings the resolver gave (never asked again).
    configure(settings, TABLE_RESOLVER)
    tenant = tenants[0]
    ANSWERS[tenant.issuer] = {"ISSUER": tenant.issuer, "AUDIENCE": AUDIENCE, "DPOP": "required"}
    response = call(tenant.idp.token())
    assert (response.status_code, code_of(response)) == (401, "dpop_required")
    assert calls() == 1 and len(SEEN) == 1
