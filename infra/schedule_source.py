"""An EventBridge schedule, as it runs a function: every period, one "Scheduled Event" invocation.
The local stack runs each `Schedule` event of template.yaml at its rate (tests may shorten it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from infra.background import BackgroundLoop

logger = Logger(service="local-stack")


def scheduled_event(rule_arn: str, region: str, account: str, at: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleSource(BackgroundLoop):
    def __init__(
        self,
        rule_arn: str,
        region: str,
        period_seconds: float,
        invoke: Callable[[dict[str, Any]], Any],
        name: str = "schedule",
        account: str = "123456789012",
    ) -> None:
        self._rule_arn = rule_arn
        self._region = region
        self._account = account
        self.period_seconds = period_seconds
        self._invoke = invoke
        super().__init__(name)
        self.invocations = 0
        self.last_result: Any = None

    def _run(self) -> None:
        while not self._stop.wait(self.period_seconds):
            self.fire()

    def fire(self) -> Any:
        try:
            self.last_result = self._invoke(
                scheduled_event(self._rule_arn, self._region, self._account, datetime.now(UTC))
            )
        except Exception:  # EventBridge retries on its next tick; the schedule never stops
            logger.exception("scheduled invocation failed", extra={"rule": self._rule_arn})
            self.last_result = None
        self.invocations += 1
        return self.last_result
