"""A cached property whose lock belongs to the instance.

Python 3.11's ``functools.cached_property`` holds one lock for the attribute on every instance of
the class: the nodes' first engine requests (an SSH connection each, on real hosts) waited for one
another, one node after the other. Here each instance has its own lock, so nodes connect side by
side, and one instance still computes its value once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class cached(Generic[T]):  # noqa: N801 - used like the decorator it replaces
    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> cached[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> T | cached[T]:
        if obj is None:
            return self
        d = obj.__dict__
        if self.name in d:  # set by an earlier call (or put there on purpose)
            return d[self.name]  # type: ignore[no-any-return]
        with d.setdefault(f"_{self.name}_lock", threading.Lock()):  # dict.setdefault is atomic
            if self.name not in d:
                d[self.name] = self.fn(obj)
            return d[self.name]  # type: ignore[no-any-return]
