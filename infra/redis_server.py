"""The Redis-compatible cache: the one at REDIS_URL when it answers, else a `redis-server` we start."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import redis

INSTALL_HINT = (
    "install one (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL"
)


class RedisUnavailable(RuntimeError):
    pass


@dataclass
class RedisHandle:
    url: str
    process: subprocess.Popen[bytes] | None = None
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def ensure_redis(url: str, fallback_port: int | None = None) -> RedisHandle:
    """Use `url` when it answers; otherwise start redis-server (on the URL's port, or `fallback_port`)."""
    if answers(url):
        return RedisHandle(url)
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable(
            f"Redis does not answer at {url} and no redis-server is installed: {INSTALL_HINT}"
        )
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise RedisUnavailable(
            f"Redis does not answer at {url} (a remote host: start it there, or unset REDIS_URL)"
        )
    port = fallback_port or parsed.port or 6379
    workdir = tempfile.TemporaryDirectory(prefix="notification-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir.name,
            "--logfile",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = RedisHandle(f"redis://127.0.0.1:{port}/0", process, workdir)
    deadline = time.monotonic() + 10
    while not answers(started.url):
        if process.poll() is not None or time.monotonic() > deadline:
            started.stop()
            raise RedisUnavailable(f"redis-server did not start on port {port} (is the port taken?)")
        time.sleep(0.05)
    return started
