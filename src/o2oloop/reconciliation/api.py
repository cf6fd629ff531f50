"""The platform admin's reconciliation report."""

from __future__ import annotations

from fastapi import APIRouter

from o2oloop import clock
from o2oloop.auth.principal import require_platform
from o2oloop.http import Caller, Reading, problems
from o2oloop.reconciliation import schemas
from o2oloop.reconciliation import service as reconciliation

router = APIRouter(prefix="/v1", tags=["money"], responses=problems(401, 403))


@router.get("/ledger/reconciliation")
def reconciliation_report(session: Reading, caller: Caller) -> schemas.ReconciliationReport:
    """Platform admin: every difference between the books, the provider and settlements."""
    require_platform(caller)
    differences = reconciliation.report(session)
    return schemas.ReconciliationReport(
        generated_at=clock.now(),
        ok=not differences,
        differences=[schemas.DifferenceRead(**d.as_dict()) for d in differences],
    )
