"""How fast bulk issuance derives a brand campaign's codes, and what memory it takes.

Usage: ``python benchmarks/codes_derive.py [--count 1000000] [--no-tracemalloc]``; prints JSON.

Three figures for ``count`` codes of one batch, no database:

* ``derive_array``: :func:`codec.derive_batch_array`, the codes as one uint8 matrix (the AES
  Feistel rounds, the AES tag and the base-31 text, vectorised a chunk at a time);
* ``derive_strings``: :func:`codec.derive_batch_codes`, the same as a list of ``str``;
* ``csv_export``: :func:`export.batch_csv`, the brand's CSV rendered as bytes (and dropped),
  a chunk at a time, which is what ``o2oloop codes issue`` and the HTTP export do.

Plus the scalar path a terminal uses for one typed code: ``parse`` per second.
Timing and peak RSS come from plain runs; the Python-heap peak of the CSV export comes from a
second run under tracemalloc, because tracing slows allocation down and would spoil the timing.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import secrets
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from o2oloop.codes import export
from o2oloop.codes.codec import derive_batch_array, derive_batch_codes, parse


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return value, {"seconds_wall": round(wall, 3), "seconds_cpu": round(cpu, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch-no", type=int, default=4242)
    parser.add_argument("--no-tracemalloc", action="store_true")
    args = parser.parse_args()
    key = secrets.token_bytes(32)
    count, batch_no = args.count, args.batch_no

    b"".join(export.batch_csv(key, batch_no, 1000))  # warm the key schedule and tables

    def csv_bytes() -> int:
        return sum(len(part) for part in export.batch_csv(key, batch_no, count))

    size, csv_time = timed(csv_bytes)
    assert size == export.batch_csv_size(count)
    array, array_time = timed(lambda: derive_batch_array(key, batch_no, 0, count))
    del array
    codes, strings_time = timed(lambda: derive_batch_codes(key, batch_no, 0, count))
    peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    distinct = len(set(codes))
    sample = codes[:: max(1, count // 20_000)]
    t0 = time.perf_counter()
    for text in sample:
        parse(text, key)
    parse_rate = len(sample) / (time.perf_counter() - t0)
    last = parse(codes[-1], key)
    assert (last.batch_no, last.index) == (batch_no, count - 1)
    del codes

    def rate(timing: dict[str, float]) -> dict[str, float]:
        return {**timing, "codes_per_second_wall": round(count / timing["seconds_wall"])}

    result: dict[str, object] = {
        "benchmark": "derive_batch_codes",
        "count": count,
        "distinct": distinct,
        "csv_export": {**rate(csv_time), "csv_bytes": size},
        "derive_array": rate(array_time),
        "derive_strings": rate(strings_time),
        "parse_codes_per_second": round(parse_rate),
        "peak_rss_mib": round(peak_rss_kib / 1024, 1),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    if not args.no_tracemalloc:
        tracemalloc.start()
        csv_bytes()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["csv_export_tracemalloc_peak_mib"] = round(peak / 2**20, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
