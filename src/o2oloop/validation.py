"""Field types shared by every domain's schemas."""

from __future__ import annotations

import re
import types
import typing
import zoneinfo
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from o2oloop.money import SUPPORTED_CURRENCIES


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError(f"{value!r} is not an IANA timezone such as 'Asia/Shanghai'")
    return value


def _check_currency(value: str) -> str:
    if value not in SUPPORTED_CURRENCIES:
        raise ValueError(f"currency must be one of {', '.join(SUPPORTED_CURRENCIES)}")
    return value


def _check_country(value: str) -> str:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not an ISO 3166 country code with a phone plan")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
# The schema lists what the validators accept, so a request valid by the schema is accepted.
TimezoneName = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"enum": sorted(_timezones())}),
    AfterValidator(_check_timezone),
]
CurrencyCode = Annotated[
    str,
    Field(min_length=3, max_length=3, json_schema_extra={"enum": list(SUPPORTED_CURRENCIES)}),
    AfterValidator(_check_currency),
]
CountryCode = Annotated[
    str,
    Field(
        min_length=2,
        max_length=2,
        json_schema_extra={"enum": sorted(phonenumbers.SUPPORTED_REGIONS)},
    ),
    AfterValidator(_check_country),
]
BasisPoints = Annotated[int, Field(ge=0, le=10_000)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Id = Annotated[str, Field(min_length=1, max_length=40)]

_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")


def _written_date_time(value: Any) -> Any:
    """Pydantic would read ``0.5`` or ``"1700000000"`` as seconds since 1970; the schema's
    ``date-time`` is an RFC 3339 text only."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time such as 2026-06-01T12:00:00Z")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_written_date_time)]


FORM = {"form": True}


class JsonBody(BaseModel):
    """A request body read with JSON's own types, as its schema states them.

    Pydantic's lax mode would take ``true`` for a number, ``0`` or ``"yes"`` for a boolean
    and ``"7"`` for a number: values the schema calls invalid.
    A whole number written ``94.0`` stays accepted, as JSON Schema counts it an integer.
    A web form's fields are all text: validated with ``context=FORM``, they are read as before.
    """

    @field_validator("*", mode="before")
    @classmethod
    def _json_types(cls, value: Any, info: ValidationInfo) -> Any:
        if info.context and info.context.get("form"):
            return value
        field = cls.model_fields[info.field_name] if info.field_name else None
        if field is not None and _mistyped(field.annotation, value):
            raise ValueError(
                f"{value!r} is not of this field's JSON type: a number is written without"
                " quotes, and a boolean is true or false"
            )
        return value


def _mistyped(annotation: Any, value: Any) -> bool:
    """Whether lax validation would coerce ``value`` that JSON Schema's type refuses."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _mistyped(args[0], value)
    if origin in (typing.Union, types.UnionType):
        return all(_mistyped(arg, value) for arg in args)
    if origin is list and isinstance(value, list):
        return any(_mistyped(args[0], item) for item in value)
    if annotation is type(None):
        return value is not None
    if annotation is bool:
        return not isinstance(value, bool)
    if annotation in (int, float):
        return isinstance(value, bool | str)
    return False


def when(condition: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema rule: when these fields have these values, ``then`` holds too."""
    return {
        "if": {
            "properties": {name: {"const": value} for name, value in condition.items()},
            "required": list(condition),
        },
        "then": then,
    }


def given(*names: str, **constraints: dict[str, Any]) -> dict[str, Any]:
    """The schema of "these fields are given, not null", with more constraints by field."""
    properties = {name: {"not": {"type": "null"}} for name in names}
    for name, more in constraints.items():
        properties[name] = {**properties.get(name, {}), **more}
    return {"required": list(names), "properties": properties}
