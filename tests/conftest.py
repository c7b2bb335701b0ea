"""Shared fixtures: a real loopback JWKS server per test, settings pointing at it, a clean cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from drf_oidc_jwks import jwks, tokens, users  # noqa: F401  (imported, so each registers its reset)
from drf_oidc_jwks.conf import reset_state
from drf_oidc_jwks.testing import JWKSServer, TestIssuer
from tests.services import redis_server  # noqa: F401  (session fixture: a real Redis on loopback)

AUDIENCE = "https://api.test"


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Each test starts with an empty JWKS cache and no in-process memo."""
    for alias in ("default",):
        caches[alias].clear()
    reset_state()
    yield
    reset_state()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Database access for every test: with SYNC_USERS (the default) a request reads the user's state.

    A marker, not a fixture, so pytest-django sees it when it decides which test databases to create.
    """
    for item in items:
        if item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db)


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer(audience=AUDIENCE)


@pytest.fixture
def server(issuer: TestIssuer) -> Iterator[JWKSServer]:
    """The issuer served on 127.0.0.1 (its ``ISSUER`` becomes the server's base URL)."""
    with issuer.serve() as srv:
        yield srv


@pytest.fixture
def oidc_settings(settings: Any, issuer: TestIssuer, server: JWKSServer) -> Callable[..., dict[str, Any]]:
    """Configure DRF_OIDC_JWKS for the served issuer; call it again with overrides."""

    def configure(**overrides: Any) -> dict[str, Any]:
        # A Bearer-only deployment unless a test turns DPoP on: its challenges name Bearer alone
        # (tests/test_dpop_auth.py covers the default, "allowed", and its two challenges).
        value = issuer.settings(**{"DPOP": "off", **overrides})
        settings.DRF_OIDC_JWKS = value
        return value

    configure()
    return configure


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def call(api: APIClient) -> Callable[..., Any]:
    """``call(token)`` GETs /api/me with ``Authorization: Bearer <token>`` (or a raw header)."""

    def _call(token: str | None = None, *, header: str | None = None, path: str = "/api/me") -> Any:
        if header is None and token is not None:
            header = f"Bearer {token}"
        extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
        return api.get(path, **extra)

    return _call


@pytest.fixture
def heard() -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """``heard(signal)`` connects a recording receiver and returns the list it fills: each sending's arguments
    as a dict (``heard(signal, with_sender=True)``: the sender too, under ``"sender"``)."""
    connected: list[tuple[Any, Callable[..., None]]] = []

    def listen(signal: Any, *, with_sender: bool = False) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []

        def receiver(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            calls.append({"sender": sender, **kwargs} if with_sender else kwargs)

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return calls

    yield listen
    for signal, receiver in connected:
        signal.disconnect(receiver)
