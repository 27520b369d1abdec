"""The sweeper's rule: when a record that is not finished counts as stuck, and what repairs it.

A record is stuck when nothing moved it for longer than it should take:
- `pending` a grace period after it was accepted: its first message was never sent (the SQS send
  after the DynamoDB write failed, or the API died between the two);
- `processing` once its lease ran out: the worker died mid-round;
- `retrying` a grace period after its next round was due: the next round's message was lost.
The repair is to enqueue the round that should run. A record swept `max_sweeps` times without moving
on is failed with the reason, so that nothing stays unfinished and unseen.
A finished record still owing its callback_url a webhook (sweep status `webhook`) gets that webhook's
message again once it is overdue: its first message was lost, or its worker died.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from notification_service.domain.model import Notification, Status

SWEPT_STATUSES = (Status.SCHEDULED, Status.PENDING, Status.PROCESSING, Status.RETRYING)


@dataclass(frozen=True)
class SweepPolicy:
    grace: timedelta = timedelta(seconds=60)
    max_sweeps: int = 6

    def next_due(self, now: datetime, sweeps_so_far: int) -> datetime:
        """After a repair, wait longer each time (grace, 2x, 4x, ...) before looking again: a long
        queue backlog is not a stuck record."""
        factor: int = 2 ** min(sweeps_so_far, 10)
        return now + self.grace * factor


@dataclass(frozen=True)
class SweepCandidate:
    """What the sweeper reads of a record (the sweep index carries only these attributes)."""

    id: str
    status: Status
    round: int
    correlation_id: str
    sweeps: int
    has_callback: bool = False  # failing it owes its callback_url a webhook


@dataclass(frozen=True)
class Requeue:
    round: int


@dataclass(frozen=True)
class GiveUp:
    reason: str


def due_at(notification: Notification, grace: timedelta) -> datetime | None:
    """When the sweeper should look at this record if it has not moved by then; None once finished."""
    match notification.status:
        case Status.SCHEDULED:
            return (notification.send_at or notification.created_at) + grace
        case Status.PENDING:
            return notification.created_at + grace
        case Status.PROCESSING:
            if notification.lease_until is not None:
                return notification.lease_until
            return notification.updated_at + grace
        case Status.RETRYING:
            return (notification.next_attempt_at or notification.updated_at) + grace
        case _:
            return None


def repair(candidate: SweepCandidate, policy: SweepPolicy) -> Requeue | GiveUp:
    if candidate.sweeps >= policy.max_sweeps:
        return GiveUp(
            f"stuck {candidate.status.value} at round {candidate.round}: "
            f"re-enqueued {candidate.sweeps} times without progress"
        )
    if candidate.status is Status.PROCESSING:
        return Requeue(candidate.round)  # the same round, claimed again under the expired lease
    return Requeue(candidate.round + 1)
