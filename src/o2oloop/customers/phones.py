"""Phone numbers: normalised to E.164, looked up by a keyed hash. Pure functions."""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers

from o2oloop.errors import InvalidInput

_HASH_CONTEXT = b"o2oloop/phone/v1\0"


def normalise(raw: str, default_region: str) -> str:
    """`raw` as E.164 ('+8613800138000'); national formats read in `default_region`.

    Raises InvalidInput for anything that is not a valid, dialable number.
    """
    text = raw.strip()
    if not text or len(text) > 32:
        raise InvalidInput("phone must be a phone number such as +86 138 0013 8000")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput(f"phone {text!r} is not a phone number: {error}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(
            f"phone {text!r} is not a valid number (national numbers are read as {default_region})"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_hash(e164: str, secret_key: str) -> str:
    """HMAC-SHA256 of the E.164 number under the platform secret, as hex."""
    message = _HASH_CONTEXT + e164.encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
