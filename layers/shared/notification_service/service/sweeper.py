"""The sweeper: finds records that stopped moving and puts them back on the queue (or fails them
after too many tries), so that no notification stays `pending`, `processing` or `retrying` forever.
The rule of what is stuck and what repairs it is in `domain/sweep.py`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aws_lambda_powertools import Logger

from notification_service.domain.model import Status
from notification_service.domain.sweep import (
    SWEPT_STATUSES,
    GiveUp,
    Requeue,
    SweepCandidate,
    SweepPolicy,
    repair,
)
from notification_service.errors import DependencyUnavailable
from notification_service.ports import (
    DeliveryMessage,
    DeliveryQueue,
    OwedWebhook,
    StuckRecords,
    WebhookMessage,
    WebhookQueue,
)
from notification_service.service.owed_webhook import enqueue_owed_webhook

logger = Logger(child=True)
PAGE = 100  # records per status per run; the next run (a minute later) takes the rest


@dataclass
class SweepReport:
    requeued: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    skipped: int = 0  # moved on between the read and the repair (another sweeper, or it woke up)
    errors: int = 0
    webhooks: int = 0  # webhook messages sent again

    def as_dict(self) -> dict[str, object]:
        return {
            "requeued": dict(self.requeued),
            "failed": dict(self.failed),
            "webhooks": self.webhooks,
            "skipped": self.skipped,
            "errors": self.errors,
        }


class Sweeper:
    def __init__(
        self,
        records: StuckRecords,
        queue: DeliveryQueue,
        policy: SweepPolicy,
        now: Callable[[], datetime],
        webhooks: WebhookQueue | None = None,
    ) -> None:
        self._webhooks = webhooks
        self._records = records
        self._queue = queue
        self._policy = policy
        self._now = now

    def sweep(self, limit: int = PAGE) -> SweepReport:
        report = SweepReport()
        for status in SWEPT_STATUSES:
            for candidate in self._records.stuck(status, self._now(), limit):
                try:
                    self._repair_one(status, candidate, report)
                except DependencyUnavailable as exc:  # the next run tries again; the others go on
                    report.errors += 1
                    logger.warning(
                        "could not repair a stuck record",
                        extra={"notification_id": candidate.id, "dependency": exc.dependency},
                    )
        if self._webhooks is not None:
            for owed in self._records.webhooks_owed(self._now(), limit):
                try:
                    self._resend_webhook(owed, self._webhooks, report)
                except DependencyUnavailable as exc:
                    report.errors += 1
                    logger.warning(
                        "could not re-enqueue an owed webhook",
                        extra={"notification_id": owed.notification_id, "dependency": exc.dependency},
                    )
        if report.requeued or report.failed or report.errors or report.webhooks:
            logger.info("sweep finished", extra=report.as_dict())
        return report

    def _resend_webhook(self, owed: OwedWebhook, webhooks: WebhookQueue, report: SweepReport) -> None:
        if not self._records.postpone_webhook(owed, self._now() + self._policy.grace * 2):
            report.skipped += 1
            return
        webhooks.enqueue(WebhookMessage(owed.notification_id, owed.status, 0, owed.correlation_id))
        report.webhooks += 1
        logger.warning(
            "owed webhook re-enqueued",
            extra={"notification_id": owed.notification_id, "status": owed.status},
        )

    def _repair_one(self, status: Status, candidate: SweepCandidate, report: SweepReport) -> None:
        now = self._now()
        action = repair(candidate, self._policy)
        log_keys = {
            "notification_id": candidate.id,
            "correlation_id": candidate.correlation_id,
            "status": status.value,
            "round": candidate.round,
        }
        match action:
            case Requeue(round=round_no):
                if not self._records.mark_swept(candidate, now, self._policy.next_due(now, candidate.sweeps)):
                    report.skipped += 1
                    return
                self._queue.enqueue(DeliveryMessage(candidate.id, round_no, candidate.correlation_id))
                report.requeued[status.value] += 1
                logger.warning("stuck record re-enqueued", extra={**log_keys, "requeue_round": round_no})
            case GiveUp(reason=reason):
                owes_webhook = candidate.has_callback and self._webhooks is not None
                if not self._records.close(
                    candidate.id,
                    expected=status,
                    expected_round=candidate.round,
                    status=Status.FAILED,
                    reason=reason,
                    now=now,
                    webhook_due=now + self._policy.grace if owes_webhook else None,
                ):
                    report.skipped += 1
                    return
                report.failed[status.value] += 1
                logger.error("stuck record failed", extra={**log_keys, "reason": reason})
                if owes_webhook:
                    enqueue_owed_webhook(
                        self._webhooks, candidate.id, Status.FAILED.value, candidate.correlation_id, attempt=0
                    )
