"""Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from o2oloop.webhooks.signing_secrets import secret_bytes


def signature(secret: str, *, msg_id: str, timestamp: int, body: str) -> str:
    """One `v1,<base64>` signature of a message with one `whsec_` secret."""
    if "." in msg_id:
        raise ValueError("a webhook id may not contain '.'")
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Iterable[str], *, msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value: one signature per live secret, space-separated, so a
    receiver that knows either the old or the new secret during a rotation accepts it."""
    return " ".join(
        signature(secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets
    )


def headers(secrets: Iterable[str], *, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """Every header a delivery carries."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            secrets, msg_id=msg_id, timestamp=timestamp, body=body
        ),
    }
