"""Correlation ids: accepted from the caller or generated, bounded, carried everywhere."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

HEADER = "X-Correlation-ID"
_SAFE = re.compile(r"^[A-Za-z0-9._:/@+=-]{1,128}$")


def correlation_id_from(headers: Mapping[str, str] | None) -> str:
    """The caller's X-Correlation-ID when it is a sane token (any case of the header name), else a new one."""
    for name, value in (headers or {}).items():
        if name.lower() == HEADER.lower() and value and _SAFE.match(value.strip()):
            return value.strip()
    return str(uuid.uuid4())
