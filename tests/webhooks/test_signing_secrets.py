"""Secrets are stored encrypted under a key derived from O2O_SECRET_KEY, readable only with it."""

from __future__ import annotations

import pytest

from o2oloop.webhooks import signing_secrets

KEY = "test-secret-" + "k" * 32


def test_a_secret_comes_back_from_its_ciphertext() -> None:
    secret = signing_secrets.new_secret()
    stored = signing_secrets.encrypt(secret, secret_key=KEY)
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert signing_secrets.decrypt(stored, secret_key=KEY) == secret


def test_another_server_key_cannot_read_it() -> None:
    stored = signing_secrets.encrypt(signing_secrets.new_secret(), secret_key=KEY)
    with pytest.raises(RuntimeError, match="O2O_SECRET_KEY"):
        signing_secrets.decrypt(stored, secret_key="another-" + "k" * 32)


def test_two_encryptions_of_one_secret_differ() -> None:
    secret = signing_secrets.new_secret()
    assert signing_secrets.encrypt(secret, secret_key=KEY) != signing_secrets.encrypt(
        secret, secret_key=KEY
    )
