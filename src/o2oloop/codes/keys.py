"""The code key: derived from the platform secret, so one setting rotates every code."""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass

from o2oloop.codes import codec


@dataclass(frozen=True)
class Keys:
    """The code key, derived from the platform secret so one setting rotates everything."""

    code: bytes

    @classmethod
    @functools.lru_cache(maxsize=8)  # every request at the counter asks; the secret rarely changes
    def from_secret(cls, secret: str) -> Keys:
        return cls(code=hmac.digest(secret.encode(), b"o2oloop/code-key/v1", "sha256"))

    def serial_for(self, code_id: str) -> bytes:
        # A single code's 64-bit serial is a keyed function of its random id: the database
        # holds only the id and a digest, yet the consumer can always see the code again.
        return hmac.digest(self.code, b"o2oloop/serial/" + code_id.encode(), "sha256")[:8]

    def code_text(self, code_id: str) -> str:
        return codec.format_code(self.serial_for(code_id), self.code)

    def digest(self, serial: bytes, kind: codec.CodeKind = "single") -> bytes:
        return codec.code_digest(serial, self.code, kind=kind)
