"""The suite's real services: Django uses the database and cache the environment declares, and the servers
start, stop and come back as the fault-injection tests need (tests/services.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection

from tests.services import PostgresServer, RedisServer, port_open

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.services

PRINT_URLS = "import json, os; print(json.dumps({k: os.environ[k] for k in ('DATABASE_URL', 'TEST_REDIS_URL')}))"


def runner_argv(code: str) -> list[str]:
    """``python -m tests.services -- python -c <code>``, the command printing the URLs it was given first."""
    return [sys.executable, "-m", "tests.services", "--", sys.executable, "-u", "-c", f"{PRINT_URLS}; {code}"]


def declared_database_vendor() -> str:
    """The vendor DATABASE_URL asks for; unset means the embedded SQLite default."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://", "pgsql://")):
        return "postgresql"
    assert url == "" or url.startswith("sqlite"), f"this suite knows PostgreSQL and SQLite, not {url!r}"
    return "sqlite"


def declared_cache_backend() -> str:
    """The backend CACHE_URL asks for; unset means the embedded LocMemCache default."""
    url = os.environ.get("CACHE_URL", "")
    if url.startswith(("rediscache://", "redis://")):
        return "django.core.cache.backends.redis.RedisCache"
    assert url == "" or url.startswith("locmemcache"), f"this suite knows Redis and LocMemCache, not {url!r}"
    return "django.core.cache.backends.locmem.LocMemCache"


def ports(urls: dict[str, str]) -> list[int]:
    return [int(url.rsplit(":", 1)[1].split("/")[0]) for url in urls.values()]


@pytest.mark.django_db
def test_the_default_database_is_the_one_the_environment_declares() -> None:
    assert connection.vendor == declared_database_vendor()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT current_user, inet_server_addr()::text")
            assert cursor.fetchone() == ("drf_oidc_jwks", "127.0.0.1/32")
        else:
            cursor.execute("SELECT sqlite_version()")
            assert cursor.fetchone()[0]


def test_the_default_cache_is_the_one_the_environment_declares() -> None:
    cache = caches["default"]
    assert f"{type(cache).__module__}.{type(cache).__qualname__}" == declared_cache_backend()
    cache.set("services-probe", {"ok": 1}, 30)
    assert cache.get("services-probe") == {"ok": 1}
    if isinstance(cache, RedisCache):
        # The key must live in the runner's Redis, not in some other server the settings happen to name.
        client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
        try:
            assert client.exists(cache.make_key("services-probe")) == 1
        finally:
            client.close()


def test_redis_cache_fails_while_redis_is_stopped_and_works_again_when_it_returns(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, {})
    cache.set("before", "kept-in-memory-only", 30)
    assert cache.get("before") == "kept-in-memory-only"
    port, pid = redis_server.port, redis_server.pid
    with redis_server.stopped():
        assert not port_open(port)
        with pytest.raises(redis.exceptions.ConnectionError):
            cache.get("before")
    assert redis_server.port == port and redis_server.running
    assert redis_server.pid != pid
    # No persistence: a restarted Redis is an empty cache, as after a real cache-server loss.
    assert cache.get("before") is None
    cache.set("after", "back", 30)
    assert cache.get("after") == "back"


def test_postgres_restarts_on_the_same_port_with_its_data() -> None:
    with PostgresServer() as server:
        dsn = server.url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('before the restart')")
        port, pid = server.port, server.pid
        server.stop()
        assert not port_open(port)
        server.start()
        assert server.port == port and server.pid != pid
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT value FROM kept").fetchall() == [("before the restart",)]
    assert not port_open(port)


def test_the_runner_exports_loopback_urls_exits_with_the_command_status_and_stops_the_servers() -> None:
    done = subprocess.run(
        runner_argv("raise SystemExit(7)"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 7, done.stderr
    urls = json.loads(done.stdout.strip().splitlines()[-1])
    assert urls["DATABASE_URL"].startswith("postgres://drf_oidc_jwks@127.0.0.1:")
    assert urls["TEST_REDIS_URL"].startswith("redis://127.0.0.1:")
    assert not any(port_open(port) for port in ports(urls))


def test_the_runner_stopped_with_sigterm_passes_it_on_and_still_stops_the_servers() -> None:
    runner = subprocess.Popen(
        runner_argv("import time; time.sleep(60)"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None
        urls = json.loads(runner.stdout.readline())
        assert all(port_open(port) for port in ports(urls))
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 128 + signal.SIGTERM, err
    assert not any(port_open(port) for port in ports(urls))
