"""Read-only JSON: ``FrozenDict`` and ``FrozenList``, and ``freeze()`` to make them from parsed JSON.

A memoised token's payload is shared by every request that presents the token, so nothing in it may
change. The containers stay a ``dict`` and a ``list`` (``json.dumps``, DRF's renderer, ``isinstance``
and ``==`` work as on the parsed JSON); every mutating method raises ``TypeError``.
"""

from __future__ import annotations

from sys import intern
from types import MappingProxyType
from typing import Any, NoReturn

__all__ = ["FrozenDict", "FrozenList", "freeze"]


def _read_only(obj: object) -> NoReturn:
    raise TypeError(f"{type(obj).__name__} is read-only: verified claims are shared by every request with the token")


class FrozenDict(dict[str, Any]):
    """A read-only JSON object of a verified payload: still a ``dict`` (``json.dumps``, ``isinstance``)."""

    __slots__ = ()

    def __new__(cls, value: Any = (), /) -> FrozenDict:
        frozen: FrozenDict = freeze(dict(value))
        return frozen

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # filled by __new__; dict.__init__ would refill it in place

    def __setitem__(self, key: str, value: Any) -> NoReturn:
        _read_only(self)

    def __delitem__(self, key: str) -> NoReturn:
        _read_only(self)

    def __ior__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _read_only(self)

    def clear(self) -> NoReturn:
        _read_only(self)

    def pop(self, *args: Any) -> NoReturn:
        _read_only(self)

    def popitem(self) -> NoReturn:
        _read_only(self)

    def setdefault(self, *args: Any) -> NoReturn:
        _read_only(self)

    def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        _read_only(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self


class FrozenList(list[Any]):
    """A read-only JSON array of a verified payload: still a ``list`` (``json.dumps``, ``==`` with lists)."""

    __slots__ = ()

    def __new__(cls, value: Any = (), /) -> FrozenList:
        frozen: FrozenList = freeze(list(value))
        return frozen

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # filled by __new__; list.__init__ would refill it in place

    def __setitem__(self, index: Any, value: Any) -> NoReturn:
        _read_only(self)

    def __delitem__(self, index: Any) -> NoReturn:
        _read_only(self)

    def __iadd__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _read_only(self)

    def __imul__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _read_only(self)

    def append(self, value: Any) -> NoReturn:
        _read_only(self)

    def extend(self, values: Any) -> NoReturn:
        _read_only(self)

    def insert(self, index: Any, value: Any) -> NoReturn:
        _read_only(self)

    def pop(self, *args: Any) -> NoReturn:
        _read_only(self)

    def remove(self, value: Any) -> NoReturn:
        _read_only(self)

    def clear(self) -> NoReturn:
        _read_only(self)

    def sort(self, *args: Any, **kwargs: Any) -> NoReturn:
        _read_only(self)

    def reverse(self) -> NoReturn:
        _read_only(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self


def freeze(value: Any) -> Any:
    """Deep read-only copy of JSON-like data: objects become FrozenDicts, arrays FrozenLists.

    Already frozen parts are shared, not copied; object keys are interned (claim names repeat in every
    token, so memoised payloads share them). Explicit loops, one frame per level of nesting.
    """
    kind = type(value)
    if kind is dict or kind is MappingProxyType:
        obj = dict.__new__(FrozenDict)
        put = dict.__setitem__
        for k, v in value.items():
            put(obj, intern(k) if type(k) is str else k, freeze(v) if type(v) in _MUTABLE else v)
        return obj
    if kind is list:
        seq = list.__new__(FrozenList)
        list.extend(seq, value)
        for i, v in enumerate(value):
            if type(v) in _MUTABLE:
                list.__setitem__(seq, i, freeze(v))
        return seq
    if kind is tuple and any(type(v) in _MUTABLE for v in value):
        return tuple(freeze(v) for v in value)
    return value


_MUTABLE = frozenset({dict, list, tuple, MappingProxyType})
