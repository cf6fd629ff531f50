"""Field types shared by every domain's schemas."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, Field, StringConstraints

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
