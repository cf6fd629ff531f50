"""A code batch as the brand's CSV file, rendered as bytes with numpy a chunk at a time.

The file is ``index,code,qr_payload`` then one row per code, ``"\\n"`` line endings, e.g.::

    index,code,qr_payload
    0,9Y7C-6D29-71J3-9XR3-2Q0W,O2O1:9Y7C6D2971J39XR32Q0W

No field ever needs quoting, so every row is the same bytes Python's ``csv`` module writes
with ``lineterminator="\\n"``. Apart from the index, a row has a fixed width, so a whole
chunk is one ``uint8`` matrix: the code columns are copied in from
:func:`codec.derive_batch_array`, and the index digits come from integer division, once per
run of indices with the same number of digits.

A million codes take well under a second (deriving included); memory stays at a few MiB
per chunk whatever the batch size, so the HTTP route and the CLI can stream any batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from o2oloop.codes import codec

HEADER = b"index,code,qr_payload\n"
CHUNK = 1 << 16

_GROUPED = codec.GROUPED_LENGTH
_PREFIX = np.frombuffer(codec.QR_PREFIX.encode("ascii"), dtype=np.uint8)
# After the index: "," code(24) "," "O2O1:" bare code(20) "\n".
_TAIL = 1 + _GROUPED + 1 + len(_PREFIX) + codec.CODE_LENGTH + 1
# Where each group of four characters sits in the grouped code (between the dashes).
_GROUPS = tuple(range(0, _GROUPED, codec.GROUP + 1))


def batch_csv(
    batch_key: bytes, batch_no: int, count: int, *, chunk: int = CHUNK
) -> Iterator[bytes]:
    """The CSV export of codes ``0 .. count-1`` of batch ``batch_no``: the header, then one
    ``bytes`` of up to ``chunk`` rows at a time.

    ``batch_key`` is the platform code key (``service.Keys.code``). Arguments are checked
    here, before the first chunk is asked for, so a route can refuse before it streams.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if chunk < 1:
        raise ValueError("chunk must be >= 1")
    if count:
        codec.derive_batch_array(batch_key, batch_no, count - 1, 1)  # range and key checks
    return _chunks(batch_key, batch_no, count, chunk)


def batch_csv_size(count: int) -> int:
    """The exact length in bytes of :func:`batch_csv` of ``count`` codes (a Content-Length)."""
    if count < 0:
        raise ValueError("count must be >= 0")
    size = len(HEADER) + count * _TAIL
    width, low = 1, 0
    while low < count:
        high = min(count, 10**width)
        size += (high - low) * width
        width, low = width + 1, high
    return size


def _chunks(batch_key: bytes, batch_no: int, count: int, chunk: int) -> Iterator[bytes]:
    yield HEADER
    for start in range(0, count, chunk):
        codes = codec.derive_batch_array(batch_key, batch_no, start, min(chunk, count - start))
        yield rows(start, codes)


def rows(first_index: int, codes: np.ndarray) -> bytes:
    """CSV rows for grouped codes (``n`` x 24 uint8, as from :func:`codec.derive_batch_array`)
    numbered from ``first_index``."""
    parts = []
    low, stop = first_index, first_index + len(codes)
    while low < stop:
        width = len(str(low))
        high = min(stop, 10**width)
        parts.append(_fixed_width_rows(low, codes[low - first_index : high - first_index], width))
        low = high
    return b"".join(parts)


def _fixed_width_rows(first_index: int, codes: np.ndarray, width: int) -> bytes:
    """Rows whose indices all have ``width`` digits: one matrix of ``width + 52`` columns."""
    n = len(codes)
    out = np.empty((n, width + _TAIL), dtype=np.uint8)
    values = np.arange(first_index, first_index + n, dtype=np.uint32)
    for column in range(width - 1, -1, -1):
        values, digit = np.divmod(values, np.uint32(10))
        out[:, column] = digit
    out[:, :width] += ord("0")
    at = width
    out[:, at] = ord(",")
    out[:, at + 1 : at + 1 + _GROUPED] = codes
    at += 1 + _GROUPED
    out[:, at] = ord(",")
    out[:, at + 1 : at + 1 + len(_PREFIX)] = _PREFIX
    at += 1 + len(_PREFIX)
    for g, source in enumerate(_GROUPS):
        out[:, at + codec.GROUP * g : at + codec.GROUP * (g + 1)] = codes[
            :, source : source + codec.GROUP
        ]
    out[:, -1] = ord("\n")
    return out.tobytes()
