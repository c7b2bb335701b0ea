"""pytest fixtures for testing an API protected by drf-oidc-jwks. Opt in from your top-level conftest.py::

    pytest_plugins = ["drf_oidc_jwks.pytest_plugin"]

(Deliberately no ``pytest11`` entry point: installing the package must not add fixtures to every project.)

* ``oidc_issuer``: a :class:`~drf_oidc_jwks.testing.TestIssuer` trusted by ``DRF_OIDC_JWKS`` for the
  test, its keys installed straight into the JWKS cache (no HTTP); the setting is restored afterwards.
* ``oidc_served_issuer``: the same, served by a real HTTP server on 127.0.0.1 (discovery and JWKS fetched).
* ``oidc_token(sub="alice", **claims)``: mints a token of ``oidc_issuer``.
* ``oidc_client(sub="alice", **claims)``: an ``APIClient`` sending such a token as ``Authorization: Bearer``.
* ``oidc_overrides``: override it in a conftest to change ``DRF_OIDC_JWKS`` keys for these fixtures.

The project's own ``DRF_OIDC_JWKS`` is the base: its ``PROVIDER``, ``CLAIMS`` and ``AUDIENCE`` apply,
and the test issuer signs with the first of its ``ALGORITHMS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .conf import first_issuer
from .testing import TestIssuer

__all__ = ["oidc_overrides", "oidc_issuer", "oidc_served_issuer", "oidc_token", "oidc_client"]

#: The audience minted and checked when the project's setting names none.
DEFAULT_AUDIENCE = "https://api.test"


def _new_issuer(overrides: dict[str, Any]) -> TestIssuer:
    from django.conf import settings

    first = first_issuer(getattr(settings, "DRF_OIDC_JWKS", None))
    algorithms = overrides.get("ALGORITHMS") or first.get("ALGORITHMS") or ["RS256"]
    algorithm = algorithms if isinstance(algorithms, str) else algorithms[0]
    audience = overrides["AUDIENCE"] if "AUDIENCE" in overrides else first.get("AUDIENCE", DEFAULT_AUDIENCE)
    if audience is not None and not isinstance(audience, str):
        audience = list(audience)[0]
    return TestIssuer(algorithm=algorithm, audience=audience)


@pytest.fixture
def oidc_overrides() -> dict[str, Any]:
    """``DRF_OIDC_JWKS`` keys applied last by the fixtures below (override this fixture to change them)."""
    return {}


@pytest.fixture
def oidc_issuer(oidc_overrides: dict[str, Any]) -> Iterator[TestIssuer]:
    """A test issuer trusted for this test, its JWKS installed into the cache; the setting is restored after."""
    issuer = _new_issuer(oidc_overrides)
    overrides = {k: v for k, v in oidc_overrides.items() if k != "ALGORITHMS"}
    with issuer.configure(**overrides):
        yield issuer


@pytest.fixture
def oidc_served_issuer(oidc_overrides: dict[str, Any]) -> Iterator[TestIssuer]:
    """A test issuer served on a real loopback HTTP server (``issuer.issuer`` is its URL); keys are fetched."""
    issuer = _new_issuer(oidc_overrides)
    overrides = {k: v for k, v in oidc_overrides.items() if k != "ALGORITHMS"}
    with issuer.serve(), issuer.configure(install=False, **overrides):
        yield issuer


@pytest.fixture
def oidc_token(oidc_issuer: TestIssuer) -> Callable[..., str]:
    """``oidc_token(sub="alice", **claims)``: a token of ``oidc_issuer`` (``expires_in=`` seconds, default 300)."""

    def mint(sub: str | None = "alice", **claims: Any) -> str:
        return oidc_issuer.token(sub, **claims)

    return mint


@pytest.fixture
def oidc_client(oidc_issuer: TestIssuer) -> Callable[..., Any]:
    """``oidc_client(sub="alice", **claims)``: a DRF ``APIClient`` authenticated with a fresh token."""
    from rest_framework.test import APIClient

    def make(sub: str | None = "alice", **claims: Any) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {oidc_issuer.token(sub, **claims)}")
        return client

    return make
