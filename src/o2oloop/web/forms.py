"""Turning a submitted form into a schema, and any refusal into messages beside the fields.

A page never shows a stack trace: pydantic's and the services' errors both become
`{field: message}`, and the form is shown again with what the person typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from o2oloop.errors import NotFound, ProblemError
from o2oloop.validation import FORM

Schema = TypeVar("Schema", bound=BaseModel)
GENERAL = "__all__"


class FormInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def message_of(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    context = error.get("ctx") or {}
    if kind == "missing":
        return "this is required"
    if kind in ("int_parsing", "int_type", "float_parsing"):
        return "enter a number"
    if kind == "greater_than_equal":
        return f"must be at least {context.get('ge')}"
    if kind == "greater_than":
        return f"must be more than {context.get('gt')}"
    if kind == "less_than_equal":
        return f"must be at most {context.get('le')}"
    if kind == "string_too_short":
        return "this is required" if context.get("min_length") == 1 else "too short"
    if kind == "string_too_long":
        return f"at most {context.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return "not in the expected form"
    if kind in ("datetime_parsing", "datetime_from_date_parsing", "timezone_aware"):
        return "enter a date and time"
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def validation_errors(
    error: ValidationError, fields: dict[str, str] | None = None
) -> dict[str, str]:
    """pydantic's errors by form field; `fields` maps schema names to form names."""
    out: dict[str, str] = {}
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ())]
        name = loc[0] if loc else GENERAL
        name = (fields or {}).get(name, name)
        out.setdefault(name, message_of(dict(item)))
    return out


def problem_errors(error: ProblemError) -> dict[str, str]:
    fields = error.extensions.get("fields")
    if isinstance(fields, dict) and fields:
        return {str(k): str(v) for k, v in fields.items()}
    field = error.extensions.get("field")
    if isinstance(field, str) and field:
        return {field: error.detail.removeprefix(f"{field}: ")}
    violations = error.extensions.get("violations")
    if isinstance(violations, list) and violations:
        return {GENERAL: "; ".join(str(v.get("detail", v)) for v in violations if v)}
    return {GENERAL: error.detail}


def parse(
    schema: type[Schema], values: dict[str, Any], fields: dict[str, str] | None = None
) -> Schema:
    try:
        return schema.model_validate(values, context=FORM)
    except ValidationError as error:
        raise FormInvalid(validation_errors(error, fields)) from None


def attempt(work: Callable[[], Any]) -> Any:
    """Run a use case; a refusal becomes `FormInvalid` (its transaction is rolled back)."""
    try:
        return work()
    except ProblemError as error:
        raise FormInvalid(problem_errors(error)) from None


def attempt_owned(work: Callable[[], Any]) -> Any:
    """Like `attempt`, but another merchant's (or no) row stays a 404 page, not a message."""
    try:
        return work()
    except NotFound:
        raise
    except ProblemError as error:
        raise FormInvalid(problem_errors(error)) from None
