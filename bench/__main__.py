"""`make bench`: every benchmark in turn, each printing its own table. `make bench BENCH="gateway litellm"` runs
some of them (by name, with or without "bench_"); `make bench BENCH=profile` records a sampling profile of the
web process under load (bench/bench_profile.py) and `make bench BENCH=instructions` counts the instructions per
request under callgrind (bench/bench_instructions.py); the full run leaves both out."""

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
ON_REQUEST = [
    ("Sampling profile of the web process under load", ["bench.bench_profile"]),
    ("Instructions per request under callgrind", ["bench.bench_instructions"]),
]


def main() -> int:
    print(f"AI Model Router benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    failed = 0
    only = {name if name.startswith("bench_") else f"bench_{name}" for name in sys.argv[1:]}
    for title, module in BENCHMARKS + ON_REQUEST:
        name = module[0].split(".")[-1]
        if (only and name not in only) or (not only and (title, module) in ON_REQUEST):
            continue
        print(f"\n=== {title} ({module[0]})", flush=True)
        result = subprocess.run([sys.executable, "-m", *module], check=False)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
