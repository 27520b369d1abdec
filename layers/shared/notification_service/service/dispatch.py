"""Running one round of one notification, as a delivery message asks.

claim (conditional) -> for each channel tried: write the intent (conditional on the lease), call the
provider, record its answer in the ledger -> write the round's result (conditional on the lease) ->
enqueue the next round when the verdict says retry. The first send's intent rides on the claim (one
write instead of two): the claim writes an intent with no channel ("the round's first send"), named
by a token the ledger holds, and the send marks the ledger right before the provider is called. A run
that resumes knows from the ledger whether that send started; when the ledger cannot say (the cache
lost it, or is down), it is treated as in flight, as a written intent always was. A worker that lost
its lease never sends; a round that runs again after its worker died resumes from the record and never
resends the channel that was in flight. Blocking adapter calls run in threads so the records of a
batch progress concurrently.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from aws_lambda_powertools import Logger

from notification_service.domain.claim import LostClaim, why_claim_lost
from notification_service.domain.delivery import (
    Commit,
    Delivered,
    DeliveryFailed,
    OutgoingMessage,
    ProviderAnswer,
    SendOutcome,
)
from notification_service.domain.fallback import (
    FailedVerdict,
    PartiallySentVerdict,
    RetryVerdict,
    SentVerdict,
    first_send,
    run_round,
    uncertain_send,
    verdict,
)
from notification_service.domain.model import Attempt, Channel, Notification, Outcome, Status
from notification_service.domain.retry_policy import RetryPolicy
from notification_service.domain.schedule import SQS_MAX_DELAY_SECONDS, hop_delay
from notification_service.errors import DependencyUnavailable
from notification_service.ports import (
    ClaimRejected,
    DeliveryLedger,
    DeliveryMessage,
    DeliveryQueue,
    LeaseLost,
    Metrics,
    NotificationRepository,
    Provider,
    ProviderHealth,
    RoundResult,
    WebhookQueue,
)
from notification_service.service.owed_webhook import enqueue_owed_webhook

logger = Logger(child=True)
T = TypeVar("T")
BLOCKING_THREADS = 32  # a batch of 10, several adapter calls each


class DispatchOutcome(StrEnum):
    SENT = "sent"
    PARTIALLY_SENT = "partially_sent"
    RETRYING = "retrying"
    FAILED = "failed"
    DROPPED = "dropped"  # duplicate, stale or already finished: nothing to do
    REQUEUED_NEXT_ROUND = "requeued_next_round"
    HOPPED = "hopped"  # scheduled later than one SQS delay: sent again towards its send_at


@dataclass(frozen=True)
class RoundReport:
    outcome: DispatchOutcome
    channel: Channel | None = None  # the channel that delivered, if one did


class RoundInProgressElsewhere(Exception):
    """Another worker holds a live lease on this round; the message should come back later."""


class RoundReleased(Exception):
    """The round was given back unfinished (not enough time left); the message should come back."""


class OutOfTime(Exception):
    """Not enough time left in the invocation or the lease to make one more send."""


class _RoundRun:
    """One run of one round: writes each send's intent before the provider is called (and the
    attempts made since the last write), records the provider's answer in the ledger, and resolves a
    send an earlier run left in flight."""

    def __init__(
        self,
        service: DispatchService,
        notification: Notification,
        round_no: int,
        time_left: Callable[[], float] | None,
        token: str | None = None,
    ) -> None:
        self._service = service
        self._notification = notification
        self._round = round_no
        self._time_left = time_left
        self._attempts: Sequence[Attempt] = ()
        self._written = 0
        # The channel whose intent this run's claim wrote (no write before its send: a ledger mark)
        sending = notification.sending
        claimed_intent = (
            sending is not None
            and sending.round == round_no
            and sending.channel is None
            and sending.token == token
        )
        self.owns_intent = bool(token) and claimed_intent
        self._claimed_channel = first_send(notification, round_no) if self.owns_intent else None

    def unwritten(self, attempts: Sequence[Attempt] | None = None) -> list[Attempt]:
        """The attempts of this run not written yet (of `attempts`, or of those seen at the last send)."""
        return list((self._attempts if attempts is None else attempts)[self._written :])

    def _seconds_left(self) -> float:
        lease_until = self._notification.lease_until
        left = (lease_until - self._service.now()).total_seconds() if lease_until else math.inf
        if self._time_left is not None:
            left = min(left, self._time_left())
        return left

    async def send(self, message: OutgoingMessage, attempts_so_far: Sequence[Attempt]) -> SendOutcome:
        self._attempts = attempts_so_far
        if self._seconds_left() < self._service.send_budget_seconds:
            raise OutOfTime(f"less than {self._service.send_budget_seconds:.0f} s left for a send")
        service = self._service
        committed = False

        async def commit() -> None:  # the provider calls it right before the step it cannot take back
            nonlocal committed
            if message.channel == self._claimed_channel and service.ledger is not None:
                self._claimed_channel = None  # the claim's intent stands for one send only
                try:
                    await service.blocking(
                        service.ledger.mark_started, message.notification_id, self._round, message.channel
                    )
                    committed = True
                    return
                except DependencyUnavailable:  # the store's write-ahead, as for any other send
                    logger.warning("delivery ledger unavailable: the send's intent is written apart")
            await service.blocking(
                service.repository.begin_send,
                message.notification_id,
                self._round,
                service.worker_id,
                message.channel,
                self.unwritten(),
                service.now(),
            )
            self._written = len(attempts_so_far)
            committed = True

        answer = await service.send(message, commit)
        if isinstance(answer, Delivered) and not committed:
            logger.error(
                "provider delivered without writing the send's intent first",
                extra={"channel": message.channel.value},
            )
        await service.ledger_call("record", message.notification_id, self._round, message.channel, answer)
        return answer

    async def resolve(self, message: OutgoingMessage, attempts_so_far: Sequence[Attempt]) -> SendOutcome:
        known = await self._service.ledger_call(
            "outcome", message.notification_id, self._round, message.channel
        )
        if isinstance(known, Delivered | DeliveryFailed):
            logger.warning(
                "the send in flight when the last worker stopped is known from the ledger",
                extra={"channel": message.channel.value, "sent": isinstance(known, Delivered)},
            )
            return known
        intent = self._notification.sending
        if intent is not None and intent.channel is None and intent.token is not None:
            started = await self._service.ledger_call(
                "started", message.notification_id, self._round, intent.token, message.channel
            )
            if started is False:  # the ledger holds the claim that wrote the intent, and no start
                logger.info(
                    "the last worker stopped before its first send started: sent now",
                    extra={"channel": message.channel.value},
                )
                return await self.send(message, attempts_so_far)
        if self._service.resend_uncertain:
            logger.warning(
                "the send in flight when the last worker stopped has no recorded outcome: sent again "
                "(UNCERTAIN_SENDS=resend)",
                extra={"channel": message.channel.value},
            )
            return await self.send(message, attempts_so_far)
        logger.warning(
            "the send in flight when the last worker stopped has no recorded outcome: uncertain, "
            "not sent again",
            extra={"channel": message.channel.value},
        )
        return uncertain_send(message.channel)


class DispatchService:
    def __init__(
        self,
        repository: NotificationRepository,
        queue: DeliveryQueue,
        providers: Mapping[Channel, Provider],
        policy: RetryPolicy,
        now: Callable[[], datetime],
        worker_id: str,
        lease: timedelta,
        provider_health: ProviderHealth | None = None,
        ledger: DeliveryLedger | None = None,
        send_budget_seconds: float = 0,
        resend_uncertain: bool = False,
        max_delay_seconds: int = SQS_MAX_DELAY_SECONDS,
        metrics: Metrics | None = None,
        webhooks: WebhookQueue | None = None,
        webhook_grace: timedelta = timedelta(seconds=60),
    ) -> None:
        self._webhooks = webhooks
        self._webhook_grace = webhook_grace
        self._metrics = metrics
        self._max_delay = max_delay_seconds
        self._provider_health = provider_health
        self._ledger = ledger
        self.send_budget_seconds = send_budget_seconds
        self.resend_uncertain = resend_uncertain
        self._executor = ThreadPoolExecutor(max_workers=BLOCKING_THREADS, thread_name_prefix="dispatch-io")
        self._repository = repository
        self._queue = queue
        self._providers = providers
        self._policy = policy
        self._now = now
        self._worker_id = worker_id
        self._lease = lease

    @property
    def repository(self) -> NotificationRepository:
        return self._repository

    @property
    def worker_id(self) -> str:
        return self._worker_id

    def now(self) -> datetime:
        return self._now()

    async def blocking(self, function: Callable[..., T], *args: object) -> T:
        return await self._blocking(function, *args)

    async def _blocking(self, function: Callable[..., T], *args: object) -> T:
        """A blocking adapter call in this service's own threads (asyncio's default pool has
        cpu_count + 4 threads: 6 on a 2-core Lambda, fewer than a batch of 10 needs), carrying the
        caller's context (log keys)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: context.run(function, *args)
        )

    async def dispatch(
        self, message: DeliveryMessage, time_left: Callable[[], float] | None = None
    ) -> DispatchOutcome:
        """What `run` did, without the channel."""
        return (await self.run(message, time_left)).outcome

    async def run(
        self, message: DeliveryMessage, time_left: Callable[[], float] | None = None
    ) -> RoundReport:
        """Run the round `message` names. `time_left`: seconds left in this invocation; a send that
        might not finish in time (or within the lease) is not started, and the round is released."""
        token = await self._claim_token(message)
        now = self._now()
        try:
            notification = await self._blocking(
                self._repository.claim_round,
                message.notification_id,
                message.round,
                self._worker_id,
                now,
                now + self._lease,
                token,
            )
        except ClaimRejected as rejected:
            return RoundReport(await self._claim_lost(message, rejected))

        run = _RoundRun(self, notification, message.round, time_left, token)
        # this claim's own intent is no send an earlier run left in flight
        current = notification.with_changes(sending=None) if run.owns_intent else notification
        try:
            attempts = await run_round(current, message.round, run.send, self._now, run.resolve)
        except LeaseLost:
            logger.error("lease lost before a send; the send did not happen", extra={"round": message.round})
            return RoundReport(DispatchOutcome.DROPPED)
        except OutOfTime as out:
            await self._blocking(
                self._repository.release_round,
                message.notification_id,
                message.round,
                self._worker_id,
                run.unwritten(),
                self._now(),
            )
            logger.warning("round released unfinished: not enough time left", extra={"round": message.round})
            raise RoundReleased(str(out)) from None
        decision = verdict(notification, message.round, attempts, self._policy)
        finished = self._now()
        match decision:
            case SentVerdict(channel=channel, provider_message_id=provider_id):
                result = RoundResult(Status.SENT, run.unwritten(attempts), channel, provider_id)
                outcome = DispatchOutcome.SENT
            case PartiallySentVerdict(channel=channel, provider_message_id=provider_id, reason=reason):
                result = RoundResult(
                    Status.PARTIALLY_SENT, run.unwritten(attempts), channel, provider_id, reason=reason
                )
                outcome = DispatchOutcome.PARTIALLY_SENT
            case RetryVerdict(delay_seconds=delay):
                result = RoundResult(
                    Status.RETRYING,
                    run.unwritten(attempts),
                    next_attempt_at=finished + timedelta(seconds=delay),
                )
                outcome = DispatchOutcome.RETRYING
            case FailedVerdict(reason=reason):
                result = RoundResult(Status.FAILED, run.unwritten(attempts), reason=reason)
                outcome = DispatchOutcome.FAILED
        owes_webhook = bool(result.status.is_terminal and notification.callback_url and self._webhooks)
        if owes_webhook:
            result = replace(result, webhook_due=finished + self._webhook_grace)
        try:
            await self._blocking(
                self._repository.complete_round,
                message.notification_id,
                message.round,
                self._worker_id,
                result,
                finished,
            )
        except LeaseLost:
            logger.error(
                "round finished after its lease was taken over; result not written",
                extra={"round": message.round, "outcome": outcome.value},
            )
            return RoundReport(DispatchOutcome.DROPPED)
        if isinstance(decision, RetryVerdict):
            await self._enqueue_next(message, decision.delay_seconds)
        if owes_webhook:
            await self._enqueue_webhook(message, result.status)
        await self._blocking(self._record_metrics, notification, message.round, attempts, result, finished)
        logger.info(
            "round finished",
            extra={
                "round": message.round,
                "outcome": outcome.value,
                "channel": result.channel_used.value if result.channel_used else None,
                "reason": decision.reason if isinstance(decision, FailedVerdict) else None,
                "uncertain": any(a.outcome is Outcome.UNCERTAIN for a in attempts) or None,
            },
        )
        return RoundReport(outcome, result.channel_used)

    async def _claim_token(self, message: DeliveryMessage) -> str | None:
        """A token for the claim to write the first send's intent under, once the ledger holds it;
        None (the intent is written before the send, as for any other) when the ledger is not there."""
        if self._ledger is None:
            return None
        token = uuid.uuid4().hex
        try:
            await self._blocking(self._ledger.mark_claim, message.notification_id, message.round, token)
        except DependencyUnavailable:
            logger.warning("delivery ledger unavailable: the first send's intent is written apart")
            return None
        return token

    @property
    def ledger(self) -> DeliveryLedger | None:
        return self._ledger

    async def send(self, message: OutgoingMessage, commit: Commit) -> ProviderAnswer:
        provider = self._providers.get(message.channel)
        if provider is None:
            return DeliveryFailed.permanent(f"no provider configured for {message.channel.value}")
        try:
            answer = await provider.send(message, commit)
        except (LeaseLost, DependencyUnavailable):  # from commit: the send did not start; the round stops
            raise
        except Exception as exc:  # a provider bug must not lose the round: count it as transient
            logger.exception(
                "provider raised instead of classifying its failure", extra={"channel": message.channel.value}
            )
            return DeliveryFailed.transient(f"{message.channel.value} provider error: {type(exc).__name__}")
        await self._report_health(message.channel, answer)
        return answer

    async def ledger_call(self, operation: str, *args: object) -> object:
        """The ledger only sharpens what a round that runs again knows; when the cache is down the
        write-ahead in DynamoDB still keeps the channel from being sent twice, and delivery goes on."""
        if self._ledger is None:
            return None
        try:
            return await self._blocking(getattr(self._ledger, operation), *args)
        except DependencyUnavailable:
            logger.warning("delivery ledger unavailable", extra={"operation": operation})
            return None

    def _record_metrics(
        self,
        notification: Notification,
        round_no: int,
        attempts: Sequence[Attempt],
        result: RoundResult,
        finished: datetime,
    ) -> None:
        if self._metrics is None:
            return
        for attempt in attempts:
            self._metrics.count(
                "delivery_attempts_total", channel=attempt.channel.value, outcome=attempt.outcome.value
            )
        if result.status in (Status.SENT, Status.PARTIALLY_SENT) and result.channel_used is not None:
            self._metrics.count("notifications_sent_total", channel=result.channel_used.value)
            self._metrics.observe(
                "notification_delivery_seconds", (finished - notification.created_at).total_seconds()
            )
        elif result.status is Status.FAILED:
            self._metrics.count("notifications_failed_total")
        if result.status.is_terminal:
            self._metrics.observe("notification_rounds", float(round_no - notification.rounds_before_retry))

    async def _report_health(self, channel: Channel, outcome: ProviderAnswer) -> None:
        if self._provider_health is None:
            return
        if isinstance(outcome, DeliveryFailed) and not outcome.configuration_error:
            return  # a timeout says nothing about whether the configuration works again
        problem = outcome.reason if isinstance(outcome, DeliveryFailed) else None
        try:
            await self._blocking(self._provider_health.report, channel, problem)
        except DependencyUnavailable:  # the cache is a window on health, never a reason to fail a round
            logger.warning("could not record provider health", extra={"channel": channel.value})

    async def _claim_lost(self, message: DeliveryMessage, rejected: ClaimRejected) -> DispatchOutcome:
        current = rejected.current
        reason = why_claim_lost(current, message.round, self._now())
        logger.info(
            "delivery message did not claim its round",
            extra={
                "round": message.round,
                "reason": reason.value,
                "status": current.status.value,
                "record_round": current.round,
            },
        )
        if reason is LostClaim.NOT_YET_DUE and current.send_at is not None:
            delay = hop_delay(current.send_at, self._now(), self._max_delay)
            await self._blocking(self._queue.enqueue, message.with_receive_count(1), delay)
            return DispatchOutcome.HOPPED
        if reason is LostClaim.IN_PROGRESS:
            raise RoundInProgressElsewhere(f"round {message.round} of {current.id} is being worked on")
        if reason is LostClaim.NEXT_ROUND_DUE and message.receive_count > 1:
            # The round ended `retrying` but this message came back after a failure: the enqueue of the
            # next round may have failed after the write. Enqueue it again (a duplicate loses its
            # claim). A first-delivery copy is a plain SQS duplicate and is dropped, so duplicates do
            # not multiply from round to round.
            due = current.next_attempt_at or self._now()
            remaining = max(0, math.ceil((due - self._now()).total_seconds()))
            await self._enqueue_next(message, remaining)
            return DispatchOutcome.REQUEUED_NEXT_ROUND
        return DispatchOutcome.DROPPED

    async def _enqueue_webhook(self, message: DeliveryMessage, status: Status) -> None:
        """The record owes the webhook (written with the result): if this enqueue fails, the sweeper
        sends it, so it never fails the round."""
        await self._blocking(
            enqueue_owed_webhook,
            self._webhooks,
            message.notification_id,
            status.value,
            message.correlation_id,
        )

    async def _enqueue_next(self, message: DeliveryMessage, delay_seconds: int) -> None:
        await self._blocking(
            self._queue.enqueue,
            DeliveryMessage(message.notification_id, message.round + 1, message.correlation_id),
            delay_seconds,
        )
