"""The round rule. Fallback routing (the default): one round tries the channels in order and stops at
the first success. Routing "all": one round tries every listed channel not delivered yet, each with
its own attempts and outcome; later rounds try only the ones still missing.

- A channel with no address for this recipient is recorded as `skipped`.
- A channel that failed permanently in an earlier round is `skipped` (never tried again).
- A message longer than a channel carries is a permanent failure of that channel, without a send.
- A channel the notification's template has no part for is `skipped`.
- A transient or permanent failure moves on to the next channel.
- A round that runs again (its worker died) goes on where the record says it was: channels already
  recorded for this round are not tried again, and the channel whose send was in flight
  (`notification.sending`) is resolved by `resolve`: known from what was recorded, sent again (when
  the operator chose at least once), or uncertain, which ends the round as sent (at most once).
After the round, `verdict` decides: sent, another round after a delay (the backoff, or longer when a
provider asked to wait), or failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from notification_service.domain.channel_limits import fits, too_long_reason
from notification_service.domain.delivery import (
    Delivered,
    DeliveryFailed,
    DeliveryUncertain,
    OutgoingMessage,
    SendOutcome,
)
from notification_service.domain.model import Attempt, Channel, Content, Notification, Outcome, Routing
from notification_service.domain.retry_policy import RetryPolicy

# Sends one channel; gets the attempts this run of the round made so far (to record before sending).
Send = Callable[[OutgoingMessage, Sequence[Attempt]], Awaitable[SendOutcome]]
# Finds out what became of a send that was in flight when an earlier worker stopped.
Resolve = Callable[[OutgoingMessage, Sequence[Attempt]], Awaitable[SendOutcome]]
Now = Callable[[], datetime]


def _interrupted(notification: Notification, round_no: int) -> Channel | None:
    """The channel of this round whose send an earlier run may have left in flight."""
    in_flight = notification.sending
    if in_flight is None or in_flight.round != round_no:
        return None
    return in_flight.channel or first_send(notification, round_no)


@dataclass(frozen=True)
class _Step:
    """A channel this run of the round considers: why it is skipped, or what it would send."""

    channel: Channel
    skipped: str | None = None
    address: str = ""
    content: Content | None = None


def _plan(notification: Notification, round_no: int) -> Iterator[_Step]:
    """The channels of a round in order, but those recorded for it by an earlier run and (routing
    "all") those delivered before: the one place that says which channel a round tries."""
    given_up = notification.permanently_failed_channels()
    recorded = {a.channel for a in notification.attempts if a.round == round_no}
    every = notification.routing is Routing.ALL
    delivered_before = notification.delivered_channels()
    for channel in notification.channels:
        if channel in recorded or (every and channel in delivered_before):
            continue
        address = notification.recipient.address_for(channel)
        if address is None:
            yield _Step(channel, "recipient has no address for this channel")
        elif channel in given_up:
            yield _Step(channel, "failed permanently in an earlier round")
        elif (content := notification.content_for(channel)) is None:
            yield _Step(channel, "the template has no part for this channel")
        else:
            yield _Step(channel, address=address, content=content)


def first_send(notification: Notification, round_no: int) -> Channel | None:
    """The channel whose send `run_round` starts first on this record (None: it sends nothing): what
    an intent written by the claim, without a channel, stands for. The record does not change between
    that claim and the first send's outcome, so a run that resumes finds the same channel."""
    for step in _plan(notification, round_no):
        if step.content is not None and fits(step.channel, step.content.text):
            return step.channel
    return None


async def run_round(
    notification: Notification, round_no: int, send: Send, now: Now, resolve: Resolve | None = None
) -> list[Attempt]:
    """Try the channels in order; return one attempt per channel considered in this run, in order
    (channels recorded for this round by an earlier run are not considered again)."""
    attempts: list[Attempt] = []
    in_flight = notification.sending
    interrupted = _interrupted(notification, round_no)
    every = notification.routing is Routing.ALL
    for step in _plan(notification, round_no):
        channel, content = step.channel, step.content
        started = now()
        if step.skipped is not None or content is None:
            attempts.append(_skipped(round_no, channel, started, step.skipped or ""))
            continue
        message = OutgoingMessage(
            notification_id=notification.id,
            channel=channel,
            address=step.address,
            body=content.text,
            subject=content.subject,
            html=content.html,
            correlation_id=notification.correlation_id,
        )
        if channel == interrupted and in_flight is not None:
            started = in_flight.started_at
            outcome = await resolve(message, attempts) if resolve is not None else uncertain_send(channel)
            finished = now()
        elif fits(channel, content.text):
            outcome = await send(message, attempts)
            finished = now()
        else:  # no send at all: the channel cannot carry this message
            outcome = DeliveryFailed.permanent(too_long_reason(channel, content.text))
            finished = started
        if isinstance(outcome, DeliveryUncertain):
            attempts.append(
                Attempt(round_no, channel, Outcome.UNCERTAIN, started, finished, error=outcome.reason)
            )
            if every:
                continue
            return attempts
        if isinstance(outcome, Delivered):
            attempts.append(
                Attempt(
                    round_no,
                    channel,
                    Outcome.SENT,
                    started,
                    finished,
                    provider_message_id=outcome.provider_message_id,
                )
            )
            if every:
                continue
            return attempts
        attempts.append(
            Attempt(
                round_no,
                channel,
                Outcome.FAILED,
                started,
                finished,
                error=outcome.reason,
                failure_kind=outcome.kind,
                retry_after_seconds=outcome.retry_after_seconds,
            )
        )
    return attempts


def uncertain_send(channel: Channel) -> DeliveryUncertain:
    return DeliveryUncertain(
        f"the worker running this round stopped during the {channel.value} send and its outcome was "
        "not recorded; not sent again, to avoid a duplicate"
    )


def _skipped(round_no: int, channel: Channel, at: datetime, why: str) -> Attempt:
    return Attempt(round_no, channel, Outcome.SKIPPED, at, at, error=why)


@dataclass(frozen=True)
class SentVerdict:
    channel: Channel
    provider_message_id: str | None


@dataclass(frozen=True)
class PartiallySentVerdict:
    """Routing "all": no more rounds, and some listed channels never delivered."""

    channel: Channel  # the first that delivered
    provider_message_id: str | None
    reason: str


@dataclass(frozen=True)
class RetryVerdict:
    delay_seconds: int


@dataclass(frozen=True)
class FailedVerdict:
    reason: str


RoundVerdict = SentVerdict | PartiallySentVerdict | RetryVerdict | FailedVerdict


def verdict(
    notification: Notification, round_no: int, new_attempts: Sequence[Attempt], policy: RetryPolicy
) -> RoundVerdict:
    """Decide what follows a round, given the notification as it was claimed (with what an earlier
    run of this round recorded) and the attempts this run made."""
    round_attempts = [a for a in notification.attempts if a.round == round_no] + list(new_attempts)
    after = notification.with_changes(attempts=notification.attempts + tuple(new_attempts))
    if notification.routing is Routing.ALL:
        return _verdict_all(after, round_no, round_attempts, policy)
    for attempt in round_attempts:
        if attempt.outcome in (Outcome.SENT, Outcome.UNCERTAIN):
            return SentVerdict(attempt.channel, attempt.provider_message_id)
    if not _still_possible(after):
        return FailedVerdict("no channel can deliver to this recipient")
    return _retry_or(
        FailedVerdict(f"all channels failed in {round_no} rounds"), after, round_no, round_attempts, policy
    )


def _verdict_all(
    after: Notification, round_no: int, round_attempts: list[Attempt], policy: RetryPolicy
) -> RoundVerdict:
    delivered = [a for a in after.attempts if a.outcome in (Outcome.SENT, Outcome.UNCERTAIN)]
    missing = [c for c in after.channels if c not in after.delivered_channels()]
    if not missing:
        return SentVerdict(delivered[0].channel, delivered[0].provider_message_id)
    possible = [c for c in _still_possible(after) if c in missing]
    names = ", ".join(c.value for c in missing)
    if delivered:
        end: RoundVerdict = PartiallySentVerdict(
            delivered[0].channel, delivered[0].provider_message_id, f"not delivered on {names}"
        )
    else:
        end = FailedVerdict(f"no channel delivered in {round_no} rounds")
    if not possible:
        return end
    return _retry_or(end, after, round_no, round_attempts, policy)


def _still_possible(after: Notification) -> list[Channel]:
    return [
        c
        for c in after.channels
        if after.recipient.address_for(c) is not None
        and c not in after.permanently_failed_channels()
        and after.content_for(c) is not None
    ]


def _retry_or(
    end: RoundVerdict, after: Notification, round_no: int, round_attempts: list[Attempt], policy: RetryPolicy
) -> RoundVerdict:
    delay = policy.next_delay(round_no - after.rounds_before_retry)
    if delay is None:
        return end
    asked = max((a.retry_after_seconds or 0 for a in round_attempts), default=0)
    return RetryVerdict(min(max(delay, asked), policy.max_delay_seconds))
