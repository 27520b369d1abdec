"""One async client per running event loop. In Lambda (and the local stack) powertools keeps its loop
across invocations, so a warm instance reuses its connections; a new loop gets a new client, since an
async client cannot outlive the loop it was made on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> T:
        """The value for the running loop (call it from a coroutine)."""
        loop = asyncio.get_running_loop()
        if self._value is None or self._loop is not loop:
            self._value, self._loop = self._factory(), loop
        return self._value
