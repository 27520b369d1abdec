"""Integration fixtures: a real moto server over HTTP, stacks provisioned from template.yaml."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from notification_service.settings import Settings

from infra import sam_template
from infra.emulator import Emulator, configure_aws_environment, start_emulator
from infra.provision import Stack, enable_time_to_live, ensure_stack, parameter_values


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    running = start_emulator(None, port=0)
    configure_aws_environment(running.endpoint_url)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def template() -> sam_template.SamTemplate:
    return sam_template.load()


@pytest.fixture
def stack(emulator: Emulator, template: sam_template.SamTemplate) -> Stack:
    """A fresh stack per test (cheap on moto): its own table and queues."""
    cloudformation = boto3.client("cloudformation", endpoint_url=emulator.endpoint_url)
    created = ensure_stack(
        cloudformation, template, f"it-{uuid.uuid4().hex[:10]}", parameter_values(template, {})
    )
    enable_time_to_live(boto3.client("dynamodb", endpoint_url=emulator.endpoint_url), template, created)
    return created


@pytest.fixture
def settings(stack: Stack, emulator: Emulator, redis_url: str) -> Settings:
    return Settings(
        table_name=stack.outputs["NotificationsTableName"],
        queue_url=stack.outputs["DeliveryQueueUrl"],
        aws_endpoint_url=emulator.endpoint_url,
        redis_url=redis_url,
    )
