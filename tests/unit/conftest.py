"""Unit-test fixtures shared by the handler tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from notification_service.bootstrap import ApiDependencies
from notification_service.service.notifications import NotificationService
from notification_service.service.templates import TemplateService

from tests.fakes import ApiFakes
from tests.handlers import load_function_module


@pytest.fixture
def api_fakes() -> Iterator[ApiFakes]:
    """ApiFunction's handler with in-memory fakes behind it, for the length of a test."""
    api = load_function_module("api")
    f = ApiFakes()
    api.dependencies.set(
        ApiDependencies(
            settings=f.settings,
            notifications=NotificationService(f.repository, f.queue, f.idempotency, f.clock),
            idempotency=f.idempotency,
            health_checks={"dynamodb": f.repository, "sqs": f.queue, "redis": f.idempotency},
            templates=TemplateService(f.templates, f.clock),
        )
    )
    yield f
    api.dependencies.set(None)
