"""Managing templates (checked when stored) and rendering one for a notification being accepted."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from notification_service.domain.model import Channel
from notification_service.domain.template import (
    Rendered,
    Template,
    TemplateNotFound,
    TemplatePart,
    TemplateProblem,
)
from notification_service.ports import TemplateStore


class TemplateService:
    def __init__(self, store: TemplateStore, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now

    def put(self, name: str, parts: dict[Channel, TemplatePart]) -> Template:
        """Raises TemplateProblem naming a part that does not parse; stores nothing then."""
        from notification_service.templating import check  # Jinja2: only when templates are used

        check(parts)
        return self._store.put(name, parts, self._now())

    def get(self, name: str) -> Template:
        return self._store.get(name)

    def delete(self, name: str) -> None:
        self._store.delete(name)

    def list(self) -> list[Template]:
        return self._store.list()

    def render(self, name: str, channels: Iterable[Channel], variables: Mapping[str, Any] | None) -> Rendered:
        try:
            template = self._store.get(name)
        except TemplateNotFound:
            raise TemplateProblem("template", f"no template named {name!r}") from None
        from notification_service.templating import render  # Jinja2: only when templates are used

        return render(template, channels, variables or {})
