"""The codes room's front door: the use cases other rooms and the routes call.

Each lives in its own module — claiming, issuance (bulk batches), the counter (who is at
the till, which code they hold), redemption, undo and the wallet — and this module names
them in one place, so a caller need not know how the room is divided.
"""

from __future__ import annotations

from o2oloop.codes.claiming import claim, new_code, reserve
from o2oloop.codes.counter import (
    Counter,
    Located,
    check_rate,
    counter_of,
    locate,
    record_attempt,
    record_refusal,
)
from o2oloop.codes.issuance import MAX_BATCH, get_batch, issue_batch, list_batches
from o2oloop.codes.keys import Keys
from o2oloop.codes.redemption import (
    CheckedRedemption,
    NewRedemption,
    Redeemed,
    check_redemption,
    complete_redemption,
    redeem,
)
from o2oloop.codes.refusals import CodeRejected, Refused
from o2oloop.codes.undo import list_attempts, undo
from o2oloop.codes.wallet import member_codes, own_code, wallet, wallet_state

__all__ = [
    "MAX_BATCH",
    "CheckedRedemption",
    "CodeRejected",
    "Counter",
    "Keys",
    "Located",
    "NewRedemption",
    "Redeemed",
    "Refused",
    "check_rate",
    "check_redemption",
    "claim",
    "complete_redemption",
    "counter_of",
    "get_batch",
    "issue_batch",
    "list_attempts",
    "list_batches",
    "locate",
    "member_codes",
    "new_code",
    "own_code",
    "record_attempt",
    "record_refusal",
    "redeem",
    "reserve",
    "undo",
    "wallet",
    "wallet_state",
]
