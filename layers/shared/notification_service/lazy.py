"""Build-once-per-cold-start holders for a handler's dependencies (overridable by tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """Builds its value on first use, so importing a handler stays cheap and a bad setting fails the
    first invocation with a clear message instead of the import."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
        return self._value

    def set(self, value: T | None) -> None:
        """Replace the value (tests), or forget it so the next use builds it again."""
        self._value = value
