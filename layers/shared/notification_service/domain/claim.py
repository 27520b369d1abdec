"""Claiming a round: who may work on a notification, and what a message that lost the claim means.

A delivery message names (notification id, round). The record's `round` is the last round claimed.
A message for round r may claim a record that is `pending`/`retrying` at round r-1, `scheduled` at
round r-1 once its `send_at` has come, or one that is `processing` round r under an expired lease
(its worker died; a lease is over at `lease_until`). Anything else lost the race.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from notification_service.domain.model import Notification, Status


class LostClaim(StrEnum):
    ALREADY_FINISHED = "already_finished"  # terminal: a duplicate or late message; drop it
    STALE = "stale"  # that round is over and a later one exists: drop it
    IN_PROGRESS = "in_progress"  # another worker holds a live lease: try this message again later
    NEXT_ROUND_DUE = "next_round_due"  # the round ended `retrying`; its next message may be missing
    NOT_YET_DUE = "not_yet_due"  # scheduled later than SQS can delay a message: wait again (a hop)
    OUT_OF_ORDER = "out_of_order"  # a message for a round that is not the next one: drop it


def why_claim_lost(current: Notification, message_round: int, now: datetime) -> LostClaim:
    if current.status.is_terminal:
        return LostClaim.ALREADY_FINISHED
    scheduled = current.status is Status.SCHEDULED and current.round == message_round - 1
    if scheduled and current.send_at is not None and current.send_at > now:
        return LostClaim.NOT_YET_DUE
    if current.round > message_round:
        return LostClaim.STALE
    if current.round == message_round:
        if current.status is Status.PROCESSING:
            if current.lease_until is not None and current.lease_until > now:
                return LostClaim.IN_PROGRESS
            return LostClaim.OUT_OF_ORDER  # expired lease: the claim should have succeeded; a race
        if current.status is Status.RETRYING:
            return LostClaim.NEXT_ROUND_DUE
    return LostClaim.OUT_OF_ORDER
