"""Rendering templates with Jinja2's sandboxed environment and strict undefined variables: a
missing variable or a template error is a TemplateProblem naming it, raised when the notification
is accepted (a 422), never at dispatch time."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from notification_service.domain.channel_limits import fits, too_long_reason
from notification_service.domain.model import Channel, Content
from notification_service.domain.template import (
    Rendered,
    Template,
    TemplatePart,
    TemplateProblem,
)

_plain = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_html = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def check(parts: Mapping[Channel, TemplatePart]) -> None:
    """Raise TemplateProblem naming the first part that does not parse (e.g. `sms.text`)."""
    for channel, part in parts.items():
        for name, source, env in _sources(part):
            try:
                env.parse(source)
            except TemplateSyntaxError as exc:
                raise TemplateProblem(
                    f"{channel.value}.{name}", f"line {exc.lineno}: {exc.message}"
                ) from None


def render(template: Template, channels: Iterable[Channel], variables: Mapping[str, Any]) -> Rendered:
    """Each requested channel's content, for the channels the template has a part for (the others
    are skipped at delivery); none at all is a TemplateProblem naming `channels`."""
    contents: dict[Channel, Content] = {}
    wanted = list(channels)
    for channel in wanted:
        part = template.parts.get(channel)
        if part is None:
            continue
        rendered = {
            name: _render(channel, name, source, env, variables) for name, source, env in _sources(part)
        }
        content = Content(rendered["text"], rendered.get("subject"), rendered.get("html"))
        if not fits(channel, content.text):
            raise TemplateProblem("variables", f"rendered {too_long_reason(channel, content.text)}")
        if not content.text.strip():
            raise TemplateProblem("variables", f"the rendered {channel.value} text is blank")
        contents[channel] = content
    if not contents:
        have = ", ".join(c.value for c in template.parts) or "none"
        asked = ", ".join(c.value for c in wanted)
        raise TemplateProblem("channels", f"template {template.name!r} has parts for {have}, none of {asked}")
    return Rendered(template.name, template.version, contents)


def _sources(part: TemplatePart) -> list[tuple[str, str, SandboxedEnvironment]]:
    sources = [("text", part.text, _plain)]
    if part.subject is not None:
        sources.append(("subject", part.subject, _plain))
    if part.html is not None:
        sources.append(("html", part.html, _html))
    return sources


def _render(
    channel: Channel, name: str, source: str, env: SandboxedEnvironment, variables: Mapping[str, Any]
) -> str:
    try:
        return env.from_string(source).render(**variables)
    except UndefinedError as exc:
        missing = _UNDEFINED_NAME.match(str(exc.message))
        if missing:
            raise TemplateProblem(f"variables.{missing.group(1)}", "missing (the template uses it)") from None
        raise TemplateProblem("variables", f"{channel.value}.{name}: {exc.message}") from None
    except TemplateError as exc:  # a sandbox refusal, a filter error
        raise TemplateProblem("template", f"{channel.value}.{name}: {exc.message}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:  # e.g. "{{ a + b }}" on a string and a list
        raise TemplateProblem("variables", f"{channel.value}.{name}: {type(exc).__name__}: {exc}") from None
