"""How fast bulk issuance derives a brand campaign's codes, and what memory it takes.

Usage: ``python benchmarks/codes_derive.py [--count 1000000] [--no-tracemalloc]``; prints JSON.
Timing and peak RSS come from a plain run; the Python-heap peak comes from a second run under
tracemalloc, because tracing slows allocation down and would spoil the timing.
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

from o2oloop.codes.codec import derive_batch_codes, parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch-no", type=int, default=4242)
    parser.add_argument("--no-tracemalloc", action="store_true")
    args = parser.parse_args()
    key = secrets.token_bytes(32)

    derive_batch_codes(key, args.batch_no, 0, 1000)  # warm the key schedule and tables
    wall, cpu = time.perf_counter(), time.process_time()
    codes = derive_batch_codes(key, args.batch_no, 0, args.count)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    distinct = len(set(codes))
    last = parse(codes[-1], key)
    assert (last.batch_no, last.index) == (args.batch_no, args.count - 1)
    del codes

    result: dict[str, object] = {
        "benchmark": "derive_batch_codes",
        "count": args.count,
        "distinct": distinct,
        "seconds_wall": round(wall, 3),
        "seconds_cpu": round(cpu, 3),
        "codes_per_second_wall": round(args.count / wall),
        "codes_per_second_cpu": round(args.count / cpu),
        "peak_rss_mib": round(peak_rss_kib / 1024, 1),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    if not args.no_tracemalloc:
        tracemalloc.start()
        codes = derive_batch_codes(key, args.batch_no, 0, args.count)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["tracemalloc_peak_mib"] = round(peak / 2**20, 1)
        result["bytes_per_code"] = round(peak / args.count, 1)
        del codes
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
