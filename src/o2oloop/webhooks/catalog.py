"""The event types a merchant can subscribe to, and how a domain event is named in a webhook.

Types follow the spec's advice: hierarchical, full-stop delimited, `[a-z_]` identifiers.
Only events that belong to a merchant (they carry `merchant_id`) are ever delivered.
"""

from __future__ import annotations

# Domain event class name -> (webhook type, what it means).
_BY_EVENT: dict[str, tuple[str, str]] = {
    "CodeClaimed": ("code.claimed", "A consumer claimed or bought one of your offers"),
    "CodeRedeemed": ("code.redeemed", "A code was redeemed at one of your stores"),
    "RedemptionUndone": ("redemption.undone", "A redemption was undone within its grace period"),
    "VisitRecorded": ("visit.recorded", "A terminal recorded a payment (a visit)"),
    "MemberEnrolled": ("member.enrolled", "A consumer became one of your members"),
    "PaymentSucceeded": ("payment.succeeded", "A consumer's payment for your offer succeeded"),
    "PaymentFailed": ("payment.failed", "A consumer's payment for your offer failed"),
    "VoucherRefunded": ("voucher.refunded", "A prepaid voucher of yours was refunded"),
    "PayoutFinished": ("payout.finished", "A payout to you finished (or failed)"),
}

EVENT_TYPES: dict[str, str] = dict(_BY_EVENT.values())


def webhook_type(event_class_name: str) -> str | None:
    """The webhook type of a domain event class, or None if merchants cannot subscribe to it."""
    entry = _BY_EVENT.get(event_class_name)
    return entry[0] if entry else None


def delivered_event_names() -> list[str]:
    """Domain event class names whose events may become webhooks (for the wiring)."""
    return list(_BY_EVENT)
