"""The batch CSV export: numpy-rendered bytes, identical to what Python's csv module writes."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from o2oloop.codes import codec, export
from o2oloop.codes.codec import MAX_BATCH_NO, MAX_INDEX, derive_batch_array, derive_batch_code

KEY = bytes(range(32))


def reference_csv(batch_no: int, start: int, count: int) -> bytes:
    """The export written the slow, obvious way: csv.writer over derive_batch_code."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if start == 0:
        writer.writerow(("index", "code", "qr_payload"))
    for index in range(start, start + count):
        code = derive_batch_code(KEY, batch_no, index)
        writer.writerow((index, code, codec.QR_PREFIX + code.replace("-", "")))
    return buffer.getvalue().encode("ascii")


def exported(batch_no: int, count: int, chunk: int = export.CHUNK) -> bytes:
    return b"".join(export.batch_csv(KEY, batch_no, count, chunk=chunk))


@pytest.mark.parametrize(
    ("count", "chunk"),
    [(0, 10), (1, 10), (10, 3), (11, 10), (101, 7), (1000, 999), (2345, 64)],
)
def test_bytes_equal_the_csv_module_across_digit_widths_and_chunks(count: int, chunk: int) -> None:
    assert exported(9, count, chunk) == reference_csv(9, 0, count)


@settings(max_examples=60, deadline=None)
@given(
    batch_no=st.integers(min_value=0, max_value=MAX_BATCH_NO),
    count=st.integers(min_value=0, max_value=300),
    chunk=st.integers(min_value=1, max_value=400),
)
def test_any_batch_and_chunking_gives_the_reference_bytes(
    batch_no: int, count: int, chunk: int
) -> None:
    assert exported(batch_no, count, chunk) == reference_csv(batch_no, 0, count)


def test_the_file_parses_to_every_code_and_every_code_to_its_position() -> None:
    count = 70_000  # more than one default chunk
    data = exported(4321, count)
    rows = list(csv.reader(io.StringIO(data.decode("ascii"), newline="")))
    assert rows[0] == ["index", "code", "qr_payload"]
    assert len(rows) == count + 1
    codes = codec.derive_batch_codes(KEY, 4321, 0, count)
    assert [row[1] for row in rows[1:]] == codes
    assert len(set(codes)) == count
    for index, (number, code, payload) in enumerate(rows[1:]):
        assert number == str(index)
        assert payload == codec.QR_PREFIX + code.replace("-", "")
        assert payload == codec.qr_payload(code)
        parsed = codec.parse(code, KEY)
        assert (parsed.kind, parsed.batch_no, parsed.index) == ("batch", 4321, index)
        if index % 997 == 0:
            assert codec.parse(payload, KEY) == parsed
            assert code == derive_batch_code(KEY, 4321, index)


@pytest.mark.parametrize(
    ("start", "count"),
    [
        (1_000_000 - 300, 300),  # the end of a maximal batch
        (9_999_990, 20),  # seven digits to eight
        (MAX_INDEX - 99, 100),  # the last index the format holds
    ],
)
def test_rows_far_into_a_batch(start: int, count: int) -> None:
    rows = export.rows(start, derive_batch_array(KEY, MAX_BATCH_NO, start, count))
    assert rows == reference_csv(MAX_BATCH_NO, start, count)


def test_header_first_then_chunks_of_at_most_chunk_rows() -> None:
    parts = list(export.batch_csv(KEY, 3, 1000, chunk=300))
    assert parts[0] == export.HEADER == b"index,code,qr_payload\n"
    assert [part.count(b"\n") for part in parts[1:]] == [300, 300, 300, 100]
    assert all(part.endswith(b"\n") for part in parts)


@pytest.mark.parametrize("count", [0, 1, 9, 10, 11, 99, 100, 12_345])
def test_size_is_the_length_of_the_export(count: int) -> None:
    assert export.batch_csv_size(count) == len(exported(8, count))


def test_size_of_large_batches_counts_every_index_digit() -> None:
    """Every row is its index digits plus 52 bytes."""
    digits = sum(len(str(i)) for i in range(1_000_000))
    assert export.batch_csv_size(1_000_000) == len(export.HEADER) + digits + 52 * 1_000_000
    widths = {1: 10, 2: 90, 3: 900, 4: 9_000, 5: 90_000, 6: 900_000, 7: 9_000_000}
    widths[8] = MAX_INDEX + 1 - sum(widths.values())
    digits = sum(width * n for width, n in widths.items())
    assert export.batch_csv_size(MAX_INDEX + 1) == len(export.HEADER) + digits + 52 * (
        MAX_INDEX + 1
    )


@pytest.mark.parametrize(
    ("batch_no", "count", "chunk"),
    [(-1, 1, 10), (MAX_BATCH_NO + 1, 1, 10), (1, -1, 10), (1, MAX_INDEX + 2, 10), (1, 5, 0)],
)
def test_bad_arguments_fail_before_the_first_byte(batch_no: int, count: int, chunk: int) -> None:
    with pytest.raises(ValueError):
        export.batch_csv(KEY, batch_no, count, chunk=chunk)


def test_short_key_fails_before_the_first_byte() -> None:
    with pytest.raises(ValueError):
        export.batch_csv(b"short", 1, 10)
