"""A real LocMemCache that counts calls per method, to prove what the hot path does not do."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.cache.backends.locmem import LocMemCache


class CountingLocMemCache(LocMemCache):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[str] = Counter()

    def reset_counts(self) -> None:
        self.calls = Counter()

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["get"] += 1
        return super().get(*args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["set"] += 1
        return super().set(*args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["add"] += 1
        return super().add(*args, **kwargs)
