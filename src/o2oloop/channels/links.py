"""Tracking tokens: short, signed, so a link cannot be forged or edited into another.

A token is one letter for what it names (a publication or a share), the 26 characters of
its id, and 10 characters (50 bits) of an HMAC over both. A tampered token fails the check
and is treated as no token at all: never trusted, never an error on a claim.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

LinkKind = Literal["publication", "share"]
_LETTER: dict[LinkKind, str] = {"publication": "p", "share": "s"}
_PREFIX: dict[str, tuple[LinkKind, str]] = {"p": ("publication", "pub"), "s": ("share", "shr")}
_ID_CHARS = frozenset("0123456789abcdefghjkmnpqrstvwxyz")
TOKEN_LENGTH = 37


@dataclass(frozen=True, slots=True)
class Link:
    kind: LinkKind
    id: str


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"o2oloop tracking links\0" + secret.encode()).digest()


def _signature(secret: str, body: str) -> str:
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:10]).decode().lower()[:10]


def token_for(secret: str, kind: LinkKind, link_id: str) -> str:
    prefix, _, suffix = link_id.partition("_")
    if prefix != _PREFIX[_LETTER[kind]][1] or len(suffix) != 26:
        raise ValueError(f"{link_id!r} is not the id of a {kind}")
    body = _LETTER[kind] + suffix
    return body + _signature(secret, body)


def parse_token(secret: str, token: str | None) -> Link | None:
    """The link a token names, or None for anything not signed by us."""
    if not token or len(token) != TOKEN_LENGTH or token[0] not in _PREFIX:
        return None
    body, signature = token[:27], token[27:]
    if not set(body[1:]) <= _ID_CHARS:
        return None
    if not hmac.compare_digest(signature, _signature(secret, body)):
        return None
    kind, prefix = _PREFIX[token[0]]
    return Link(kind, f"{prefix}_{body[1:]}")
