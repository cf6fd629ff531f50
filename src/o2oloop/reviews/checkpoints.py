"""Signed checkpoints of the review log: C2SP signed notes (c2sp.org/signed-note) holding a
tlog checkpoint (c2sp.org/tlog-checkpoint), signed with Ed25519.

A checkpoint's text is the origin line, the tree size, the base64 root hash and one
extension line with the time it was signed (`time 2026-06-01T12:00:00Z`); the signature
covers all of it. Pure functions: the log signs, the offline verifier checks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = b"\x01"
DASH = "\u2014"
MAX_SIGNATURES = 16


class NoteError(ValueError):
    """A note or checkpoint that is malformed or not signed by the expected key."""


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError("a key name must be non-empty, without spaces or '+'")


@dataclass(frozen=True)
class Signer:
    name: str
    key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        _check_name(name)
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def vkey(self) -> str:
        """The verifier key people pin: `name+hex(key id)+base64(0x01 || public key)`."""
        public = self.public
        encoded = base64.b64encode(ED25519 + public).decode()
        return f"{self.name}+{_key_id(self.name, public).hex()}+{encoded}"

    def sign(self, text: str) -> str:
        """The signed note of `text` (which must end in a newline)."""
        _check_text(text)
        signature = _key_id(self.name, self.public) + self.key.sign(text.encode())
        return f"{text}\n{DASH} {self.name} {base64.b64encode(signature).decode()}\n"


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    key: Ed25519PublicKey

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        try:
            name, key_hex, encoded = vkey.strip().split("+", 2)
            key_id = bytes.fromhex(key_hex)
            material = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error) as error:
            raise NoteError(f"not a verifier key: {vkey!r}") from error
        _check_name(name)
        if len(key_id) != 4 or material[:1] != ED25519 or len(material) != 33:
            raise NoteError("only Ed25519 verifier keys are supported")
        if _key_id(name, material[1:]) != key_id:
            raise NoteError("the verifier key's id does not match its name and key")
        return cls(name, key_id, Ed25519PublicKey.from_public_bytes(material[1:]))


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note holds no control characters but newlines")


def open_note(note: str, verifier: Verifier) -> str:
    """The note's text, once a signature by the verifier's key checks out."""
    _check_text(note)
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("a note needs a blank line before its signatures")
    text, lines = note[: cut + 1], note[cut + 2 :].splitlines()
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError("a note needs between 1 and 16 signature lines")
    verified = False
    for line in lines:
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise NoteError("a signature line is not base64") from error
        if dash != DASH or not name or len(signature) < 5:
            raise NoteError("a malformed signature line")
        if name != verifier.name or signature[:4] != verifier.key_id:
            continue  # someone else's signature (a witness, a rotated key): ignored
        try:
            verifier.key.verify(signature[4:], text.encode())
        except InvalidSignature as error:
            raise NoteError(f"the signature by {name} does not verify") from error
        verified = True
    if not verified:
        raise NoteError(f"the note carries no signature by {verifier.name}")
    return text


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: datetime | None = None

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        if self.time is not None:
            lines.append("time " + self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise NoteError("a checkpoint is at least three non-empty lines")
    origin, size_text, root_text, *extensions = lines[:-1]
    if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
        raise NoteError("the checkpoint's tree size is not a plain decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as error:
        raise NoteError("the checkpoint's root hash is not base64") from error
    if len(root) != 32:
        raise NoteError("the checkpoint's root hash is not 32 bytes")
    time = None
    for line in extensions:
        if line.startswith("time "):
            try:
                time = datetime.strptime(line[5:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError as error:
                raise NoteError("the checkpoint's time line is malformed") from error
    return Checkpoint(origin, int(size_text), root, time)


def open_checkpoint(note: str, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """The checkpoint in a signed note, checked: signed by the key, of the expected origin."""
    checkpoint = parse_checkpoint(open_note(note, verifier))
    expected = origin or verifier.name
    if checkpoint.origin != expected:
        raise NoteError(f"the checkpoint is of log {checkpoint.origin!r}, not {expected!r}")
    return checkpoint
