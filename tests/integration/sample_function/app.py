"""A tiny function for the worker-process tests: its behaviour is chosen by the event."""

from __future__ import annotations

import os
import threading
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    action = event.get("action")
    if action == "raise":
        raise ValueError("asked to fail")
    if action == "exit":
        os._exit(3)
    if action == "hang":
        threading.Event().wait()
    print("a log line from the handler")
    return {
        "echo": event.get("value"),
        "function_name": context.function_name,
        "env": os.environ.get("SAMPLE_VARIABLE"),
        "remaining_ms_positive": context.get_remaining_time_in_millis() > 0,
    }
