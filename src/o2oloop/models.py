"""Every domain's tables, imported in one place so the metadata is complete."""

from o2oloop.auth.models import ApiKey
from o2oloop.codes.models import (
    BatchCodeUse,
    Code,
    CodeBatch,
    OfferClaim,
    Redemption,
    RedemptionAttempt,
)
from o2oloop.customers.models import Consumer
from o2oloop.db import Base
from o2oloop.idempotency.models import IdempotencyRecord
from o2oloop.merchants.models import Merchant, Staff, Store, Terminal
from o2oloop.offers.models import Offer

__all__ = [
    "ApiKey",
    "Base",
    "BatchCodeUse",
    "Code",
    "CodeBatch",
    "Consumer",
    "IdempotencyRecord",
    "Merchant",
    "Offer",
    "OfferClaim",
    "Redemption",
    "RedemptionAttempt",
    "Staff",
    "Store",
    "Terminal",
]
