"""Turning validation failures into the API's error body: every problem names its field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from notification_service.http.schemas import ErrorBody, FieldError

_LOCATIONS = {"body", "query", "path", "header", "headers", "cookie"}


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    out: list[FieldError] = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        where = loc[0] if loc and loc[0] in _LOCATIONS else "body"
        path = loc[1:] if loc and loc[0] in _LOCATIONS else loc
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "invalid JSON")
            out.append(FieldError(field="body", reason=f"malformed JSON: {detail}"))
            continue
        name = ".".join(path) if path else where
        if where in {"header", "headers", "query", "path"} and path:
            name = f"{where}.{name}"
        out.append(FieldError(field=name, reason=_reason(err)))
    return out


def _reason(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    message = str(err.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "field required"
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message[:1].lower() + message[1:]


def validation_error(details: list[FieldError]) -> ErrorBody:
    summary = "; ".join(f"{d.field}: {d.reason}" for d in details) or "invalid request"
    return ErrorBody(error="validation_error", message=summary, details=details)
