"""Metrics in the Redis-compatible cache, so that every function instance adds to the same numbers,
and their Prometheus text exposition for `GET /metrics`.

Counters and histogram buckets are fields of one hash (HINCRBY / HINCRBYFLOAT in one pipeline, one
round trip); a field is `<metric>|<label>=<value>,...`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

import redis

from notification_service.errors import DependencyUnavailable

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
ROUND_BUCKETS = (1.0, 2.0, 3.0, 5.0, 10.0)
BUCKETS: Mapping[str, tuple[float, ...]] = {
    "notification_delivery_seconds": LATENCY_BUCKETS,
    "notification_rounds": ROUND_BUCKETS,
}
HELP = {
    "notifications_accepted_total": "Notifications accepted by the API",
    "notifications_sent_total": "Notifications delivered, by the channel that delivered them",
    "notifications_failed_total": "Notifications that ended failed",
    "delivery_attempts_total": "Attempts, by channel and outcome",
    "notification_delivery_seconds": "Time from acceptance to delivery",
    "notification_rounds": "Rounds a notification took to finish",
}


def _field(name: str, labels: Mapping[str, str]) -> str:
    return name + "|" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


class RedisMetrics:
    def __init__(self, client: redis.Redis, key: str) -> None:
        """`key`: one hash per deployment (the local stack uses its table's name)."""
        self._client = client
        self._key = key

    def count(self, name: str, value: int = 1, **labels: str) -> None:
        self._write([(_field(name, labels), value)])

    def observe(self, name: str, value: float, **labels: str) -> None:
        buckets = BUCKETS.get(name, LATENCY_BUCKETS)
        increments: list[tuple[str, float]] = [
            (_field(f"{name}_bucket", {**labels, "le": _le(bound)}), 1)
            for bound in (*buckets, math.inf)
            if value <= bound
        ]
        increments += [(_field(f"{name}_count", labels), 1), (_field(f"{name}_sum", labels), value)]
        self._write(increments)

    def _write(self, increments: list[tuple[str, float]]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for field, value in increments:
                if isinstance(value, int):
                    pipe.hincrby(self._key, field, value)
                else:
                    pipe.hincrbyfloat(self._key, field, value)
            pipe.execute()
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc

    def exposition(self) -> str:
        """Prometheus text format 0.0.4, every family with its HELP and TYPE."""
        try:
            raw = self._client.hgetall(self._key)
        except redis.RedisError as exc:
            raise DependencyUnavailable("redis", type(exc).__name__) from exc
        families: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
        for raw_key, raw_value in raw.items():
            field = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            name, _, labels = field.partition("|")
            family = next((h for h in BUCKETS if name.startswith(h + "_")), name)
            families[family][(name, labels)] = float(raw_value)
        for family, buckets in BUCKETS.items():  # every bucket of every series, empty ones too
            series = {labels for name, labels in families.get(family, {}) if name == f"{family}_count"}
            for labels in series:
                for bound in (*buckets, math.inf):
                    key = (f"{family}_bucket", _with_le(labels, bound))
                    families[family].setdefault(key, 0.0)
        lines: list[str] = []
        for family in sorted(families):
            lines.append(f"# HELP {family} {HELP.get(family, family)}")
            lines.append(f"# TYPE {family} {'histogram' if family in BUCKETS else 'counter'}")
            for (name, labels), amount in sorted(families[family].items(), key=_sample_order):
                rendered = ",".join(
                    f'{k}="{v}"' for k, _, v in (p.partition("=") for p in labels.split(",") if p)
                )
                number = int(amount) if amount.is_integer() and not name.endswith("_sum") else amount
                lines.append(f"{name}{{{rendered}}} {number}" if rendered else f"{name} {number}")
        return "\n".join(lines) + "\n"


def _with_le(labels: str, bound: float) -> str:
    parts = dict(p.partition("=")[::2] for p in labels.split(",") if p)
    parts["le"] = _le(bound)
    return ",".join(f"{k}={v}" for k, v in sorted(parts.items()))


def _sample_order(sample: tuple[tuple[str, str], float]) -> tuple[str, str, float]:
    (name, labels), _ = sample
    le = next((p.partition("=")[2] for p in labels.split(",") if p.startswith("le=")), "")
    bound = math.inf if le in ("", "+Inf") else float(le)
    rest = ",".join(p for p in labels.split(",") if not p.startswith("le="))
    return (name, rest, bound)
