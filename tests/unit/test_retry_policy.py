"""Exponential backoff between rounds, capped at SQS's maximum delay."""

from __future__ import annotations

import pytest
from notification_service.domain.retry_policy import SQS_MAX_DELAY_SECONDS, RetryPolicy


@pytest.mark.parametrize(
    ("completed_round", "delay"),
    [(1, 2), (2, 4), (3, None)],
)
def test_base_two_with_three_rounds(completed_round: int, delay: int | None) -> None:
    policy = RetryPolicy(max_rounds=3, backoff_base=2)

    assert policy.next_delay(completed_round) == delay


def test_defaults_are_three_rounds_base_two_capped_at_sqs_limit() -> None:
    policy = RetryPolicy()

    assert (policy.max_rounds, policy.backoff_base, policy.max_delay_seconds) == (3, 2, 900)
    assert SQS_MAX_DELAY_SECONDS == 900


@pytest.mark.parametrize("completed_round", [3, 4, 10])
def test_no_delay_once_rounds_are_used_up(completed_round: int) -> None:
    assert RetryPolicy(max_rounds=3, backoff_base=2).next_delay(completed_round) is None


@pytest.mark.parametrize(
    ("completed_round", "delay"),
    [(8, 256), (9, 512), (10, 900), (15, 900)],
)
def test_delay_is_capped_at_900_seconds(completed_round: int, delay: int) -> None:
    policy = RetryPolicy(max_rounds=20, backoff_base=2)

    assert policy.next_delay(completed_round) == delay


def test_large_base_is_capped_from_the_first_round() -> None:
    assert RetryPolicy(max_rounds=3, backoff_base=1000).next_delay(1) == 900


def test_custom_cap_is_respected() -> None:
    assert RetryPolicy(max_rounds=5, backoff_base=10, max_delay_seconds=60).next_delay(2) == 60


@pytest.mark.parametrize("completed_round", [1, 2, 3, 4])
def test_base_one_is_a_constant_one_second(completed_round: int) -> None:
    assert RetryPolicy(max_rounds=5, backoff_base=1).next_delay(completed_round) == 1


def test_single_round_never_retries() -> None:
    assert RetryPolicy(max_rounds=1, backoff_base=2).next_delay(1) is None


def test_delay_is_an_int() -> None:
    delay = RetryPolicy(max_rounds=3, backoff_base=3).next_delay(2)

    assert delay == 9
    assert isinstance(delay, int)
