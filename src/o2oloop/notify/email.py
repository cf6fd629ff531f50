"""Email out: one small interface, real SMTP behind it, and a memory outbox for tests.

Every sender of email in the platform (campaign messages, the console's password reset)
builds an `OutgoingEmail` and hands it to an `EmailSender`. Sending is a network call, so
it happens after commit, never inside a database transaction.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

from o2oloop import clock
from o2oloop.config import Settings


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str | None = None
    # A stable id per message: a resend after a crash carries the same Message-ID, so
    # receiving systems (and our tests) can tell a duplicate from a second message.
    message_id: str | None = None
    # One-click unsubscribe (RFC 8058): a URL that takes a POST and withdraws consent.
    unsubscribe_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class EmailSender(Protocol):
    def send(self, email: OutgoingEmail) -> str:
        """Hand the message to the mail system; returns its Message-ID. Raises on failure."""
        ...


def build_message(email: OutgoingEmail, *, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(clock.now())
    domain = sender.rpartition("@")[2].strip("> ") or "o2oloop.local"
    if email.message_id:
        message["Message-ID"] = f"<{email.message_id}@{domain}>"
    else:
        message["Message-ID"] = make_msgid(domain=domain)
    if email.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


@dataclass
class SmtpSender:
    """Real SMTP with the standard library: STARTTLS or implicit TLS, optional login."""

    host: str
    port: int = 25
    sender: str = "o2oloop <no-reply@o2oloop.local>"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    implicit_tls: bool = False
    timeout: float = 30.0

    def send(self, email: OutgoingEmail) -> str:
        message = build_message(email, sender=self.sender)
        context = ssl.create_default_context()
        if self.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.starttls:
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)
        return str(message["Message-ID"])


@dataclass
class MemorySender:
    """Keeps what would have been sent: development without a mail server, and tests."""

    sent: list[EmailMessage] = field(default_factory=list)
    sender: str = "o2oloop <no-reply@o2oloop.local>"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, email: OutgoingEmail) -> str:
        message = build_message(email, sender=self.sender)
        with self._lock:
            self.sent.append(message)
        return str(message["Message-ID"])


def sender_from_settings(settings: Settings) -> EmailSender:
    """SMTP when `O2O_SMTP_HOST` is set, otherwise the memory outbox (development)."""
    if not settings.smtp_host:
        return MemorySender(sender=settings.mail_from)
    return SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.mail_from,
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        starttls=settings.smtp_starttls,
        implicit_tls=settings.smtp_implicit_tls,
    )
