"""Throwaway Redis and PostgreSQL servers on 127.0.0.1 for the test suite, and a runner for the second pass.

    python -m tests.services -- python -m pytest -q     # the whole suite against Redis + PostgreSQL

The runner starts both servers in temp dirs, exports ``DATABASE_URL``, ``CACHE_URL`` (django-environ syntax,
read by testproject/settings.py), ``TEST_REDIS_URL`` and ``TEST_REDIS_PID``, runs the command, stops the servers
(also on failure or interrupt) and exits with the command's status. The binaries come from
scripts/install-services.sh.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
PG_DATABASE = "drf_oidc_jwks"
PG_USER = "drf_oidc_jwks"
# initdb and postgres refuse to run as root; this account runs them when the suite runs as root (CI).
PG_SYSTEM_USER_FALLBACK = "drf-oidc-jwks-pg"


class ServiceError(RuntimeError):
    """A test server could not be found, started or stopped."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    """Tell whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_process(proc: subprocess.Popen[bytes], first: signal.Signals) -> None:
    """Signal ``proc`` by PID, escalating to SIGKILL if it outlives STOP_TIMEOUT."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(first)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


def _wait_port_closed(port: int, timeout: float = STOP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port):
        if time.monotonic() > deadline:
            raise ServiceError(f"port {port} still accepts connections {timeout:.0f} s after the stop")
        time.sleep(0.02)


_S = TypeVar("_S", bound="_Server")


class _Server:
    """Start/stop bookkeeping shared by both servers: one temp dir, one port, one process at a time."""

    name = "server"

    def __init__(self, port: int | None = None) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"drf-oidc-jwks-{self.name}-"))
        self.log = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The PID of the running server process, or None when stopped."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the server process this object started is alive."""
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv: list[str], **kwargs: Any) -> None:
        with open(self.log, "ab") as log:
            # A new session: Ctrl-C in the terminal reaches the test command, and we stop the servers ourselves.
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )

    def _wait_ready(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if not self.running:
                raise ServiceError(f"{self.name} exited while starting; log:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"{self.name} not ready after {START_TIMEOUT:.0f} s; log:\n{_tail(self.log)}")
            time.sleep(0.02)

    def start(self) -> _Server:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the server and delete its temp dir."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RedisServer(_Server):
    """A redis-server on 127.0.0.1 without persistence; ``stop()`` then ``start()`` reuses the same port."""

    name = "redis"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        # A server someone else started (the runner): we can stop it, then start a replacement of our own.
        self._adopted = False
        self._adopted_pid: int | None = None

    @classmethod
    def from_url(cls, url: str, pid: int | None = None) -> RedisServer:
        """Adopt the running Redis at ``redis://127.0.0.1:PORT/0`` (stop() signals ``pid`` when given)."""
        from urllib.parse import urlparse

        parsed = urlparse(url)
        if parsed.hostname not in (HOST, "localhost") or not parsed.port:
            raise ServiceError(f"only a loopback Redis can be adopted, not {url!r}")
        if not port_open(parsed.port):
            raise ServiceError(f"nothing listens at {url!r}")
        server = cls(parsed.port)
        server._adopted, server._adopted_pid = True, pid
        return server

    @property
    def url(self) -> str:
        """``redis://`` URL of database 0, for redis-py and Django's RedisCache LOCATION."""
        return f"redis://{self.host}:{self.port}/0"

    @contextlib.contextmanager
    def database(self, db: int) -> Iterator[tuple[str, Any]]:
        """``(url, redis-py client)`` of database ``db``, emptied first: a test file's own database."""
        import redis

        url = self.url.rsplit("/", 1)[0] + f"/{db}"
        raw = redis.Redis.from_url(url)
        raw.flushdb()
        try:
            yield url, raw
        finally:
            raw.close()

    @contextlib.contextmanager
    def cache(self, db: int) -> Iterator[tuple[Any, Any]]:
        """``(Django RedisCache, redis-py client)`` on database ``db``, emptied first."""
        from django.core.cache.backends.redis import RedisCache

        with self.database(db) as (url, raw):
            cache = RedisCache(url, {})
            try:
                yield cache, raw
            finally:
                cache.close()

    @property
    def cache_url(self) -> str:
        """django-environ ``CACHE_URL`` selecting Django's built-in RedisCache."""
        return f"rediscache://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._adopted or super().running

    @property
    def pid(self) -> int | None:
        if self._adopted:
            return self._adopted_pid
        return super().pid

    def close(self) -> None:
        """Stop the server if this object started it (an adopted one is its owner's to stop); delete the temp dir."""
        if not self._adopted:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ping(self) -> bool:
        """Whether the server answers PING with PONG."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> RedisServer:
        """Start redis-server (no-op when running) and wait until it answers PING."""
        if self.running:
            return self
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.access(binary, os.X_OK):
            raise ServiceError("redis-server not found: run `bash scripts/install-services.sh`")
        # A cache, not a store: no snapshots, no AOF, so a restart comes back empty like a real cache loss.
        argv = [binary, "--bind", self.host, "--port", str(self.port), "--dir", str(self.dir)]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "", "--protected-mode", "yes"]
        self._spawn(argv)
        self._wait_ready(self.ping)
        return self

    def stop(self) -> None:
        """Stop the server by PID and wait until its port is closed."""
        if self._adopted:
            self._adopted = False
            if self._adopted_pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._adopted_pid, signal.SIGTERM)
            else:
                with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=2) as s:
                    s.sendall(b"SHUTDOWN NOSAVE\r\n")
                    s.recv(16)
            _wait_port_closed(self.port)
            return
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM)
            self.proc = None

    @contextlib.contextmanager
    def stopped(self) -> Iterator[RedisServer]:
        """Stop the server for the ``with`` block and start it again on the same port afterwards."""
        self.stop()
        try:
            yield self
        finally:
            self.start()


def _pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ServiceError("PostgreSQL's initdb not found: run `bash scripts/install-services.sh`")


def _unprivileged_account() -> pwd.struct_passwd:
    for name in ("postgres", PG_SYSTEM_USER_FALLBACK):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER_FALLBACK],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(PG_SYSTEM_USER_FALLBACK)


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust auth, tuned for speed rather than durability."""

    name = "postgres"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.bindir = _pg_bindir()
        self.data = self.dir / "data"
        self._account: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._account = _unprivileged_account()
            os.chown(self.dir, self._account.pw_uid, self._account.pw_gid)
        self._provisioned = False

    @property
    def url(self) -> str:
        """``postgres://`` URL of the test database as the test role (django-environ's DATABASE_URL)."""
        return f"postgres://{PG_USER}@{self.host}:{self.port}/{PG_DATABASE}"

    def _user_kwargs(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        account = self._account
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "cwd": str(self.dir)}

    def _env(self) -> dict[str, str]:
        # PG* variables of the caller (PGDATA, PGPORT, PGHOST...) must not redirect the throwaway cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._account is not None:
            env["HOME"] = str(self.dir)
        return env

    def _ready(self) -> bool:
        # Line 8 of postmaster.pid turns to "ready" once connections are accepted (PostgreSQL >= 10).
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def start(self) -> PostgresServer:
        """initdb on first start, then run postgres and wait until it accepts connections."""
        if self.running:
            return self
        if not (self.data / "PG_VERSION").exists():
            initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
            initdb += ["--no-sync", "-E", "UTF8", "--locale=C"]
            done = subprocess.run(initdb, env=self._env(), capture_output=True, check=False, **self._user_kwargs())
            if done.returncode != 0:
                raise ServiceError(f"initdb failed:\n{done.stdout.decode()}{done.stderr.decode()}")
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.dir),
            # Throwaway data: durability buys nothing and costs seconds on every commit and checkpoint.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "100",
        }
        argv = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self._spawn(argv, env=self._env(), **self._user_kwargs())
        self._wait_ready(self._ready)
        if not self._provisioned:
            self._provision()
        return self

    def _provision(self) -> None:
        psql = [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port)]
        psql += ["-U", "postgres", "-d", "postgres"]
        # CREATEDB: the Django test runner creates and drops test_<name>; separate -c because CREATE DATABASE
        # refuses to run inside the implicit transaction of a multi-statement string.
        psql += ["-c", f"CREATE ROLE {PG_USER} LOGIN CREATEDB", "-c", f"CREATE DATABASE {PG_DATABASE} OWNER {PG_USER}"]
        done = subprocess.run(psql, env=self._env(), capture_output=True, timeout=START_TIMEOUT, check=False)
        if done.returncode != 0:
            raise ServiceError(f"creating the test role and database failed:\n{done.stderr.decode()}")
        self._provisioned = True

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT: roll back open transactions, no waiting for clients)."""
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGINT)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis on loopback: the runner's (``TEST_REDIS_URL``) under ``python -m tests.services``, else our own.

    ``with redis_server.stopped(): ...`` takes it down for a block and brings it back on the same port.
    """
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        pid = os.environ.get("TEST_REDIS_PID")
        server = RedisServer.from_url(url, int(pid) if pid else None)
    else:
        server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workers: int = 2) -> Iterator[str]:
    """Run the testproject under gunicorn on a free loopback port; yield its base URL, stop it by PID after."""
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="drf-oidc-jwks-gunicorn-") as tmp:
        log = Path(tmp) / "gunicorn.log"
        with log.open("wb") as out:
            argv = [sys.executable, "-m", "gunicorn", "testproject.wsgi:application", "--workers", str(workers)]
            argv += ["--bind", f"{HOST}:{port}", "--log-level", "warning"]
            proc = subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while not port_open(port):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise ServiceError(f"gunicorn did not start:\n{_tail(log)}")
                    time.sleep(0.1)
                yield f"http://{HOST}:{port}"
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def run(command: list[str]) -> int:
    """Run ``command`` with both servers up and their URLs in the environment; return its exit status."""
    if not command:
        raise SystemExit("usage: python -m tests.services -- <command...>")
    redis, postgres = RedisServer(), PostgresServer()
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: FrameType | None) -> None:
        # Ctrl-C already reaches the command (same process group); SIGTERM is passed on so it can clean up too.
        if signum == signal.SIGTERM and child is not None and child.poll() is None:
            child.send_signal(signum)

    try:
        started = time.monotonic()
        redis.start()
        postgres.start()
        print(
            f"services: redis {redis.url} (pid {redis.pid}), postgres {postgres.url} (pid {postgres.pid}), "
            f"up in {time.monotonic() - started:.2f} s",
            file=sys.stderr,
            flush=True,
        )
        env = dict(os.environ)
        env.update(
            DATABASE_URL=postgres.url,
            CACHE_URL=redis.cache_url,
            TEST_REDIS_URL=redis.url,
            TEST_REDIS_PID=str(redis.pid),
        )
        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            child = subprocess.Popen(command, env=env)
            status = child.wait()
            # A command killed by a signal exits like it would under a shell: 128 + the signal number.
            return 128 - status if status < 0 else status
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        stopping = time.monotonic()
        redis.close()
        postgres.close()
        print(f"services: stopped in {time.monotonic() - stopping:.2f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    sys.exit(run(args))
