"""The structured fields every record the library logs carries, so JSON log formatters pick them up.

Each record gets ``code``, ``issuer`` and ``kid`` (None when they do not apply): ``logger.info(...,
extra=fields(code=..., issuer=...))``. ``issuer`` is a configured ``ISSUER`` where one is known;
``kid`` is the token's unverified kid, already made safe to print. Records logged without them get
them as None from a filter on the library's logger, so a formatter can always name all three.
"""

from __future__ import annotations

import logging
from typing import Any

FIELDS = ("code", "issuer", "kid")
#: The one logger every module of the library logs on.
LOGGER = "drf_oidc_jwks"


def safe(value: Any, limit: int = 64) -> str:
    """Render an untrusted value for a log line: bounded and escaped."""
    text = value if isinstance(value, str) else repr(value)
    text = text[:limit].encode("unicode_escape").decode("ascii")
    return text + ("…" if len(str(value)) > limit else "")


def fields(*, code: str | None = None, issuer: str | None = None, kid: str | None = None) -> dict[str, Any]:
    """The ``extra`` mapping of one log record: always all of :data:`FIELDS`."""
    return {"code": code, "issuer": issuer, "kid": kid}


class DefaultFields(logging.Filter):
    """Give a record of the library's logger the fields it was logged without (None), so every one has them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, None)
        return True


def install() -> None:
    """Attach :class:`DefaultFields` to the ``drf_oidc_jwks`` logger once."""
    target = logging.getLogger(LOGGER)
    if not any(isinstance(f, DefaultFields) for f in target.filters):
        target.addFilter(DefaultFields())


install()
