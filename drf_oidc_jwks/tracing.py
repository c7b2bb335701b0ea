"""Optional OpenTelemetry: outbound calls to the identity provider as spans, refusals as span events.

Active only when ``opentelemetry-api`` is installed; without it every function here does nothing. The
spans carry the URL's host (never its query, never a credential) and the HTTP status.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

ENABLED = importlib.util.find_spec("opentelemetry") is not None and (
    importlib.util.find_spec("opentelemetry.trace") is not None
)
TRACER = "drf_oidc_jwks"


class Call:
    """What a span learns about one outbound call while it runs."""

    def __init__(self, span: Any) -> None:
        self.span = span

    def answered(self, status: int) -> None:
        """Record the HTTP status of the answer."""
        if self.span is not None:
            self.span.set_attribute("http.response.status_code", status)


@contextlib.contextmanager
def outbound(method: str, url: str) -> Iterator[Call]:
    """A client span around one HTTP exchange with the identity provider (a no-op without OpenTelemetry)."""
    if not ENABLED:
        yield Call(None)
        return
    from opentelemetry import trace

    parts = urlsplit(url)
    attributes = {"http.request.method": method, "server.address": parts.hostname or "", "url.path": parts.path}
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span(
        f"{method} {parts.hostname}", kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield Call(span)


def refusal_event(code: str, issuer: str | None) -> None:
    """Add a ``drf_oidc_jwks.token_refused`` event to the current span, when one is recording."""
    if not ENABLED:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.add_event("drf_oidc_jwks.token_refused", {"code": code, "issuer": issuer or ""})
