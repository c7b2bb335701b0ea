"""Templated issuers through the settings and the real verifier: one key fetch for every tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import TokenError
from drf_oidc_jwks.models import OIDCIdentity
from drf_oidc_jwks.tokens import verify_token
from tests.test_tenants import TenantIdP

TENANTS = [f"tenant-{i}" for i in range(100)]


@pytest.fixture
def idp() -> Iterator[TenantIdP]:
    provider = TenantIdP(TENANTS)
    provider.start()
    yield provider
    provider.server.stop()


def configure(settings: Any, idp: TenantIdP, **entry: Any) -> None:
    value = {
        "ISSUER": idp.template(),
        "TENANTS": "*",
        "JWKS_URL": idp.server.url("/common/keys"),
        "TENANT_CLAIM": "tid",
        "AUDIENCE": "api://app",
        "PROVIDER": "entra",
        **entry,
    }
    settings.DRF_OIDC_JWKS = {"ISSUERS": [{k: v for k, v in value.items() if v is not None}]}


def refused(raw: str) -> str:
    with pytest.raises(TokenError) as caught:
        verify_token(raw)
    return caught.value.code


def test_a_hundred_tenants_on_one_templated_issuer_cost_one_jwks_fetch(settings: Any, idp: TenantIdP) -> None:
    configure(settings, idp)
    for tenant in TENANTS:
        claims = verify_token(idp.token(tenant))
        assert claims.issuer == f"{idp.server.base_url}/{tenant}/v2.0"  # the concrete issuer
    assert idp.server.total("/common/keys") == 1 and idp.requests() == 1


def test_request_auth_issuer_is_the_concrete_issuer_and_users_are_keyed_by_it(
    settings: Any, idp: TenantIdP, api: Any
) -> None:
    configure(settings, idp)
    for tenant in ("tenant-1", "tenant-2"):
        api.credentials(HTTP_AUTHORIZATION="Bearer " + idp.token(tenant, sub="same-sub"))
        assert api.get("/api/me").status_code == 200
    issuers = sorted(OIDCIdentity.objects.filter(subject="same-sub").values_list("issuer", flat=True))
    assert issuers == [f"{idp.server.base_url}/tenant-1/v2.0", f"{idp.server.base_url}/tenant-2/v2.0"]


def test_an_unlisted_tenant_is_invalid_issuer_with_no_network_request(settings: Any, idp: TenantIdP) -> None:
    configure(settings, idp, TENANTS=["tenant-1"])
    assert refused(idp.token("tenant-7")) == "invalid_issuer"
    assert refused(idp.token("tenant-1", iss_tenant="{tenant}")) == "invalid_issuer"  # the template itself
    assert idp.requests() == 0
    assert verify_token(idp.token("tenant-1")).sub


def test_a_tenant_claim_that_disagrees_with_iss_is_invalid_issuer(settings: Any, idp: TenantIdP) -> None:
    configure(settings, idp)
    assert refused(idp.token("tenant-1", tid="tenant-2")) == "invalid_issuer"


def test_per_tenant_key_sets_are_one_fetch_each_and_cannot_sign_for_another(settings: Any, idp: TenantIdP) -> None:
    configure(settings, idp, TENANTS=["tenant-1", "tenant-2"], JWKS_URL=idp.server.base_url + "/{tenant}/keys")
    for _ in range(3):
        for tenant in ("tenant-1", "tenant-2"):
            assert verify_token(idp.token(tenant, shared=False)).sub
    assert [idp.server.total(f"/{t}/keys") for t in ("tenant-1", "tenant-2")] == [1, 1]
    forged = idp.token("tenant-1", shared=False, iss_tenant="tenant-2", tid="tenant-2")
    assert refused(forged) in ("unknown_key", "invalid_signature")


def test_without_jwks_url_each_tenant_is_found_by_its_own_discovery(settings: Any, idp: TenantIdP) -> None:
    configure(settings, idp, TENANTS=["tenant-4"], JWKS_URL=None)
    assert verify_token(idp.token("tenant-4", shared=False)).issuer.endswith("/tenant-4/v2.0")
    assert idp.server.total("/tenant-4/v2.0/.well-known/openid-configuration") == 1


def test_a_template_that_cannot_be_matched_safely_is_refused_at_first_use(settings: Any, idp: TenantIdP) -> None:
    configure(settings, idp, TENANTS=None)
    with pytest.raises(ImproperlyConfigured, match="E015.*TENANTS"):
        verify_token(idp.token("tenant-1"))
    assert idp.requests() == 0
    with pytest.raises(ImproperlyConfigured, match="E015"):
        get_settings()  # refused by the settings walk itself, as manage.py check reports it
