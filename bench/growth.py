"""Growth (issue 18, target 5): per-call cost with 1 and 100 keys in the JWKS, 1 and 20 issuers, 1,000 and
100,000 users in the database (10,000 with ``--quick``).

Both sizes are timed in every pass, interleaved, and the table gives the ratio of the larger to the
smaller (flat within 10% is the target), for the memoised request and the memo miss (``TOKEN_CACHE_TTL: 0``);
for users, a synced user used by the view, from its cached state and with ``USER_CACHE_TTL: 0`` (one
SELECT per call). Each user count has a database of its own (in-memory SQLite, routed by ``UsersRouter``).
The token's key is the last one published and its issuer the last one configured: the worst place for a
linear search.

    python -m bench.growth            # 9 passes; --quick for CI
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

AUDIENCE = "https://api.bench"


def configure_django() -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "drf_oidc_jwks"],
        DATABASES={
            alias: {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"} for alias in ("default", *USER_DBS)
        },
        DATABASE_ROUTERS=["bench.growth.UsersRouter"],
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "growth"}},
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DRF_OIDC_JWKS={"ISSUER": "https://growth.bench", "AUDIENCE": AUDIENCE},
    )
    django.setup()
    from django.core.management import call_command

    for alias in ("default", *USER_DBS):
        call_command("migrate", database=alias, verbosity=0)


#: The user databases: the smaller and the larger user count.
USER_DBS = ("users_small", "users_large")
_current_db = ["default"]


class UsersRouter:
    """Every query goes to the database of the user count being timed."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return _current_db[0]

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return _current_db[0]

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


def keys_setup(count: int, memo: bool) -> tuple[Callable[[], AbstractContextManager[Any]], str]:
    """An issuer publishing ``count`` keys, signing with the last (fillers are EdDSA: cheap to make)."""
    from drf_oidc_jwks.testing import TestIssuer

    issuer = TestIssuer(f"https://keys{count}.bench", audience=AUDIENCE)
    issuer.keys.clear()
    for _ in range(count - 1):
        issuer.add_key("EdDSA", fresh=True)
    issuer.add_key("RS256")
    token = issuer.token("alice")
    ttl = 300 if memo else 0
    return (lambda: issuer.configure(SYNC_USERS=False, TOKEN_CACHE_TTL=ttl)), token


def issuers_setup(count: int, memo: bool) -> tuple[Callable[[], AbstractContextManager[Any]], str]:
    """``count`` issuers in ``ISSUERS``; the token comes from the last."""
    from django.test import override_settings

    from drf_oidc_jwks.testing import TestIssuer

    issuers = [TestIssuer(f"https://iss{i}-of-{count}.bench", audience=AUDIENCE) for i in range(count)]
    token = issuers[-1].token("alice")
    value = {
        "ISSUERS": [i.settings() for i in issuers],
        "SYNC_USERS": False,
        "TOKEN_CACHE_TTL": 300 if memo else 0,
    }

    @contextmanager
    def configured() -> Iterator[None]:
        with override_settings(DRF_OIDC_JWKS=value):
            for i in issuers:
                i.install()
            yield

    return configured, token


def users_setup(count: int, memo: bool) -> tuple[Callable[[], AbstractContextManager[Any]], str]:
    """``count`` synced users (with identities) in a database of their own; the token is the last user's."""
    from django.contrib.auth import get_user_model

    from drf_oidc_jwks.models import OIDCIdentity
    from drf_oidc_jwks.testing import TestIssuer

    alias = USER_DBS[0] if count == USER_COUNTS[0] else USER_DBS[1]
    issuer = TestIssuer(f"https://users{count}.bench", audience=AUDIENCE)
    token = issuer.token(f"user-{count - 1}")

    @contextmanager
    def configured() -> Iterator[None]:
        previous, _current_db[0] = _current_db[0], alias
        try:
            with issuer.configure(SYNC_USERS=True, USER_CACHE_TTL=60 if memo else 0):
                yield
        finally:
            _current_db[0] = previous

    with configured():
        time_calls(configured, token, 1)  # the sync creates the last user, then the others join it
        User = get_user_model()
        existing = OIDCIdentity.objects.filter(issuer=issuer.issuer).count()
        if existing < count:
            fingerprint = OIDCIdentity.objects.get(issuer=issuer.issuer).fingerprint
            batch = [User(username=f"{issuer.issuer}-{i}") for i in range(count - existing)]
            User.objects.bulk_create(batch, batch_size=5000)
            OIDCIdentity.objects.bulk_create(
                [
                    OIDCIdentity(issuer=issuer.issuer, subject=f"user-{i}", user=u, fingerprint=fingerprint)
                    for i, u in enumerate(batch)
                ],
                batch_size=5000,
            )
    return configured, token


#: The user counts of the users row (main() lowers the larger one for --quick).
USER_COUNTS = [1000, 100_000]


def time_calls(configured: Callable[[], AbstractContextManager[Any]], token: str, calls: int) -> float:
    """Mean µs of one ``authenticate`` call, settings in force and memo warm."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from drf_oidc_jwks.authentication import JWKSAuthentication

    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
    auth = JWKSAuthentication()

    def call() -> Any:
        return auth.authenticate(request)[0].pk  # type: ignore[index]  # the view uses the user (a synced one loads)

    with configured():
        for _ in range(min(50, calls)):
            call()
        start = time.perf_counter()
        for _ in range(calls):
            call()
        return (time.perf_counter() - start) / calls * 1e6


MEMO_LABELS = ("memoised", "memo miss")
ROWS: list[tuple[str, Any, Any, tuple[str, str]]] = [
    ("JWKS keys", keys_setup, (1, 100), MEMO_LABELS),
    ("issuers", issuers_setup, (1, 20), MEMO_LABELS),
    ("users in the database", users_setup, USER_COUNTS, ("state cached", "USER_CACHE_TTL 0, one SELECT")),
]


def measure(passes: int, calls: int) -> list[dict[str, Any]]:
    results = []
    for name, setup, (small, large), labels in ROWS:
        for memo in (True, False):
            cases = {n: setup(n, memo) for n in (small, large)}
            times: dict[int, list[float]] = {small: [], large: []}
            for _ in range(passes + 1):  # the first pass warms up
                for n, (configured, token) in cases.items():
                    times[n].append(time_calls(configured, token, calls))
            low, high = (statistics.median(times[n][1:]) for n in (small, large))
            results.append(
                {
                    "row": f"{name}: {small:,} -> {large:,}, {labels[0] if memo else labels[1]}",
                    "small_us": round(low, 2),
                    "large_us": round(high, 2),
                    "ratio": round(high / low, 3),
                    "flat": high / low <= 1.10,
                }
            )
    return results


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| growth | small µs | large µs | large / small | flat (≤ 1.10) |", "| --- | ---: | ---: | ---: | --- |"]
    for r in results:
        flat = "yes" if r["flat"] else "no"
        lines.append(f"| {r['row']} | {r['small_us']} | {r['large_us']} | {r['ratio']:.2f} | {flat} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=9)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="3 passes of 300 calls, for CI")
    args = parser.parse_args(argv)
    if args.quick:
        args.passes, args.calls = 3, 300
        USER_COUNTS[1] = 10_000  # 100,000 users take a while to create
    configure_django()
    print(table(measure(args.passes, args.calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
