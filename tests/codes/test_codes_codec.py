"""The redemption-code codec: typos caught by the check character, forgeries by the keyed tag."""

from __future__ import annotations

import hmac
import random
import threading
from collections.abc import Callable

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from o2oloop.codes import codec
from o2oloop.codes.codec import (
    ALPHABET,
    BASE,
    CODE_LENGTH,
    DATA_LENGTH,
    MAX_BATCH_NO,
    MAX_INDEX,
    CodeFormatError,
    ForgedCode,
    InvalidCode,
    ParsedCode,
    check_char,
    code_digest,
    derive_batch_array,
    derive_batch_code,
    derive_batch_codes,
    format_code,
    new_code,
    normalise,
    parse,
    qr_payload,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def bare(code: str) -> str:
    return code.replace("-", "")


def sample_codes(n: int = 50) -> list[str]:
    """Half single codes with seeded serials, half batch codes from scattered batches."""
    rng = random.Random(20240601)
    singles = [format_code(rng.randbytes(8), KEY) for _ in range(n // 2)]
    batches = [
        derive_batch_code(KEY, rng.randrange(MAX_BATCH_NO + 1), rng.randrange(MAX_INDEX + 1))
        for _ in range(n - n // 2)
    ]
    return singles + batches


SAMPLE = sample_codes()


# --- the alphabet and the check character --------------------------------------------------------


def test_alphabet_is_prime_sized_without_look_alikes() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == BASE == 31
    assert all(BASE % d for d in range(2, BASE))
    assert not set("ILOUS") & set(ALPHABET)
    assert CODE_LENGTH < BASE  # every position weight 1..20 is nonzero and distinct mod 31


def test_check_rule_catches_every_substitution_and_transposition_exhaustively() -> None:
    """The proof, by enumeration over every position and every pair of character values."""
    weights = range(1, CODE_LENGTH + 1)
    for w in weights:
        for a in range(BASE):
            for b in range(BASE):
                if a != b:
                    assert (w * (b - a)) % BASE != 0
    for i in weights:
        for j in weights:
            if i < j:
                for a in range(BASE):
                    for b in range(BASE):
                        if a != b:
                            before = i * a + j * b
                            after = i * b + j * a
                            assert (after - before) % BASE != 0


@pytest.mark.parametrize("code", SAMPLE)
def test_every_single_substitution_is_rejected_as_mistyped(code: str) -> None:
    parse(code, KEY)
    text = bare(code)
    for position in range(CODE_LENGTH):
        for ch in ALPHABET:
            if ch == text[position]:
                continue
            typo = text[:position] + ch + text[position + 1 :]
            with pytest.raises(CodeFormatError) as caught:
                parse(typo, KEY)
            assert "check character" in caught.value.reason


@pytest.mark.parametrize("code", SAMPLE)
def test_every_transposition_is_rejected_as_mistyped(code: str) -> None:
    text = bare(code)
    swapped = 0
    for i in range(CODE_LENGTH):
        for j in range(i + 1, CODE_LENGTH):
            if text[i] == text[j]:
                continue
            chars = list(text)
            chars[i], chars[j] = chars[j], chars[i]
            with pytest.raises(CodeFormatError) as caught:
                parse("".join(chars), KEY)
            assert "check character" in caught.value.reason
            swapped += j == i + 1
    assert swapped > 0  # at least some adjacent pairs differed


def test_check_char_matches_the_issued_code() -> None:
    for code in SAMPLE:
        text = bare(code)
        assert check_char(text[:DATA_LENGTH]) == text[-1]
    with pytest.raises(ValueError):
        check_char("ABC")
    with pytest.raises(ValueError):
        check_char("U" * DATA_LENGTH)


# --- the keyed tag --------------------------------------------------------------------------------


def rechecked(data: str) -> str:
    return data + check_char(data)


@pytest.mark.parametrize("code", SAMPLE[:6] + SAMPLE[-6:])
def test_changed_code_with_a_correct_check_character_is_rejected_by_the_tag(code: str) -> None:
    data = bare(code)[:DATA_LENGTH]
    for position in range(DATA_LENGTH):
        for ch in ALPHABET:
            if ch == data[position]:
                continue
            forged = rechecked(data[:position] + ch + data[position + 1 :])
            with pytest.raises(InvalidCode) as caught:
                parse(forged, KEY)
            if isinstance(caught.value, CodeFormatError):
                # Only the leading characters can push the number past the known versions.
                assert "version" in caught.value.reason
                assert position <= 1
            else:
                assert isinstance(caught.value, ForgedCode)


def test_random_well_formed_codes_are_forgeries() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        data = "".join(rng.choice(ALPHABET) for _ in range(DATA_LENGTH))
        with pytest.raises(InvalidCode) as caught:
            parse(rechecked(data), KEY)
        assert "check character" not in caught.value.reason


@pytest.mark.parametrize("code", [SAMPLE[0], SAMPLE[-1]])
def test_code_under_another_key_is_rejected(code: str) -> None:
    with pytest.raises(ForgedCode):
        parse(code, OTHER_KEY)


def test_errors_look_the_same_from_outside() -> None:
    reasons = set()
    messages = set()
    for text in ["nope", bare(SAMPLE[0])[:-1] + "0", SAMPLE[1]]:
        key = OTHER_KEY if text == SAMPLE[1] else KEY
        try:
            parse(text, key)
        except InvalidCode as exc:
            messages.add(str(exc))
            reasons.add(exc.reason)
    assert messages == {"invalid code"}
    assert len(reasons) >= 2


def _aes(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _reference_decode(code: str) -> tuple[int, int, int]:
    value = 0
    for ch in bare(code)[:DATA_LENGTH]:
        value = value * 31 + ALPHABET.index(ch)
    return value >> 92, (value >> 28) & (2**64 - 1), value & (2**28 - 1)


def test_reference_tag_is_truncated_aes_of_serial_and_kind() -> None:
    """An independent decoder, written from the format description, agrees with the codec."""
    tag_key = hmac.digest(KEY, b"o2oloop/code/tag/v2", "sha256")
    for code in SAMPLE:
        header, serial, tag = _reference_decode(code)
        block = serial.to_bytes(8, "big") + bytes([header]) + bytes(7)
        assert tag == int.from_bytes(_aes(tag_key, block)[:4], "big") >> 4
        parsed = parse(code, KEY)
        assert parsed.serial == serial.to_bytes(8, "big")
        assert parsed.kind == ("single" if header == 0 else "batch")


def test_reference_batch_permutation_is_the_documented_feistel_network() -> None:
    """Eight AES rounds on 32-bit halves, exactly as the module docstring describes them."""
    round_key = hmac.digest(KEY, b"o2oloop/code/batch-permutation/v2", "sha256")

    def f(r: int, half: int) -> int:
        block = bytes([r]) + bytes(11) + half.to_bytes(4, "big")
        return int.from_bytes(_aes(round_key, block)[:4], "big")

    rng = random.Random(11)
    for _ in range(200):
        batch_no, index = rng.randrange(MAX_BATCH_NO + 1), rng.randrange(MAX_INDEX + 1)
        left, right = index, batch_no
        for r in range(8):
            left, right = right, left ^ f(r, right)
        header, serial, _ = _reference_decode(derive_batch_code(KEY, batch_no, index))
        assert (header, serial) == (1, left << 32 | right)


def test_known_answers_pin_the_format() -> None:
    """Changing these breaks every code already printed: bump the version instead."""
    assert format_code(bytes(range(8)), KEY) == "0003-7JPF-N4TG-H1TF-5ZQE"
    assert derive_batch_code(KEY, 42, 7) == "A6ZV-12XW-9QAA-JDQ5-5AGK"
    assert code_digest(bytes(range(8)), KEY).hex() == "955fb93f4c947c5bc23a60460b9a98b2"


def test_subkeys_are_separate_per_purpose() -> None:
    """The tag, the permutation and the storage digest never share a key."""
    tag_key = hmac.digest(KEY, b"o2oloop/code/tag/v2", "sha256")
    round_key = hmac.digest(KEY, b"o2oloop/code/batch-permutation/v2", "sha256")
    assert len({tag_key, round_key, KEY}) == 3
    keys = codec._keys(KEY)
    block = bytes(range(16))
    assert keys.tag.block(block) == _aes(tag_key, block)
    assert keys.rounds.block(block) == _aes(round_key, block)


# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mangle",
    [
        str.lower,
        bare,
        lambda c: " ".join(bare(c)),
        lambda c: f"  {c.lower()}\n",
        lambda c: c.replace("-", "\u2013"),
        lambda c: c.replace("0", "O").replace("1", "I").replace("5", "S"),
        lambda c: c.replace("1", "l").replace("0", "o").replace("5", "s"),
        lambda c: "".join(chr(ord(ch) + 0xFEE0) for ch in bare(c)),  # fullwidth, from an IME
        lambda c: "O2O1:" + bare(c),
        lambda c: "o2o1:" + c.lower(),
    ],
)
def test_normalisation_accepts_what_a_cashier_or_scanner_produces(
    mangle: Callable[[str], str],
) -> None:
    for code in SAMPLE[:5] + SAMPLE[-5:]:
        assert parse(mangle(code), KEY) == parse(code, KEY)


@pytest.mark.parametrize(
    "text",
    ["", "0" * 19, "0" * 21, "U" * 20, "!" * 20, "A" * 65, "O2O2:" + "0" * 20, "0" * 20 + "?"],
)
def test_malformed_text_is_a_format_error(text: str) -> None:
    with pytest.raises(CodeFormatError):
        parse(text, KEY)


def test_non_text_is_a_format_error() -> None:
    with pytest.raises(CodeFormatError):
        parse(b"0003-7JPF-N4TG-GZ9G-KVAP", KEY)  # type: ignore[arg-type]


def test_normalise_returns_bare_canonical_characters() -> None:
    assert normalise("o2o1:0oo3-7jpf-n4tg-gz9g-kvap") == "00037JPFN4TGGZ9GKVAP"


def test_qr_payload_round_trips() -> None:
    for code in SAMPLE:
        payload = qr_payload(code)
        assert payload == "O2O1:" + bare(code)
        assert parse(payload, KEY) == parse(code, KEY)
        assert parse(code, KEY).payload == payload
    text = bare(SAMPLE[0])
    typo = text[:-1] + ("X" if text[-1] != "X" else "Y")
    with pytest.raises(CodeFormatError):
        qr_payload(typo)


# --- single codes -------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(serial=st.binary(min_size=8, max_size=8))
def test_single_codes_round_trip(serial: bytes) -> None:
    code = format_code(serial, KEY)
    assert len(code) == CODE_LENGTH + 4
    assert [len(g) for g in code.split("-")] == [4] * 5
    parsed = parse(code, KEY)
    assert parsed == ParsedCode(kind="single", serial=serial, code=code)
    assert parse(parsed.payload, KEY) == parsed


def test_new_codes_are_fresh_and_valid() -> None:
    codes = [new_code(KEY) for _ in range(1000)]
    assert len({c.serial for c in codes}) == 1000
    for c in codes[:50]:
        assert parse(c.code, KEY) == c


def test_repr_never_shows_the_code() -> None:
    parsed = new_code(KEY)
    assert bare(parsed.code) not in repr(parsed)
    assert parsed.code not in repr(parsed)
    assert parsed.serial.hex() not in repr(parsed)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        format_code(bytes(8), b"short")
    with pytest.raises(ValueError):
        code_digest(bytes(8), b"short")
    with pytest.raises(ValueError):
        format_code(bytes(7), KEY)


# --- batch codes ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    batch_no=st.integers(min_value=0, max_value=MAX_BATCH_NO),
    index=st.integers(min_value=0, max_value=MAX_INDEX),
)
def test_batch_codes_round_trip(batch_no: int, index: int) -> None:
    code = derive_batch_code(KEY, batch_no, index)
    parsed = parse(code, KEY)
    assert (parsed.kind, parsed.batch_no, parsed.index, parsed.code) == (
        "batch",
        batch_no,
        index,
        code,
    )
    assert derive_batch_codes(KEY, batch_no, index, 1) == [code]


def test_hundred_thousand_batch_codes_are_distinct_and_parse_back() -> None:
    codes = derive_batch_codes(KEY, 977, 0, 100_000)
    assert len(codes) == len(set(codes)) == 100_000
    serials = set()
    for index, code in enumerate(codes):
        parsed = parse(code, KEY)
        assert (parsed.batch_no, parsed.index) == (977, index)
        serials.add(parsed.serial)
    assert len(serials) == 100_000


def test_bulk_derivation_equals_one_by_one() -> None:
    for batch_no, start, count in [
        (0, 0, 500),
        (MAX_BATCH_NO, MAX_INDEX - 299, 300),
        (5, (1 << 16) - 10, 25),  # crosses a chunk boundary
    ]:
        expected = [derive_batch_code(KEY, batch_no, i) for i in range(start, start + count)]
        assert derive_batch_codes(KEY, batch_no, start, count) == expected
    assert derive_batch_codes(KEY, 1, 0, 0) == []


@pytest.mark.parametrize(
    ("batch_no", "start", "count"),
    [
        (1, 0, 3 * (1 << 16) + 17),  # several whole chunks and a ragged end
        (77, (1 << 16) - 3, 7),  # across the first chunk boundary
        (77, 2 * (1 << 16) - 1, 2),
        (MAX_BATCH_NO, 1_000_000 - 1000, 1000),  # the end of a maximal (1,000,000) batch
        (MAX_BATCH_NO, MAX_INDEX - 999, 1000),  # the last index the format can hold
    ],
)
def test_vectorised_derivation_equals_the_scalar_path(
    batch_no: int, start: int, count: int
) -> None:
    """Export uses the numpy path, redemption the scalar one: they must be the same codes."""
    array = derive_batch_array(KEY, batch_no, start, count)
    assert array.shape == (count, 24) and array.dtype == np.uint8
    codes = derive_batch_codes(KEY, batch_no, start, count)
    assert codes == [bytes(row).decode("ascii") for row in array]
    step = max(1, count // 3000)
    picks = {*range(0, count, step), count - 1, *(i for i in (65535, 65536) if i < count)}
    for i in sorted(picks):
        assert codes[i] == derive_batch_code(KEY, batch_no, start + i)
        parsed = parse(codes[i], KEY)
        assert (parsed.batch_no, parsed.index) == (batch_no, start + i)


def test_vectorised_rounds_and_tags_equal_the_scalar_ones() -> None:
    keys = codec._keys(KEY)
    rng = np.random.default_rng(5)
    halves = rng.integers(0, 2**32, size=5000, dtype=np.uint64).astype(np.uint32)
    serials = rng.integers(0, 2**64 - 1, size=5000, dtype=np.uint64, endpoint=True)
    for r in range(codec._ROUNDS):
        vector = codec._rounds(keys, r, halves)
        assert vector.tolist() == [codec._round(keys, r, int(h)) for h in halves]
    for header in (0, 1):
        vector = codec._tags(keys, header, serials)
        assert vector.tolist() == [codec._tag(keys, header, int(s)) for s in serials]
    indices = np.arange(MAX_INDEX - 4999, MAX_INDEX + 1, dtype=np.uint32)
    permuted = codec._permute_many(keys, MAX_BATCH_NO, indices)
    assert permuted.tolist() == [codec._permute(keys, MAX_BATCH_NO, int(i)) for i in indices]


@settings(max_examples=500, deadline=None)
@given(
    a=st.tuples(
        st.integers(min_value=0, max_value=MAX_BATCH_NO),
        st.integers(min_value=0, max_value=MAX_INDEX),
    ),
    b=st.tuples(
        st.integers(min_value=0, max_value=MAX_BATCH_NO),
        st.integers(min_value=0, max_value=MAX_INDEX),
    ),
)
def test_the_permutation_inverts_and_distinct_positions_give_distinct_codes(
    a: tuple[int, int], b: tuple[int, int]
) -> None:
    keys = codec._keys(KEY)
    for batch_no, index in (a, b):
        assert codec._unpermute(keys, codec._permute(keys, batch_no, index)) == (index, batch_no)
    if a != b:
        assert codec._permute(keys, *a) != codec._permute(keys, *b)
        assert derive_batch_code(KEY, *a) != derive_batch_code(KEY, *b)


def test_codes_verify_from_many_threads_at_once() -> None:
    """Cipher contexts are per thread: concurrent redemptions and exports never share one."""
    codes = derive_batch_codes(KEY, 31, 0, 2000)
    failures: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for _ in range(3):
                for i in range(offset, 2000, 7):
                    parsed = parse(codes[i], KEY)
                    assert (parsed.batch_no, parsed.index) == (31, i)
                assert derive_batch_codes(KEY, 31, offset, 500) == codes[offset : offset + 500]
        except BaseException as error:  # reported to the main thread below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


def test_batch_serials_look_random() -> None:
    """Consecutive indices must not give neighbouring codes, or one code would reveal others."""
    serials = [parse(c, KEY).serial for c in derive_batch_codes(KEY, 3, 0, 4096)]
    ones = sum(bin(int.from_bytes(s, "big")).count("1") for s in serials)
    assert abs(ones / (64 * len(serials)) - 0.5) < 0.01
    first_chars = {s[0] for s in serials}
    assert len(first_chars) > 200


def test_batches_do_not_share_codes() -> None:
    a = set(derive_batch_codes(KEY, 10, 0, 5000))
    b = set(derive_batch_codes(KEY, 11, 0, 5000))
    assert not a & b


@pytest.mark.parametrize(
    ("batch_no", "start", "count"),
    [(-1, 0, 1), (MAX_BATCH_NO + 1, 0, 1), (0, -1, 1), (0, MAX_INDEX, 2), (0, 0, -1)],
)
def test_batch_ranges_are_enforced(batch_no: int, start: int, count: int) -> None:
    with pytest.raises(ValueError):
        derive_batch_codes(KEY, batch_no, start, count)
    if count == 1:
        with pytest.raises(ValueError):
            derive_batch_code(KEY, batch_no, start)


def test_batch_code_under_another_key_is_rejected() -> None:
    with pytest.raises(ForgedCode):
        parse(derive_batch_code(KEY, 1, 1), OTHER_KEY)


# --- digests --------------------------------------------------------------------------------------


def test_digest_is_keyed_and_kind_separated() -> None:
    serial = bytes(range(8))
    digest = code_digest(serial, KEY)
    assert len(digest) == 16
    assert digest == code_digest(serial, KEY)
    assert digest != code_digest(serial, OTHER_KEY)
    assert digest != code_digest(serial, KEY, kind="batch")
    assert serial not in digest
    parsed = parse(derive_batch_code(KEY, 9, 9), KEY)
    assert parsed.digest(KEY) == code_digest(parsed.serial, KEY, kind="batch")
