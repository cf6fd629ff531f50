"""Every domain's tables, imported in one place so the metadata is complete."""

from o2oloop.analytics.models import FittedModel, MemberScore, ScoreSummary
from o2oloop.auth.models import ApiKey
from o2oloop.campaigns.models import Campaign, CampaignTarget, ContactWindow
from o2oloop.channels.models import (
    ChannelDaily,
    CodeAttribution,
    ConsumerTouch,
    OffPeakProposal,
    Publication,
    Referral,
    ReferralProgram,
    ReferralReward,
    Share,
    SharerPeriod,
    SlotIssuance,
    StoreCell,
    StoreRating,
    StoreReviewRating,
)
from o2oloop.codes.models import (
    BatchCodeUse,
    Code,
    CodeBatch,
    OfferClaim,
    Redemption,
    RedemptionAttempt,
)
from o2oloop.customers.models import ConsentEvent, Consumer, Membership
from o2oloop.dashboard.models import StoreHour
from o2oloop.db import Base
from o2oloop.idempotency.models import IdempotencyRecord
from o2oloop.jobs.models import Job, OutboxEntry
from o2oloop.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from o2oloop.merchants.models import Merchant, Staff, Store, Terminal
from o2oloop.notify.models import Message, SandboxSms
from o2oloop.offers.models import Offer
from o2oloop.payments.models import (
    PaymentIntent,
    ProcessedWebhookEvent,
    ProviderOperation,
    SandboxEvent,
    SandboxRecord,
)
from o2oloop.people.models import PasswordReset, Person, SignInEvent, WebSession
from o2oloop.reviews.models import (
    LogCheckpoint,
    LogEntry,
    LogHead,
    LogNode,
    Review,
    ReviewPhoto,
    ReviewReply,
    ReviewVersion,
)
from o2oloop.settlement.models import SettlementBatch, SettlementLine
from o2oloop.stored_value.models import StoredValueProgram
from o2oloop.terminal.models import TerminalPairing
from o2oloop.visits.models import Visit
from o2oloop.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSequence,
)

__all__ = [
    "ApiKey",
    "Base",
    "BatchCodeUse",
    "Campaign",
    "CampaignTarget",
    "ChannelDaily",
    "Code",
    "CodeAttribution",
    "CodeBatch",
    "ConsentEvent",
    "Consumer",
    "ConsumerTouch",
    "ContactWindow",
    "FittedModel",
    "IdempotencyRecord",
    "Job",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "LogCheckpoint",
    "LogEntry",
    "LogHead",
    "LogNode",
    "MemberScore",
    "Membership",
    "Merchant",
    "Message",
    "OffPeakProposal",
    "Offer",
    "OfferClaim",
    "OutboxEntry",
    "PasswordReset",
    "PaymentIntent",
    "Person",
    "ProcessedWebhookEvent",
    "ProviderOperation",
    "Publication",
    "Redemption",
    "RedemptionAttempt",
    "Referral",
    "ReferralProgram",
    "ReferralReward",
    "Review",
    "ReviewPhoto",
    "ReviewReply",
    "ReviewVersion",
    "SandboxEvent",
    "SandboxRecord",
    "SandboxSms",
    "ScoreSummary",
    "SettlementBatch",
    "SettlementLine",
    "Share",
    "SharerPeriod",
    "SignInEvent",
    "SlotIssuance",
    "Staff",
    "Store",
    "StoreCell",
    "StoreHour",
    "StoreRating",
    "StoreReviewRating",
    "StoredValueProgram",
    "Terminal",
    "TerminalPairing",
    "Visit",
    "WebSession",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookSequence",
]
