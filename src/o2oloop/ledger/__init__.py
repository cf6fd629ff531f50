"""The money thread's bottom layer: a double-entry ledger of accounts and balanced postings."""
