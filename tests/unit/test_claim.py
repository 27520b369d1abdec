"""Why a delivery message did not claim its round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from notification_service.domain.claim import LostClaim, why_claim_lost
from notification_service.domain.model import Channel, Notification, Status
from notification_service.domain.recipient import Recipient

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def record(status: Status, round_no: int, lease_until: datetime | None = None) -> Notification:
    return Notification(
        id="n-1",
        recipient=Recipient(email="user@example.com"),
        message="hello",
        channels=(Channel.EMAIL,),
        correlation_id="c-1",
        created_at=NOW,
        updated_at=NOW,
        status=status,
        round=round_no,
        lease_owner="other" if lease_until else None,
        lease_until=lease_until,
    )


@pytest.mark.parametrize("status", [Status.SENT, Status.FAILED, Status.CANCELLED])
@pytest.mark.parametrize("message_round", [1, 2, 3, 4])
def test_terminal_record_means_already_finished(status: Status, message_round: int) -> None:
    assert why_claim_lost(record(status, 2), message_round, NOW) is LostClaim.ALREADY_FINISHED


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING, Status.RETRYING])
def test_record_past_the_message_round_means_stale(status: Status) -> None:
    current = record(status, 3, lease_until=NOW + timedelta(seconds=60))

    assert why_claim_lost(current, 2, NOW) is LostClaim.STALE


def test_processing_same_round_under_live_lease_is_in_progress() -> None:
    current = record(Status.PROCESSING, 1, lease_until=NOW + timedelta(seconds=1))

    assert why_claim_lost(current, 1, NOW) is LostClaim.IN_PROGRESS


def test_processing_same_round_with_expired_lease_is_out_of_order() -> None:
    current = record(Status.PROCESSING, 1, lease_until=NOW - timedelta(seconds=1))

    assert why_claim_lost(current, 1, NOW) is LostClaim.OUT_OF_ORDER


def test_processing_same_round_without_lease_is_out_of_order() -> None:
    assert why_claim_lost(record(Status.PROCESSING, 1), 1, NOW) is LostClaim.OUT_OF_ORDER


def test_a_lease_ending_exactly_now_is_over() -> None:
    # GIVEN a lease that ends exactly now: the repositories let a new claim take it over, so a lost
    # claim at that instant is a race with the new owner, never a live lease
    current = record(Status.PROCESSING, 1, lease_until=NOW)
    assert why_claim_lost(current, 1, NOW) is LostClaim.OUT_OF_ORDER


def test_retrying_same_round_means_next_round_due() -> None:
    assert why_claim_lost(record(Status.RETRYING, 1), 1, NOW) is LostClaim.NEXT_ROUND_DUE


def test_pending_far_behind_the_message_round_is_out_of_order() -> None:
    assert why_claim_lost(record(Status.PENDING, 0), 3, NOW) is LostClaim.OUT_OF_ORDER


def test_retrying_message_skipping_a_round_is_out_of_order() -> None:
    assert why_claim_lost(record(Status.RETRYING, 1), 3, NOW) is LostClaim.OUT_OF_ORDER
