"""SweeperFunction: on a schedule, re-enqueues notifications that stopped moving (their first message
was never sent, their worker died, their next round's message was lost) and fails those that never
move on. What counts as stuck is in notification_service/domain/sweep.py."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from notification_service.bootstrap import build_sweeper
from notification_service.lazy import Lazy
from notification_service.service.sweeper import Sweeper

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # only what it calls: patching all costs cold start
sweeper: Lazy[Sweeper] = Lazy(build_sweeper)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    return sweeper.get().sweep().as_dict()
