"""SMS out: the adapter interface and a sandbox provider that behaves like a real one.

A real SMS provider accepts a message (or refuses it, now and then, with an error), and
tells later, by a signed callback, whether the handset got it. The sandbox does the same:
`send` accepts and keeps the message in its own books (a resend with the same reference is
recognised, so a crash between sending and recording never texts anyone twice), decides its
fate by its failure rate, and `deliver_reports` posts the delivery reports, signed
`O2O-Signature: t=…,v1=HMAC-SHA256("t.body")`, once they are due.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from o2oloop import clock
from o2oloop.db import Database, new_id
from o2oloop.notify.models import SandboxSms
from o2oloop.payments.provider import SIGNATURE_HEADER, sign


class SmsError(Exception):
    """The provider refused or could not take the message now; the dispatcher retries."""


class SmsProvider(Protocol):
    name: str

    def send(self, *, to: str, body: str, reference: str) -> str:
        """Hand one message to the provider; returns the provider's id for it."""
        ...


def report_secret(secret_key: str) -> str:
    import hashlib
    import hmac

    return hmac.new(secret_key.encode(), b"sms-reports:sandbox", hashlib.sha256).hexdigest()


@dataclass
class SandboxSmsProvider:
    db: Database
    failure_rate: float = 0.05  # handsets that never get it (a failed delivery report)
    error_rate: float = 0.0  # sends the provider refuses outright (SmsError, retried)
    report_after: timedelta = timedelta(seconds=5)
    rng: random.Random = field(default_factory=random.Random)
    name: str = "sandbox"

    def send(self, *, to: str, body: str, reference: str) -> str:
        if self.rng.random() < self.error_rate:
            raise SmsError("sandbox: provider temporarily unavailable")
        now = clock.now()
        fate = "failed" if self.rng.random() < self.failure_rate else "delivered"
        try:
            with self.db.transaction() as session:
                known = session.scalar(
                    select(SandboxSms.provider_id).where(SandboxSms.reference == reference)
                )
                if known is not None:
                    return known
                provider_id = new_id("sms")
                session.add(
                    SandboxSms(
                        provider_id=provider_id,
                        reference=reference,
                        to=to,
                        body=body,
                        status="accepted",
                        fate=fate,
                        report_due_at=now + self.report_after,
                        reported=False,
                        created_at=now,
                    )
                )
                return provider_id
        except IntegrityError:  # the same reference, sent at the same moment elsewhere
            with self.db.reading() as session:
                found = session.scalar(
                    select(SandboxSms.provider_id).where(SandboxSms.reference == reference)
                )
            if found is None:
                raise
            return found


Post = Callable[[bytes, dict[str, str]], int]


def deliver_reports(db: Database, *, post: Post, secret: str, limit: int = 500) -> int:
    """Post every due delivery report; a report the receiver does not take (non-2xx) is
    posted again next time."""
    now = clock.now()
    with db.reading() as session:
        due = session.execute(
            select(SandboxSms.provider_id, SandboxSms.reference, SandboxSms.fate)
            .where(SandboxSms.reported.is_(False), SandboxSms.report_due_at <= now)
            .order_by(SandboxSms.report_due_at)
            .limit(limit)
        ).all()
    delivered = 0
    for sms in due:
        fate = sms.fate
        body = json.dumps(
            {
                "id": sms.provider_id,
                "reference": sms.reference,
                "status": fate,
                "error_code": "handset_unreachable" if fate == "failed" else None,
                "reported_at": now.isoformat(),
            },
            separators=(",", ":"),
        ).encode()
        status = post(body, {SIGNATURE_HEADER: sign(body, secret, int(now.timestamp()))})
        if 200 <= status < 300:
            with db.transaction() as session:
                row = session.get(SandboxSms, sms.provider_id)
                if row is not None:
                    row.reported = True
                    row.status = fate
            delivered += 1
    return delivered
