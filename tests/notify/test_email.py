"""Email through real SMTP: the stdlib client against aiosmtpd on localhost."""

from __future__ import annotations

import pytest

from o2oloop.config import Settings
from o2oloop.notify.email import MemorySender, OutgoingEmail, SmtpSender, sender_from_settings
from smtp_server import smtp_server


def test_an_email_arrives_over_smtp_with_its_unsubscribe_headers() -> None:
    with smtp_server() as (inbox, port):
        sender = SmtpSender(host="127.0.0.1", port=port, sender="Shop <shop@example.com>")
        message_id = sender.send(
            OutgoingEmail(
                to="ana@example.com",
                subject="We miss you",
                text="Here is 20 off: ABCD-EFGH",
                html="<p>Here is 20 off</p>",
                message_id="msg_123",
                unsubscribe_url="https://o2o.example/v1/unsubscribe/tok",
            )
        )
    assert message_id == "<msg_123@example.com>"
    assert inbox.envelopes == [("shop@example.com", ["ana@example.com"])]
    received = inbox.messages[0]
    assert received["Subject"] == "We miss you"
    assert received["Message-ID"] == "<msg_123@example.com>"
    assert received["List-Unsubscribe"] == "<https://o2o.example/v1/unsubscribe/tok>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = received.get_body(preferencelist=("plain",))
    assert plain is not None and "ABCD-EFGH" in plain.get_content()


def test_an_unreachable_server_raises_instead_of_pretending() -> None:
    sender = SmtpSender(host="127.0.0.1", port=1, timeout=2)
    with pytest.raises(OSError):
        sender.send(OutgoingEmail(to="a@example.com", subject="s", text="t"))


def test_without_a_host_the_memory_outbox_is_used(tmp_path) -> None:
    sender = sender_from_settings(Settings(env="test", data_dir=tmp_path))
    assert isinstance(sender, MemorySender)
    sender.send(OutgoingEmail(to="b@example.com", subject="Reset", text="link"))
    assert sender.sent[0]["To"] == "b@example.com"


def test_settings_with_a_host_give_real_smtp(tmp_path) -> None:
    with smtp_server() as (inbox, port):
        settings = Settings(env="test", data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=port)
        email = OutgoingEmail(to="c@example.com", subject="x", text="y")
        sender_from_settings(settings).send(email)
    assert len(inbox.messages) == 1
