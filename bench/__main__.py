"""`make bench`: every benchmark in turn, each printing its own table."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

BENCHMARKS = [
    ("Gateway: added latency and throughput", ["bench.bench_gateway"]),
    ("Budgets and cache", ["bench.bench_features"]),
    ("Side by side with LiteLLM proxy", ["bench.bench_litellm"]),
    ("Concurrent streams", ["bench.bench_streams"]),
    ("Batch fan-out", ["bench.bench_batch"]),
    ("Analytics at scale", ["bench.bench_analytics"]),
    ("Doors side by side", ["bench.bench_doors"]),
]


def main() -> int:
    print(f"AI Model Router benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    failed = 0
    only = set(sys.argv[1:])
    for title, module in BENCHMARKS:
        if only and module[0].split(".")[-1] not in only:
            continue
        print(f"\n=== {title} ({module[0]})", flush=True)
        result = subprocess.run([sys.executable, "-m", *module], check=False)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
