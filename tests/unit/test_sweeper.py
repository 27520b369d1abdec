"""The sweep rule (domain/sweep.py) and the Sweeper that applies it, on in-memory fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from notification_service.domain.model import Notification, Status
from notification_service.domain.sweep import (
    GiveUp,
    Requeue,
    SweepCandidate,
    SweepPolicy,
    due_at,
    repair,
)
from notification_service.errors import DependencyUnavailable
from notification_service.ports import DeliveryMessage, RoundResult
from notification_service.service.sweeper import Sweeper

from infra.lambda_runtime import LocalLambdaContext
from tests.conftest import load_event
from tests.fakes import FakeClock, FakeQueue, FakeRepository, email_notification
from tests.handlers import load_function_module

GRACE = timedelta(seconds=60)
POLICY = SweepPolicy(grace=GRACE, max_sweeps=3)


def _notification(clock: FakeClock, nid: str = "n-1") -> Notification:
    return email_notification(clock(), nid)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo() -> FakeRepository:
    return FakeRepository(sweep_grace=GRACE)


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def sweeper(repo: FakeRepository, queue: FakeQueue, clock: FakeClock) -> Sweeper:
    return Sweeper(repo, queue, POLICY, clock)


# --- the rule -----------------------------------------------------------------------------------


def test_due_times_follow_the_status(clock: FakeClock) -> None:
    n = _notification(clock)
    lease_end = clock() + timedelta(seconds=120)
    retry_at = clock() + timedelta(seconds=4)

    assert due_at(n, GRACE) == clock() + GRACE
    assert due_at(n.with_changes(status=Status.PROCESSING, lease_until=lease_end), GRACE) == lease_end
    assert due_at(n.with_changes(status=Status.PROCESSING), GRACE) == n.updated_at + GRACE
    assert due_at(n.with_changes(status=Status.RETRYING, next_attempt_at=retry_at), GRACE) == retry_at + GRACE
    for finished in (Status.SENT, Status.FAILED, Status.CANCELLED):
        assert due_at(n.with_changes(status=finished), GRACE) is None


def test_repair_requeues_the_round_that_should_run_and_gives_up_after_max_sweeps() -> None:
    def candidate(status: Status, round_no: int, sweeps: int = 0) -> SweepCandidate:
        return SweepCandidate("n", status, round_no, "c", sweeps)

    assert repair(candidate(Status.PENDING, 0), POLICY) == Requeue(1)
    assert repair(candidate(Status.RETRYING, 2), POLICY) == Requeue(3)
    assert repair(candidate(Status.PROCESSING, 2), POLICY) == Requeue(2)  # same round, expired lease
    assert repair(candidate(Status.PROCESSING, 2, sweeps=3), POLICY) == GiveUp(
        "stuck processing at round 2: re-enqueued 3 times without progress"
    )


def test_each_repair_waits_twice_as_long_before_the_next_look(clock: FakeClock) -> None:
    now = clock()
    assert [POLICY.next_due(now, n) - now for n in range(4)] == [GRACE, GRACE * 2, GRACE * 4, GRACE * 8]


# --- the sweeper ----------------------------------------------------------------------------------


def test_a_pending_record_is_left_alone_until_its_grace_has_passed(
    sweeper: Sweeper, repo: FakeRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    repo.add(_notification(clock))

    clock.advance(59)
    early = sweeper.sweep()
    clock.advance(1)
    due = sweeper.sweep()

    assert early.requeued == {}
    assert due.requeued == {"pending": 1}
    assert queue.sent == [(DeliveryMessage("n-1", 1, "corr-n-1"), 0)]
    assert repo.get("n-1").sweeps == 1


def test_a_swept_record_is_not_requeued_again_before_its_next_due_time(
    sweeper: Sweeper, repo: FakeRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    repo.add(_notification(clock))
    clock.advance(60)
    sweeper.sweep()

    clock.advance(60)  # the second look is 2 x grace after the first repair
    sweeper.sweep()
    clock.advance(60)
    sweeper.sweep()

    assert [m.round for m, _ in queue.sent] == [1, 1]


def test_an_expired_lease_is_requeued_for_the_same_round(
    sweeper: Sweeper, repo: FakeRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    repo.add(_notification(clock))
    repo.claim_round("n-1", 1, "worker-that-dies", clock(), clock() + timedelta(seconds=120))

    clock.advance(119)
    sweeper.sweep()
    clock.advance(1)
    report = sweeper.sweep()

    assert report.requeued == {"processing": 1}
    assert queue.sent == [(DeliveryMessage("n-1", 1, "corr-n-1"), 0)]
    # and the requeued message can claim it, since the lease is over
    claimed = repo.claim_round("n-1", 1, "worker-2", clock(), clock() + timedelta(seconds=120))
    assert claimed.lease_owner == "worker-2"


def test_a_retrying_record_whose_next_message_was_lost_gets_its_next_round(
    sweeper: Sweeper, repo: FakeRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    repo.add(_notification(clock))
    repo.claim_round("n-1", 1, "w", clock(), clock() + timedelta(seconds=120))
    repo.complete_round(
        "n-1",
        1,
        "w",
        RoundResult(Status.RETRYING, [], next_attempt_at=clock() + timedelta(seconds=2)),
        clock(),
    )

    clock.advance(62)
    report = sweeper.sweep()

    assert report.requeued == {"retrying": 1}
    assert queue.sent == [(DeliveryMessage("n-1", 2, "corr-n-1"), 0)]


def test_a_record_that_never_moves_is_failed_with_the_reason(
    sweeper: Sweeper, repo: FakeRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    repo.add(_notification(clock))
    for _ in range(20):
        clock.advance(3600)
        sweeper.sweep()

    record = repo.get("n-1")
    assert record.status is Status.FAILED
    assert record.status_reason == "stuck pending at round 0: re-enqueued 3 times without progress"
    assert len(queue.sent) == 3
    assert repo.sweep_due == {}


def test_finished_records_are_never_swept(
    sweeper: Sweeper, repo: FakeRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    repo.add(_notification(clock))
    repo.claim_round("n-1", 1, "w", clock(), clock() + timedelta(seconds=120))
    repo.complete_round("n-1", 1, "w", RoundResult(Status.SENT, []), clock())

    clock.advance(3600)
    report = sweeper.sweep()

    assert report.as_dict() == {"requeued": {}, "failed": {}, "skipped": 0, "errors": 0, "webhooks": 0}
    assert queue.sent == []


def test_a_record_that_moved_between_read_and_repair_is_skipped(
    repo: FakeRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    repo.add(_notification(clock))
    clock.advance(60)

    class MovesWhenRead(FakeRepository):
        def stuck(self, status: Status, now: object, limit: int) -> list[SweepCandidate]:
            found = repo.stuck(status, clock(), limit)
            if found:  # a worker claims it right after the sweeper read it
                repo.claim_round("n-1", 1, "w", clock(), clock() + timedelta(seconds=120))
            return found

    moving = MovesWhenRead()
    moving.mark_swept = repo.mark_swept  # type: ignore[method-assign]
    report = Sweeper(moving, queue, POLICY, clock).sweep()

    assert report.skipped == 1
    assert queue.sent == []


def test_a_queue_outage_counts_an_error_and_the_next_run_tries_again(
    sweeper: Sweeper, repo: FakeRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    repo.add(_notification(clock, "n-1"))
    repo.add(_notification(clock, "n-2"))
    clock.advance(60)
    queue.unavailable = True

    report = sweeper.sweep()

    assert report.errors == 2
    queue.unavailable = False
    clock.advance(120)
    assert sweeper.sweep().requeued == {"pending": 2}


def test_the_store_down_propagates(sweeper: Sweeper, repo: FakeRepository) -> None:
    repo.unavailable = True
    with pytest.raises(DependencyUnavailable):
        sweeper.sweep()


def test_the_sweeper_handler_runs_one_sweep_on_a_scheduled_event(
    repo: FakeRepository, queue: FakeQueue, clock: FakeClock, lambda_context: LocalLambdaContext
) -> None:
    handler = load_function_module("sweeper")
    repo.add(_notification(clock))
    clock.advance(60)
    handler.sweeper.set(Sweeper(repo, queue, POLICY, clock))
    try:
        answer = handler.lambda_handler(load_event("scheduled_sweep.json"), lambda_context)
    finally:
        handler.sweeper.set(None)

    assert answer == {"requeued": {"pending": 1}, "failed": {}, "skipped": 0, "errors": 0, "webhooks": 0}
