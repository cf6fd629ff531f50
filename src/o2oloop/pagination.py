"""Cursor pagination over time-sortable ids: stable under inserts, no offsets."""

from __future__ import annotations

import re
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from o2oloop.errors import InvalidInput

MAX_LIMIT = 200
CURSOR_PATTERN = r"^[a-z]{2,5}_[0-9a-z]{26}$"  # an id: the last row of the page before
_CURSOR = re.compile(CURSOR_PATTERN)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = None


Read = TypeVar("Read", bound=BaseModel)


def page_of(schema: type[Read], rows: list[Any], next_cursor: str | None) -> Page[Read]:
    """One page of rows shaped by their read schema."""
    return Page(data=[schema.model_validate(row) for row in rows], next_cursor=next_cursor)


def paginate(
    session: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[str],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Rows after `cursor` in id order, and the cursor of the next page (None at the end)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    if cursor is not None:
        if not _CURSOR.match(cursor):
            raise InvalidInput("cursor is not one this API returned")
        query = query.where(id_column > cursor)
    rows = list(session.scalars(query.order_by(id_column).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, getattr(rows[-1], id_column.key)
    return rows, None
