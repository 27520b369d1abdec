"""Scheduled delivery: `send_at` up to 30 days ahead, reached through SQS delays.

SQS delays a message by at most 15 minutes, so a longer wait hops: the message for round 1 is sent
with the longest delay allowed; when it arrives before `send_at`, its claim is refused and it is
sent again with the remaining delay (at most 15 minutes again), until the time has come.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

MAX_AHEAD = timedelta(days=30)
SQS_MAX_DELAY_SECONDS = 900


def hop_delay(send_at: datetime, now: datetime, max_delay_seconds: int = SQS_MAX_DELAY_SECONDS) -> int:
    """Seconds to delay the next message towards `send_at` (0 once it is due)."""
    remaining = math.ceil((send_at - now).total_seconds())
    return max(0, min(remaining, max_delay_seconds))


def too_far_ahead(send_at: datetime, now: datetime) -> bool:
    return send_at - now > MAX_AHEAD
