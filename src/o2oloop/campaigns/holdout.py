"""Holdout assignment: a keyed hash of (campaign, consumer), decided the same way every time.

The hash is HMAC-SHA256 under a key derived from the platform secret, so nobody outside can
predict or steer an assignment, and the same consumer lands in the same arm of a campaign
however often, in whatever order, or by whichever worker the audience is evaluated. The
optional platform-wide global control is a fixed bucket range of the same kind of hash over
the consumer alone: those consumers get no campaign message at all, which measures the
cumulative effect of every campaign together.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from o2oloop.campaigns.models import Arm

BUCKETS = 10_000  # basis points
DEFAULT_HOLDOUT_BPS = 1_000  # 10 %


def holdout_key(secret_key: str) -> bytes:
    return hmac.digest(secret_key.encode(), b"o2oloop/holdout/v1", "sha256")


def bucket(key: bytes, scope: str, consumer_id: str) -> int:
    """A uniform bucket in [0, BUCKETS) for (scope, consumer)."""
    digest = hmac.digest(key, f"{scope}\x00{consumer_id}".encode(), hashlib.sha256)
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_global_control(key: bytes, consumer_id: str, global_control_bps: int) -> bool:
    return global_control_bps > 0 and bucket(key, "global", consumer_id) < global_control_bps


def assign(
    key: bytes,
    campaign_id: str,
    consumer_id: str,
    *,
    holdout_bps: int,
    global_control_bps: int = 0,
) -> Arm:
    """The arm of one consumer in one campaign."""
    if in_global_control(key, consumer_id, global_control_bps):
        return Arm.GLOBAL_CONTROL
    if holdout_bps > 0 and bucket(key, campaign_id, consumer_id) < holdout_bps:
        return Arm.CONTROL
    return Arm.TREATMENT


def assign_many(
    key: bytes,
    campaign_id: str,
    consumer_ids: Iterable[str],
    *,
    holdout_bps: int,
    global_control_bps: int = 0,
) -> list[Arm]:
    return [
        assign(
            key,
            campaign_id,
            c,
            holdout_bps=holdout_bps,
            global_control_bps=global_control_bps,
        )
        for c in consumer_ids
    ]
