"""Fault injection for the chaos test, installed in the local stack's handler processes when
NOTIFYCTL_FAULTS names a plan (JSON). Never imported by the deployed code.

The plan:
  {"seed": 7, "kill_rate": 0.05, "kill_points": ["after_claim", "after_send", "after_complete"],
   "enqueue_failures": 1, "state_dir": "/tmp/chaos"}

- kill points (DispatchFunction): the process exits at once (like a Lambda killed mid-batch, taking
  every record of its batch with it) right after a round was claimed, right after a provider
  answered and its answer reached the ledger (before the round's result write), or right after the
  result write (before the message is acknowledged). Whether a (point, notification, round) kills is
  a pure function of the seed; each kills at most once.
- enqueue failures (ApiFunction): the first `enqueue_failures` SQS sends after a stored record fail
  as an outage would.
Every injected fault is appended to <state_dir>/faults.jsonl, which the chaos test counts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

KILL_EXIT_CODE = 137
_lock = threading.Lock()


class FaultPlan:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.seed = int(plan.get("seed", 0))
        self.kill_rate = float(plan.get("kill_rate", 0))
        self.kill_points = frozenset(plan.get("kill_points", []))
        self.enqueue_failures = int(plan.get("enqueue_failures", 0))
        self.state_dir = Path(plan["state_dir"])
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.state_dir / "faults.jsonl"

    def injected(self) -> list[dict[str, Any]]:
        if not self.log.is_file():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def record(self, fault: dict[str, Any]) -> None:
        with _lock, self.log.open("a", encoding="utf-8") as out:
            out.write(json.dumps(fault) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def kills(self, point: str, notification_id: str, round_no: int) -> bool:
        if point not in self.kill_points:
            return False
        digest = hashlib.sha256(f"{self.seed}:{point}:{notification_id}:{round_no}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= self.kill_rate:
            return False
        key = {"kind": "kill", "point": point, "notification_id": notification_id, "round": round_no}
        return key not in self.injected()

    def maybe_kill(self, point: str, notification_id: str, round_no: int) -> None:
        if self.kills(point, notification_id, round_no):
            self.record(
                {"kind": "kill", "point": point, "notification_id": notification_id, "round": round_no}
            )
            os._exit(KILL_EXIT_CODE)

    def take_enqueue_failure(self) -> bool:
        """True for the first `enqueue_failures` calls across every process (exclusive file creation)."""
        for number in range(self.enqueue_failures):
            try:
                os.close(os.open(self.state_dir / f"enqueue-failure-{number}", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            return True
        return False


def install_from_environment(function_logical_id: str) -> FaultPlan | None:
    path = os.environ.get("NOTIFYCTL_FAULTS")
    if not path:
        return None
    plan = FaultPlan(json.loads(Path(path).read_text()))
    if function_logical_id == "DispatchFunction":
        _install_kills(plan)
    elif function_logical_id == "ApiFunction":
        _install_enqueue_failures(plan)
    return plan


def _install_kills(plan: FaultPlan) -> None:
    from notification_service.adapters.dynamodb_repository import DynamoDbNotificationRepository
    from notification_service.adapters.redis_delivery_ledger import RedisDeliveryLedger

    claim = DynamoDbNotificationRepository.claim_round
    complete = DynamoDbNotificationRepository.complete_round
    record = RedisDeliveryLedger.record

    @functools.wraps(claim)
    def claim_then_maybe_die(self: Any, notification_id: str, round_no: int, *args: Any) -> Any:
        claimed = claim(self, notification_id, round_no, *args)
        plan.maybe_kill("after_claim", notification_id, round_no)
        return claimed

    @functools.wraps(record)
    def record_then_maybe_die(self: Any, notification_id: str, round_no: int, *args: Any) -> None:
        record(self, notification_id, round_no, *args)
        plan.maybe_kill("after_send", notification_id, round_no)

    @functools.wraps(complete)
    def complete_then_maybe_die(self: Any, notification_id: str, round_no: int, *args: Any) -> Any:
        done = complete(self, notification_id, round_no, *args)
        plan.maybe_kill("after_complete", notification_id, round_no)
        return done

    DynamoDbNotificationRepository.claim_round = claim_then_maybe_die  # type: ignore[method-assign,assignment]
    DynamoDbNotificationRepository.complete_round = complete_then_maybe_die  # type: ignore[method-assign,assignment]
    RedisDeliveryLedger.record = record_then_maybe_die  # type: ignore[method-assign,assignment]


def _install_enqueue_failures(plan: FaultPlan) -> None:
    from notification_service.adapters.sqs_queue import SqsDeliveryQueue
    from notification_service.errors import DependencyUnavailable

    enqueue = SqsDeliveryQueue.enqueue

    @functools.wraps(enqueue)
    def enqueue_or_fail(self: Any, message: Any, delay_seconds: int = 0) -> None:
        if plan.take_enqueue_failure():
            plan.record({"kind": "enqueue_failure", "notification_id": message.notification_id})
            raise DependencyUnavailable("sqs", "injected fault")
        enqueue(self, message, delay_seconds)

    SqsDeliveryQueue.enqueue = enqueue_or_fail  # type: ignore[method-assign]
