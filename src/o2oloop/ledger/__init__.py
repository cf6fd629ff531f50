"""The money thread: a double-entry ledger, escrow, stored value, settlement, reconciliation."""
