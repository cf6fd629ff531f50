"""Ids: unguessable and time-sortable for real data, reproducible inside the demo city."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from o2oloop import clock
from o2oloop.db import new_id, new_ids, seeded_ids


def test_real_ids_never_repeat_and_sort_by_creation_time() -> None:
    ids = [new_id("cod") for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == len("cod_") + 26 for i in ids)
    # Ids of later milliseconds sort after earlier ones (within one ms the order is random).
    assert new_id("cod")[:14] >= ids[0][:14]


def test_one_seed_draws_the_same_ids_on_the_products_clock() -> None:
    frozen = clock.FrozenClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    runs = []
    for _ in range(2):
        frozen.set(datetime(2026, 3, 1, 9, tzinfo=UTC))
        with clock.using(frozen), seeded_ids(11):
            first = [new_id("vis") for _ in range(50)]
            frozen.set(frozen.now() + timedelta(minutes=5))
            later = new_id("vis")
        runs.append((first, later))
    assert runs[0] == runs[1]
    assert len(set(runs[0][0])) == 50
    assert runs[0][1] > max(runs[0][0])
    with clock.using(frozen), seeded_ids(12):
        assert new_id("vis") not in runs[0][0]


def test_outside_the_seeded_context_ids_are_random_again() -> None:
    frozen = clock.FrozenClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    with clock.using(frozen):
        with seeded_ids(11):
            inside = new_id("vis")
        with seeded_ids(11):
            assert new_id("vis") == inside
        assert new_id("vis") != inside


def _millis(identifier: str) -> int:
    value = 0
    for ch in identifier.partition("_")[2]:
        value = value * 32 + "0123456789abcdefghjkmnpqrstvwxyz".index(ch)
    return value >> 80


def test_ids_made_together_have_new_ids_shape_and_time() -> None:
    before = new_id("msg")
    many = new_ids("msg", 5_000)
    after = new_id("msg")
    assert len(set(many)) == len(many)
    assert all(len(i) == len(before) and i.startswith("msg_") for i in many)
    assert _millis(before) <= _millis(many[0]) == _millis(many[-1]) <= _millis(after)
    assert {c for i in many for c in i[4:]} <= set("0123456789abcdefghjkmnpqrstvwxyz")


def test_ids_made_together_inside_a_seeded_city_come_from_the_seed() -> None:
    frozen = clock.FrozenClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    with clock.using(frozen), seeded_ids(5):
        together = new_ids("cod", 20)
    with clock.using(frozen), seeded_ids(5):
        one_by_one = [new_id("cod") for _ in range(20)]
    assert together == one_by_one
