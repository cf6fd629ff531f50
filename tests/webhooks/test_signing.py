"""Our signatures against the reference `standardwebhooks` verifier: round trip, rotation,
and the three things a verifier must refuse (a tampered body, an old timestamp, a replay)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from o2oloop.webhooks import signing
from o2oloop.webhooks.signing_secrets import new_secret

BODY = '{"type":"code.redeemed","timestamp":"2026-06-01T12:00:00Z","sequence":1,"data":{}}'


class ReplayGuard:
    """What the spec asks a receiver to do beside verifying: each webhook-id once."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def verify(self, secret: str, body: str, headers: dict[str, str]) -> object:
        payload = Webhook(secret).verify(body, headers)
        if headers["webhook-id"] in self.seen:
            raise WebhookVerificationError("webhook-id already processed")
        self.seen.add(headers["webhook-id"])
        return payload


def _headers(secrets: list[str], msg_id: str = "msg_1", at: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if at is None else at
    return signing.headers(secrets, msg_id=msg_id, timestamp=ts, body=BODY)


@given(body=st.text(max_size=300), msg_id=st.from_regex(r"msg_[0-9a-z]{26}", fullmatch=True))
def test_our_signature_is_the_reference_signature(body: str, msg_id: str) -> None:
    secret = new_secret()
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    ours = signing.signature(secret, msg_id=msg_id, timestamp=int(at.timestamp()), body=body)
    assert ours == Webhook(secret).sign(msg_id, at, body)


def test_headers_verify_with_the_reference_library() -> None:
    secret = new_secret()
    headers = _headers([secret])
    assert set(headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(secret).verify(BODY, headers)["type"] == "code.redeemed"


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = _headers([new, old])
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_a_tampered_body_is_rejected() -> None:
    secret = new_secret()
    headers = _headers([secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace('"sequence":1', '"sequence":2'), headers)


def test_an_old_timestamp_is_rejected() -> None:
    secret = new_secret()
    headers = _headers([secret], at=int(time.time()) - 6 * 60)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def test_a_replayed_id_is_rejected() -> None:
    secret, guard = new_secret(), ReplayGuard()
    guard.verify(secret, BODY, _headers([secret], msg_id="msg_a"))
    with pytest.raises(WebhookVerificationError, match="already processed"):
        guard.verify(secret, BODY, _headers([secret], msg_id="msg_a"))
    guard.verify(secret, BODY, _headers([secret], msg_id="msg_b"))


def test_secrets_are_24_random_bytes_in_the_whsec_form() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24


def test_an_id_with_a_full_stop_cannot_be_signed() -> None:
    with pytest.raises(ValueError):
        signing.signature(new_secret(), msg_id="msg.1", timestamp=1, body="{}")
