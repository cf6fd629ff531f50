"""The reconciliation report's shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class DifferenceRead(BaseModel):
    check: str
    subject: str
    expected: int
    actual: int
    detail: str


class ReconciliationReport(BaseModel):
    generated_at: datetime
    ok: bool
    differences: list[DifferenceRead]
