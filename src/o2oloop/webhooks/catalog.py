"""The event types a merchant can subscribe to: domain events by their wire names.

Wire names follow the spec's advice (hierarchical, full-stop delimited, `[a-z_]`), so a
webhook's `type` is the event's own name. Only events that belong to a merchant (they carry
`merchant_id`) are ever delivered; `bootstrap` wires exactly these types to the handler.
"""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "code.claimed": "A consumer claimed or bought one of your offers",
    "code.redeemed": "A code was redeemed at one of your stores",
    "redemption.undone": "A redemption was undone within its grace period",
    "voucher.refunded": "A prepaid voucher of yours was refunded",
    "visit.recorded": "A terminal recorded a payment (a visit)",
    "member.enrolled": "A consumer became one of your members",
    "member.segment_changed": "A member moved from one segment to another",
    "members.scored": "Every member of yours was scored and segmented afresh",
    "payment.succeeded": "A consumer's payment for your offer succeeded",
    "payment.failed": "A consumer's payment for your offer failed",
    "payout.finished": "A payout to you finished (or failed)",
    "campaign.message_sent": "A campaign's message for one of your members, for your own"
    " app or CRM to deliver (the webhook channel): its text and personal code",
}
