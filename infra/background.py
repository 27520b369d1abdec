"""A named daemon thread that repeats its work until asked to stop (the local event sources)."""

from __future__ import annotations

import threading


class BackgroundLoop:
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 10) -> None:
        self.request_stop()
        self._thread.join(timeout)
