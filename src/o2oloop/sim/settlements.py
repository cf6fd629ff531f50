"""Weekly settlement in the demo city: each merchant's payable batched and paid out.

Every Monday morning the platform settles every merchant up to that moment, as
`o2oloop settle` does; the sandbox provider completes the payouts by webhook, so the
console shows batches paid, carried forward and their statements.
"""

from __future__ import annotations

from o2oloop.settlement import service as settlement
from o2oloop.sim.world import CityRun

WEEKDAY = 0  # Monday


def end_of_day(run: CityRun) -> None:
    now = run.frozen.now()
    if now.weekday() != WEEKDAY:
        return
    with run.db.transaction() as session:
        merchant_ids = settlement.merchants_to_settle(session)
    for merchant_id in merchant_ids:
        with run.db.transaction() as session:
            batch = settlement.settle_merchant(session, merchant_id=merchant_id, cutoff=now)
            run.report.settlements += batch is not None
