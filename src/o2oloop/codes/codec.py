"""Redemption codes: unguessable, typable by a cashier, and verifiable before any database lookup.

Format (version 1). A code is 20 characters from a 31-character alphabet, shown grouped in
fours, e.g. ``7KQ4-M2XR-9TBD-H6WP-C3N8``:

* 19 data characters hold one 94-bit number ``kind (2 bits) | serial (64 bits) | tag (28 bits)``;
* the 20th character is a check character.

``kind`` is 0 for a single code and 1 for a batch code; 2 and 3 are left for a later version.

The alphabet is Crockford-style base32 without ``I L O U`` and also without ``S``, so it has 31
(a prime number of) characters; typed ``O``, ``I``/``L`` and ``S`` are read as ``0``, ``1`` and
``5``. The check character makes ``sum(i * v_i) ≡ 0 (mod 31)`` over positions ``i = 1..20``.
Because 31 is prime and every weight is nonzero and distinct mod 31, it catches every
single-character substitution and every transposition of two characters (adjacent or not) -
the cashier gets "mistyped" without the server doing any work.

* ``serial`` is 64 bits: for a *single* code they come straight from ``secrets``; for a *batch*
  code they are ``batch_no | index`` run through a keyed 64-bit pseudorandom permutation, so a
  brand campaign of a million codes needs no row per code, its codes are distinct by
  construction and they still look random.
* ``tag`` is a keyed pseudorandom function of kind and serial, truncated to 28 bits: a forged
  code (or one mistyped in more than one place) is rejected without touching storage.

Keys. The platform code key ``K`` (32 bytes, from the platform secret) never touches a code
directly; each purpose has its own subkey, so no key serves two kinds of message:

* tag key ``T = HMAC-SHA256(K, "o2oloop/code/tag/v2")``, an AES-256 key;
* permutation key ``P = HMAC-SHA256(K, "o2oloop/code/batch-permutation/v2")``, an AES-256 key;
* the storage digest (:func:`code_digest`) is HMAC-SHA256 under ``K`` with its own label.

The tag is ``AES-256_T(serial (8 bytes, big-endian) || kind (1 byte) || 7 zero bytes)``: its
first 32 bits, big-endian, shifted right by 4. AES with distinct inputs is a pseudorandom
function up to the birthday bound of its 128-bit block, far beyond any number of codes.

The batch permutation is a balanced Feistel network on 32-bit halves, the construction of the
NIST format-preserving encryption modes FF1 and FF3-1: ``left = index``, ``right = batch_no``,
then for ``r = 0..7``: ``left, right = right, left XOR F_r(right)``, and
``serial = left << 32 | right``. The round function is
``F_r(x) = first 32 bits (big-endian) of AES-256_P(r (1 byte) || 11 zero bytes || x (4 bytes,
big-endian))``. Being plain AES in ECB mode, one call to the cipher computes a round for a
whole chunk of 65,536 codes, so a million codes take milliseconds of cryptography.

Why eight rounds: a half is only 32 bits and a brand receives a whole batch, up to 2**24 known
(index, serial) pairs. The classic Luby-Rackoff bound for 3-4 rounds holds only while
``q**2 << 2**32``, i.e. for far fewer than 65,536 codes, so it says nothing about a million.
Patarin proved that with 5 or more rounds (6 against chosen plaintexts and ciphertexts) a
random Feistel scheme resists attackers up to about ``2**32`` queries, the size of a half;
the NIST modes use 8 (FF3-1) and 10 (FF1) rounds. Each round costs one AES pass over the
chunk, so eight cost nothing worth saving. (Forgery is stopped by the tag, not by the
permutation: a code of another batch still needs its 28-bit keyed tag.)

A batch code verifies in :func:`parse` by running the network backwards: ``index`` must fit
24 bits and ``batch_no`` 20 bits, 20 more bits of proof that the code was issued by us.

The QR code carries ``O2O1:`` plus the 20 characters (QR alphanumeric mode, so the symbol stays
small); :func:`parse` accepts both forms. Storage keeps only :func:`code_digest`, never a code.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

CodeKind = Literal["single", "batch"]

ALPHABET = "0123456789ABCDEFGHJKMNPQRTVWXYZ"
BASE = len(ALPHABET)  # 31, a prime: see the module docstring
DATA_LENGTH = 19
CODE_LENGTH = DATA_LENGTH + 1
GROUP = 4
GROUPED_LENGTH = CODE_LENGTH + CODE_LENGTH // GROUP - 1  # 24: 20 characters and 4 dashes
DASH_COLUMNS = tuple(range(GROUP, GROUPED_LENGTH, GROUP + 1))  # where the dashes go
QR_PREFIX = "O2O1:"

SERIAL_BYTES = 8
SERIAL_BITS = 64
TAG_BITS = 28
BATCH_NO_BITS = 20
INDEX_BITS = 24
MAX_BATCH_NO = (1 << BATCH_NO_BITS) - 1
MAX_INDEX = (1 << INDEX_BITS) - 1
MIN_KEY_BYTES = 16
DIGEST_BYTES = 16

_KIND_HEADER: dict[CodeKind, int] = {"single": 0, "batch": 1}
_HEADER_KIND: dict[int, CodeKind] = {v: k for k, v in _KIND_HEADER.items()}
_HEADER_SHIFT = SERIAL_BITS + TAG_BITS
_TAG_MASK = (1 << TAG_BITS) - 1
_SERIAL_MASK = (1 << SERIAL_BITS) - 1
_HALF_MASK = 0xFFFFFFFF
_ROUNDS = 8  # see the module docstring
_CHUNK = 1 << 16  # codes per vectorised step: 1 MiB of AES blocks
_MAX_INPUT = 64  # longer input is not a code; refuse before doing any work

_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_INV_CHECK_WEIGHT = pow(CODE_LENGTH, -1, BASE)
# Look-alikes and typing noise a cashier (or a Chinese IME, via NFKC) produces.
LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1", "S": "5"})  # public: the page's hint
_NOISE = str.maketrans(dict.fromkeys(" \t\r\n-_.\u2010\u2011\u2012\u2013\u2014\u2212", None))

assert BASE == 31 and CODE_LENGTH < BASE
assert (1 << (_HEADER_SHIFT + 2)) <= BASE**DATA_LENGTH  # 2 header bits fit in 19 characters


class InvalidCode(ValueError):
    """Any code the terminal must refuse. ``str()`` is uniform; ``reason`` is for the merchant log.

    One answer to the outside means nobody can probe which codes exist or why one failed.
    """

    def __init__(self, reason: str) -> None:
        super().__init__("invalid code")
        self.reason = reason


class CodeFormatError(InvalidCode):
    """Not a well-formed code: wrong characters or length, or the check character disagrees."""


class ForgedCode(InvalidCode):
    """Well-formed, but the keyed tag (or the batch structure) is wrong: not issued by us."""


@dataclass(frozen=True, slots=True)
class ParsedCode:
    """A verified code. ``code`` and ``serial`` are secrets, so they are kept out of ``repr``."""

    kind: CodeKind
    serial: bytes = field(repr=False)
    code: str = field(repr=False)
    batch_no: int | None = None
    index: int | None = None

    @property
    def payload(self) -> str:
        """The QR payload for this code."""
        return QR_PREFIX + self.code.replace("-", "")

    def digest(self, key: bytes) -> bytes:
        """The storage lookup key for this code (see :func:`code_digest`)."""
        return code_digest(self.serial, key, kind=self.kind)


# --- keys -------------------------------------------------------------------------------------


class _Aes:
    """AES-256 under one subkey, used block by block (ECB): a pseudorandom function on 16 bytes.

    ECB is exactly right here: every block is an independent PRF input, so one call encrypts
    the blocks of a whole chunk of codes. Each thread keeps its own cipher context, because a
    context must not be used by two threads at once (the web server redeems in a thread pool).
    """

    __slots__ = ("_algorithm", "_local")

    def __init__(self, key: bytes) -> None:
        self._algorithm = algorithms.AES(key)
        self._local = threading.local()

    def _encryptor(self) -> CipherContext:
        encryptor = getattr(self._local, "encryptor", None)
        if encryptor is None:
            encryptor = Cipher(self._algorithm, modes.ECB()).encryptor()
            self._local.encryptor = encryptor
        return encryptor

    def block(self, block: bytes) -> bytes:
        """One 16-byte block."""
        return self._encryptor().update(block)

    def blocks(self, blocks: np.ndarray) -> np.ndarray:
        """Many blocks (a C-contiguous array of ``16 * n`` bytes) -> ``n * 16`` uint8."""
        out = np.empty(blocks.nbytes + 15, dtype=np.uint8)  # update_into wants a spare block
        self._encryptor().update_into(blocks.view(np.uint8), out)  # it reads only byte buffers
        return out[: blocks.nbytes]


@dataclass(frozen=True, slots=True)
class _Keys:
    tag: _Aes
    rounds: _Aes


@lru_cache(maxsize=32)
def _keys(key: bytes) -> _Keys:
    """Separate subkeys per purpose, so one platform secret never keys two kinds of message."""
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the code key must be at least {MIN_KEY_BYTES} bytes")
    return _Keys(
        tag=_Aes(hmac.digest(key, b"o2oloop/code/tag/v2", "sha256")),
        rounds=_Aes(hmac.digest(key, b"o2oloop/code/batch-permutation/v2", "sha256")),
    )


# The constant parts of the AES input blocks (module docstring): the round number and padding.
_ROUND_PREFIX = tuple(bytes([r]) + bytes(11) for r in range(_ROUNDS))
_TAG_PAD = bytes(7)


def _tag(keys: _Keys, header: int, serial: int) -> int:
    block = serial.to_bytes(SERIAL_BYTES, "big") + bytes([header]) + _TAG_PAD
    return int.from_bytes(keys.tag.block(block)[:4], "big") >> (32 - TAG_BITS)


def _round(keys: _Keys, r: int, half: int) -> int:
    block = _ROUND_PREFIX[r] + half.to_bytes(4, "big")
    return int.from_bytes(keys.rounds.block(block)[:4], "big")


def _tags(keys: _Keys, header: int, serials: np.ndarray) -> np.ndarray:
    """:func:`_tag` of many serials (uint64) at once -> uint64 tags."""
    blocks = np.zeros((len(serials), 2), dtype=">u8")
    blocks[:, 0] = serials
    blocks[:, 1] = header << 56
    out = keys.tag.blocks(blocks).view(">u4")[::4]
    return (out >> np.uint32(32 - TAG_BITS)).astype(np.uint64)


def _rounds(keys: _Keys, r: int, halves: np.ndarray) -> np.ndarray:
    """:func:`_round` of many halves (uint32) at once -> uint32."""
    blocks = np.zeros((len(halves), 4), dtype=">u4")
    blocks[:, 0] = r << 24
    blocks[:, 3] = halves
    return keys.rounds.blocks(blocks).view(">u4")[::4].astype(np.uint32)


# --- the batch permutation ----------------------------------------------------------------------


def _permute(keys: _Keys, batch_no: int, index: int) -> int:
    """The Feistel network of the module docstring: ``index | batch_no`` -> a random serial.

    The top 8 bits of the left half and the top 12 bits of the right half are zero going in,
    so a serial that decrypts to anything else is 20 more bits of proof of forgery.
    """
    left, right = index, batch_no
    for r in range(_ROUNDS):
        left, right = right, left ^ _round(keys, r, right)
    return (left << 32) | right


def _unpermute(keys: _Keys, serial: int) -> tuple[int, int]:
    """The inverse of :func:`_permute`: serial -> ``(index, batch_no)``."""
    left, right = serial >> 32, serial & _HALF_MASK
    for r in reversed(range(_ROUNDS)):
        left, right = right ^ _round(keys, r, left), left
    return left, right


def _permute_many(keys: _Keys, batch_no: int, indices: np.ndarray) -> np.ndarray:
    """:func:`_permute` of one batch's indices (uint32) at once -> uint64 serials.

    Round 0 sees only the batch number, so it is computed once; every later round is one AES
    pass over the whole array.
    """
    left = np.full(len(indices), batch_no, dtype=np.uint32)
    right = indices.astype(np.uint32) ^ np.uint32(_round(keys, 0, batch_no))
    for r in range(1, _ROUNDS):
        left, right = right, left ^ _rounds(keys, r, right)
    return (left.astype(np.uint64) << np.uint64(32)) | right.astype(np.uint64)


# --- text -----------------------------------------------------------------------------------------


def _weighted_sum(values: list[int]) -> int:
    return sum(i * v for i, v in enumerate(values, start=1))


def check_char(data: str) -> str:
    """The check character for 19 data characters (exposed so tests can build near-miss codes)."""
    if len(data) != DATA_LENGTH or any(ch not in _VALUE for ch in data):
        raise ValueError(f"need {DATA_LENGTH} characters from the code alphabet")
    total = _weighted_sum([_VALUE[ch] for ch in data])
    return ALPHABET[(-total * _INV_CHECK_WEIGHT) % BASE]


def group(compact: str) -> str:
    """``XXXXXXXX...`` -> ``XXXX-XXXX-...``: how a code is printed and read aloud."""
    return "-".join(compact[i : i + GROUP] for i in range(0, len(compact), GROUP))


def _encode(header: int, serial: int, tag: int) -> str:
    value = (header << _HEADER_SHIFT) | (serial << TAG_BITS) | tag
    digits = [0] * DATA_LENGTH
    for i in range(DATA_LENGTH - 1, -1, -1):
        value, digits[i] = divmod(value, BASE)
    data = "".join(ALPHABET[d] for d in digits)
    check = ALPHABET[(-_weighted_sum(digits) * _INV_CHECK_WEIGHT) % BASE]
    return group(data + check)


def normalise(text: str) -> str:
    """What the cashier typed or the scanner read -> the 20 bare code characters, if it can be.

    Accepts either case, spaces and dashes, fullwidth characters, look-alikes (O, I, L, S) and
    the ``O2O1:`` QR prefix. Only the length and alphabet are checked here.
    """
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        raise CodeFormatError("not a code: too long or not text")
    text = unicodedata.normalize("NFKC", text).strip().upper()
    if text.startswith(QR_PREFIX):
        text = text[len(QR_PREFIX) :]
    text = text.translate(_NOISE).translate(LOOKALIKES)
    if len(text) != CODE_LENGTH:
        raise CodeFormatError(f"wrong length {len(text)}")
    if any(ch not in _VALUE for ch in text):
        raise CodeFormatError("character outside the code alphabet")
    return text


def _checked(text: str) -> str:
    compact = normalise(text)
    if _weighted_sum([_VALUE[ch] for ch in compact]) % BASE:
        raise CodeFormatError("check character mismatch (mistyped)")
    return compact


def qr_payload(code: str) -> str:
    """The text to put in the QR symbol for a code (typed or already a payload)."""
    return QR_PREFIX + _checked(code)


# --- issuing and reading ------------------------------------------------------------------------


def format_code(serial: bytes, key: bytes) -> str:
    """The typed form of a single code with this 64-bit serial."""
    if len(serial) != SERIAL_BYTES:
        raise ValueError(f"a serial is {SERIAL_BYTES} bytes")
    keys = _keys(key)
    value = int.from_bytes(serial, "big")
    header = _KIND_HEADER["single"]
    return _encode(header, value, _tag(keys, header, value))


def new_code(key: bytes) -> ParsedCode:
    """A fresh single code: 64 bits from the operating system's cryptographic source."""
    serial = secrets.token_bytes(SERIAL_BYTES)
    return ParsedCode(kind="single", serial=serial, code=format_code(serial, key))


def _check_batch(batch_no: int, index: int) -> None:
    if not 0 <= batch_no <= MAX_BATCH_NO:
        raise ValueError(f"batch_no must be in 0..{MAX_BATCH_NO}")
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"index must be in 0..{MAX_INDEX}")


def derive_batch_code(batch_key: bytes, batch_no: int, index: int) -> str:
    """Code number ``index`` of batch ``batch_no``; the same every time, so no row per code.

    ``batch_key`` is the platform code key, the same one :func:`parse` verifies with: the
    terminal cannot know the batch before reading the code.
    """
    _check_batch(batch_no, index)
    keys = _keys(batch_key)
    serial = _permute(keys, batch_no, index)
    header = _KIND_HEADER["batch"]
    return _encode(header, serial, _tag(keys, header, serial))


def derive_batch_codes(batch_key: bytes, batch_no: int, start: int, count: int) -> list[str]:
    """Codes ``start .. start+count-1`` of a batch: the same as :func:`derive_batch_code` in a
    loop, computed a chunk at a time by :func:`derive_batch_array`."""
    flat = derive_batch_array(batch_key, batch_no, start, count).tobytes().decode("ascii")
    width = GROUPED_LENGTH
    return [flat[i : i + width] for i in range(0, len(flat), width)]


def derive_batch_array(batch_key: bytes, batch_no: int, start: int, count: int) -> np.ndarray:
    """Codes ``start .. start+count-1`` of a batch as a ``(count, 24)`` uint8 array of ASCII.

    Row ``i`` holds the bytes of ``derive_batch_code(batch_key, batch_no, start + i)``, dashes
    included. Everything is vectorised: each Feistel round and the tag are one AES pass over a
    chunk of :data:`_CHUNK` codes, and the base-31 text is built with numpy.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    text = np.empty((count, GROUPED_LENGTH), dtype=np.uint8)
    if count == 0:
        return text
    _check_batch(batch_no, start)
    _check_batch(batch_no, start + count - 1)
    keys = _keys(batch_key)
    header = _KIND_HEADER["batch"]
    for offset in range(0, count, _CHUNK):
        end = min(offset + _CHUNK, count)
        indices = np.arange(start + offset, start + end, dtype=np.uint32)
        serials = _permute_many(keys, batch_no, indices)
        _encode_into(text[offset:end], header, serials, _tags(keys, header, serials))
    return text


def _encode_into(text: np.ndarray, header: int, serial: np.ndarray, tag: np.ndarray) -> None:
    """:func:`_encode` for many codes at once, in numpy, into ``text`` (``n`` x 24 uint8).

    The 94-bit number does not fit a machine word, so it is kept as two 47-bit limbs and
    divided by 31**3 six times (long division); each remainder is three characters.
    """
    tables = _np_tables()
    limb = np.uint64(47)
    low_mask = np.uint64((1 << 47) - 1)
    high = (np.uint64(header) << np.uint64(_HEADER_SHIFT - 47)) | (serial >> np.uint64(19))
    low = ((serial << np.uint64(TAG_BITS)) | tag) & low_mask
    divisor = np.uint64(BASE**3)
    total = np.zeros(len(serial), dtype=np.int64)
    # Chunk k (k = 5 .. 0, least significant first) is characters 2+3k .. 4+3k (1-based).
    for k in range(5, -1, -1):
        high, rest = np.divmod(high, divisor)
        low, chunk = np.divmod((rest << limb) | low, divisor)
        chunk = chunk.astype(np.intp)
        total += tables.weights[k][chunk]
        for j in range(3):
            position = 1 + 3 * k + j  # 0-based position in the bare 20 characters
            text[:, position + position // GROUP] = tables.triples[chunk, j]
    lead = low.astype(np.intp)  # what is left is below 31: the leading character
    total += lead
    text[:, 0] = tables.alphabet[lead]
    text[:, GROUPED_LENGTH - 1] = tables.checks[total]
    text[:, DASH_COLUMNS] = ord("-")


@dataclass(frozen=True, slots=True)
class _NpTables:
    alphabet: np.ndarray
    triples: np.ndarray
    weights: tuple[np.ndarray, ...]
    checks: np.ndarray


@lru_cache(maxsize=1)
def _np_tables() -> _NpTables:
    """Character codes of every three-character chunk (31**3 of them) and their check weights."""
    digits = np.array(
        [(a, b, c) for a in range(BASE) for b in range(BASE) for c in range(BASE)], dtype=np.int64
    )
    alphabet = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
    weights = tuple(
        (digits @ np.array([2 + 3 * k, 3 + 3 * k, 4 + 3 * k], dtype=np.int64)) % BASE
        for k in range(6)
    )
    check_values = (-np.arange(7 * BASE, dtype=np.int64) * _INV_CHECK_WEIGHT) % BASE
    return _NpTables(
        alphabet=alphabet,
        triples=alphabet[digits],
        weights=weights,
        checks=alphabet[check_values],
    )


def parse(text: str, key: bytes) -> ParsedCode:
    """Verify a typed code or QR payload without storage; :class:`InvalidCode` if it is not ours.

    Order: format and check character (mistyped), then version, then the keyed tag (forged),
    then, for batch codes, the structure hidden inside the permutation.
    """
    compact = _checked(text)
    value = 0
    for ch in compact[:DATA_LENGTH]:
        value = value * BASE + _VALUE[ch]
    header = value >> _HEADER_SHIFT
    kind = _HEADER_KIND.get(header)
    if kind is None:
        raise CodeFormatError(f"unknown code version {header}")
    serial = (value >> TAG_BITS) & _SERIAL_MASK
    keys = _keys(key)
    if not hmac.compare_digest(
        _tag(keys, header, serial).to_bytes(4, "big"), (value & _TAG_MASK).to_bytes(4, "big")
    ):
        raise ForgedCode("tag mismatch: forged, foreign key, or mistyped in several places")
    serial_bytes = serial.to_bytes(SERIAL_BYTES, "big")
    code = group(compact)
    if kind == "single":
        return ParsedCode(kind="single", serial=serial_bytes, code=code)
    index, batch_no = _unpermute(keys, serial)
    if index > MAX_INDEX or batch_no > MAX_BATCH_NO:
        raise ForgedCode("batch serial has the wrong structure")
    return ParsedCode(kind="batch", serial=serial_bytes, code=code, batch_no=batch_no, index=index)


def code_digest(serial: bytes, key: bytes, *, kind: CodeKind = "single") -> bytes:
    """The only thing storage keeps about a code: HMAC-SHA256 of kind and serial, 16 bytes.

    A database leak then reveals no redeemable code; ``kind`` keeps a single and a batch code
    with the same 64 bits apart.
    """
    if len(serial) != SERIAL_BYTES:
        raise ValueError(f"a serial is {SERIAL_BYTES} bytes")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the digest key must be at least {MIN_KEY_BYTES} bytes")
    msg = b"o2oloop/code/digest/v1" + bytes([_KIND_HEADER[kind]]) + serial
    return hmac.digest(key, msg, "sha256")[:DIGEST_BYTES]
