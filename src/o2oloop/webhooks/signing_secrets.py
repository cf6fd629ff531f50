"""Endpoint signing secrets: `whsec_` + base64 of 24 random bytes, encrypted at rest.

A webhook secret is shared, not a password: the server computes HMAC-SHA256 with the secret
itself on every delivery, so it must be able to read it back, and a one-way hash would make
signing impossible. What protects it at rest is encryption (Fernet: AES-128-CBC with an
HMAC-SHA256 tag) under a key derived from `O2O_SECRET_KEY`, so a copy of the database alone
does not reveal any merchant's secret. Changing `O2O_SECRET_KEY` makes stored secrets
unreadable; their endpoints then need a rotation.
"""

from __future__ import annotations

import base64
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "whsec_"
SECRET_BYTES = 24  # the spec's minimum; 192 bits


def new_secret() -> str:
    """A fresh endpoint secret in the Standard Webhooks serialization."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(PREFIX) :], validate=True)


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"o2oloop webhook endpoint secrets v1",
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret: str, *, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def decrypt(token: str, *, secret_key: str) -> str:
    """The stored secret in plain text; a clear error if O2O_SECRET_KEY has changed."""
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise RuntimeError(
            "a webhook secret cannot be decrypted with the current O2O_SECRET_KEY; "
            "rotate the endpoint's secret"
        ) from error
