"""Message templates: `{placeholder}` fields, checked when the template is saved.

A template that names a field the platform does not fill is refused at save time (a 422),
never discovered half-way through a send.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

from o2oloop.errors import InvalidInput

PLACEHOLDERS: dict[str, str] = {
    "name": "the member's name (or 'there' when unknown)",
    "merchant": "the merchant's name",
    "offer": "the offer's title",
    "code": "the personal code, as typed at the counter",
    "expiry": "when the code expires, as a date in the consumer's timezone",
    "store": "the store the offer points to",
    "unsubscribe_url": "the one-click unsubscribe link",
}
MAX_LENGTH = 2000


def fields_of(template: str) -> list[str]:
    """The placeholder names in `template`; raises InvalidInput when it is malformed."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise InvalidInput(f"template is malformed: {error}", field="template") from None
    names = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise InvalidInput(
                f"placeholder {{{name}}} must be a plain name such as {{code}}", field="template"
            )
        names.append(name)
    return names


def validate(template: str, *, field: str = "template") -> str:
    """The template itself, when every placeholder is one the platform fills."""
    if len(template) > MAX_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_LENGTH} characters", field=field)
    unknown = sorted(set(fields_of(template)) - PLACEHOLDERS.keys())
    if unknown:
        raise InvalidInput(
            f"{field} has unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"known: {', '.join('{' + k + '}' for k in PLACEHOLDERS)}",
            field=field,
            unknown_placeholders=unknown,
        )
    return template


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a validated template; a value missing here renders as an empty string."""
    return template.format_map({name: values.get(name, "") for name in PLACEHOLDERS})


@dataclass(frozen=True, slots=True)
class Compiled:
    """A validated template parsed once: literal text and the fields between, in order, so a
    send renders thousands of messages without parsing the template again for each."""

    parts: tuple[tuple[str, str | None], ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name in self.parts if name is not None)

    def render(self, values: Mapping[str, str]) -> str:
        """The same text as `render(template, values)`."""
        get = values.get
        return "".join(
            literal + (get(name, "") if name is not None else "") for literal, name in self.parts
        )


def compile_template(template: str) -> Compiled:
    """Validate and parse once; raises InvalidInput like `validate`."""
    validate(template)
    parsed = string.Formatter().parse(template)
    return Compiled(tuple((literal, name) for literal, name, _, _ in parsed))
