"""What a client may do to a notification after accepting it: cancel it while nothing has been
delivered, or retry it once it failed. The store applies these with conditional writes, so a round
that claims the record at the same moment either wins (and the cancel is refused) or finds it
cancelled (and sends nothing)."""

from __future__ import annotations

from notification_service.domain.model import Status

CANCELLABLE = frozenset({Status.SCHEDULED, Status.PENDING, Status.RETRYING})
RETRYABLE = frozenset({Status.FAILED})
CANCELLED_BY_CLIENT = "cancelled by the client"


def why_not(action: str, status: Status) -> str:
    match action, status:
        case "cancel", Status.PROCESSING:
            return "a round is delivering it right now; try again in a moment"
        case "cancel", _:
            return f"it is already {status.value}"
        case _:
            return f"only a failed notification can be retried; it is {status.value}"


class TransitionRefused(Exception):
    """The notification is not in a state that allows the action; `status` is where it stands."""

    def __init__(self, action: str, notification_id: str, status: Status) -> None:
        super().__init__(f"cannot {action} notification {notification_id}: {why_not(action, status)}")
        self.action = action
        self.status = status
