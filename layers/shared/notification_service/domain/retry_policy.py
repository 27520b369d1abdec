"""When a failed round is tried again: exponential backoff through SQS DelaySeconds."""

from __future__ import annotations

from dataclasses import dataclass

SQS_MAX_DELAY_SECONDS = 900


@dataclass(frozen=True)
class RetryPolicy:
    max_rounds: int = 3
    backoff_base: int = 2
    max_delay_seconds: int = SQS_MAX_DELAY_SECONDS

    def next_delay(self, completed_round: int) -> int | None:
        """Seconds to wait before the round after `completed_round`, or None when rounds are used up.

        Round 1 failed -> base**1 (2 s), round 2 -> base**2 (4 s), ... capped at 900 s (SQS's limit).
        """
        if completed_round >= self.max_rounds:
            return None
        return int(min(self.backoff_base**completed_round, self.max_delay_seconds))
