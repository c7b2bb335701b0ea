"""Workers of one deployment for the JWKS client's tests: clients sharing a cache, a gate holding an IdP answer.

Two :class:`~drf_oidc_jwks.jwks.JWKSClient` objects on one cache are two workers. A :class:`WatchedCache`
is a real LocMemCache that counts its calls and can act between two of them; a :class:`Gate` keeps a fetch
at the loopback IdP until the test opens it; :class:`Outcome` runs a request in a thread of its own. So
the tests see "it waits", "it polls", "it fetched" from real calls, not from sleeps racing the clock.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache

from drf_oidc_jwks import background
from drf_oidc_jwks.conf import get_settings
from drf_oidc_jwks.exceptions import TokenError
from drf_oidc_jwks.jwks import JWKSClient
from drf_oidc_jwks.testing import Response


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def worker(clock: Any = None, cache: BaseCache | None = None) -> JWKSClient:
    """A client of its own: another worker process sharing the configured cache (or ``cache``)."""
    s = get_settings()
    return JWKSClient(s.issuers[0], s, clock=clock or Clock(), cache=cache)


class Gate:
    """An IdP answer held back until the test opens it: a fetch stays in flight as long as the test needs.

    The answer is the issuer's JWKS as it is when the gate opens.
    """

    def __init__(self, issuer: Any) -> None:
        self.issuer = issuer
        self.arrived = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> bytes:
        self.arrived.set()
        self.opened.wait(10)
        return json.dumps(self.issuer.jwks()).encode()


def gated(issuer: Any, server: Any) -> Iterator[Gate]:
    """The body of a ``gate`` fixture: the JWKS endpoint answers only once ``gate.opened`` is set (always set
    at the end of the test, whose background refreshes are then joined)."""
    held = Gate(issuer)
    server.respond("/jwks.json", Response(200, held))
    try:
        yield held
    finally:
        held.opened.set()
        background.join_all(5)


def lock_held(client: JWKSClient) -> bool:
    return client.snapshot().refresh_in_progress


class WatchedCache(LocMemCache):
    """A real LocMemCache (instances of one name share their entries, as workers share a cache) that counts
    its calls per method and entry (``lock``, ``jwks``, ``cooldown_answer``...) and runs a hook once after
    the next such call: how a test sees a worker poll, or acts between two of its cache calls."""

    def __init__(self, name: str) -> None:
        super().__init__(name, {})
        self.calls: Counter[tuple[str, str]] = Counter()
        self._hooks: list[tuple[str, str, Callable[[], Any]]] = []
        self._seen = threading.Condition()

    def after(self, method: str, entry: str, hook: Callable[[], Any]) -> None:
        with self._seen:
            self._hooks.append((method, entry, hook))

    def wait_calls(self, method: str, entry: str, count: int, timeout: float = 5) -> bool:
        with self._seen:
            return self._seen.wait_for(lambda: self.calls[(method, entry)] >= count, timeout)

    def _called(self, method: str, key: Any) -> None:
        entry = str(key).rsplit(":", 1)[-1]
        with self._seen:
            self.calls[(method, entry)] += 1
            self._seen.notify_all()
            due = [h for h in self._hooks if h[:2] == (method, entry)]
            self._hooks = [h for h in self._hooks if h not in due]
        for _method, _entry, hook in due:
            hook()

    def get(self, key: Any, *args: Any, **kwargs: Any) -> Any:
        value = super().get(key, *args, **kwargs)
        self._called("get", key)
        return value

    def add(self, key: Any, *args: Any, **kwargs: Any) -> bool:
        added = super().add(key, *args, **kwargs)
        self._called("add", key)
        return added

    def set(self, key: Any, *args: Any, **kwargs: Any) -> None:
        super().set(key, *args, **kwargs)
        self._called("set", key)


def shared_caches(workers: int = 2) -> list[WatchedCache]:
    """The caches of ``workers`` workers, on the same entries."""
    name = f"jwks-{uuid.uuid4().hex}"
    return [WatchedCache(name) for _ in range(workers)]


def two_workers(clock: Clock) -> tuple[JWKSClient, JWKSClient, WatchedCache]:
    """This worker and another on the same cache entries and ``clock``, with this worker's watched cache."""
    mine, theirs = shared_caches()
    return worker(clock, mine), worker(clock, theirs), mine


class Outcome:
    """``fn()`` run in a thread of its own: its result or the exception it raised."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.value = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def result(self, timeout: float = 5) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "still running"
        if self.error is not None:
            raise self.error
        return self.value


def unknown_key(client: JWKSClient, kid: str) -> float:
    """Ask for ``kid``, expect ``unknown_key``; return how long the answer took."""
    started = time.monotonic()
    with pytest.raises(TokenError) as exc:
        client.get_key(kid, "RS256")
    assert exc.value.code == "unknown_key"
    return time.monotonic() - started
