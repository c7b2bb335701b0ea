"""``X-Served-By: <pid>`` on every response, for load tests that need to see each worker answer."""

from __future__ import annotations

import os
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


def served_by(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response["X-Served-By"] = str(os.getpid())
        return response

    return middleware
