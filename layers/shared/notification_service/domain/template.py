"""Templates: named, versioned content with a part per channel, rendered into a notification's
per-channel content when it is accepted (never at dispatch time)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from notification_service.domain.model import Channel, Content


@dataclass(frozen=True)
class TemplatePart:
    text: str
    subject: str | None = None  # email only
    html: str | None = None  # email only, optional


@dataclass(frozen=True)
class Template:
    name: str
    parts: dict[Channel, TemplatePart]
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Rendered:
    template: str
    version: int
    contents: dict[Channel, Content] = field(default_factory=dict)

    def headline(self, channels: Sequence[Channel]) -> tuple[str, str | None]:
        """The notification's own message and subject: the first requested channel's text (one
        channel at least has a part, or rendering refused) and the email subject, if any."""
        first = next(self.contents[c] for c in channels if c in self.contents)
        email = self.contents.get(Channel.EMAIL)
        return first.text, email.subject if email else None


class TemplateNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"template {name!r} not found")
        self.name = name


class TemplateProblem(ValueError):
    """A template that does not parse, or does not render with the given variables; `field` names
    what to fix (e.g. `variables.first_name`, `email.subject`, `template`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
