"""Background refreshes: at most one per issuer per process, none left running at interpreter exit.

The JWKS client starts its refresh threads (stale keys, refresh-ahead) here. Threads are daemons, so a
stuck one never blocks shutdown for long; at exit each is joined for at most :data:`EXIT_WAIT` seconds,
so a refresh that is about to finish still writes its keys to the shared cache.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable

#: The name of every refresh thread (tests and thread dumps look for it).
THREAD_NAME = "drf-oidc-jwks-refresh"
#: Seconds the interpreter waits at exit for all running refreshes together.
EXIT_WAIT = 2.0

_running: dict[str, threading.Thread] = {}
_lock = threading.Lock()


def start(name: str, target: Callable[[], None], after: Callable[[], None] | None = None) -> bool:
    """Run ``target`` in a daemon thread unless one named ``name`` runs already; say whether it started.

    ``after`` runs once the thread no longer counts as running (so whoever it wakes may start the next one).
    """
    with _lock:
        thread = _running.get(name)
        if thread is not None and thread.is_alive():
            return False

        def run() -> None:
            try:
                target()
            finally:
                with _lock:
                    if _running.get(name) is threading.current_thread():
                        del _running[name]
                if after is not None:
                    after()

        thread = threading.Thread(target=run, name=THREAD_NAME, daemon=True)
        _running[name] = thread
        thread.start()
        return True


def running(name: str) -> bool:
    """Say whether a refresh named ``name`` runs in this process now."""
    with _lock:
        thread = _running.get(name)
    return thread is not None and thread.is_alive()


def join_all(timeout: float = EXIT_WAIT) -> None:
    """Wait for the running refreshes, at most ``timeout`` seconds in all."""
    deadline = time.monotonic() + timeout
    with _lock:
        threads = list(_running.values())
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(join_all)
