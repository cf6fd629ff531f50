"""Password hashing (argon2id) and the policy that refuses short and guessable passwords."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 200
MIN_SCORE = 3  # zxcvbn: 3 = "safely unguessable: moderate protection from offline attack"


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    # argon2-cffi's defaults are RFC 9106's second recommended (low-memory) argon2id profile.
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """Verified against when the email is unknown, so timing does not tell who has an account."""
    return hash_password("no such person, no such password")


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why this password is refused, or None. Checked against zxcvbn's lists of common and
    breached passwords, words and names, plus the person's own email and name."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"use at most {MAX_LENGTH} characters"
    from zxcvbn import zxcvbn

    own = [part for part in (email, email.split("@")[0], name) if part]
    result = zxcvbn(password[:100], user_inputs=own)
    if result["score"] < MIN_SCORE:
        return "this password is too common or easy to guess; add words or characters"
    return None
