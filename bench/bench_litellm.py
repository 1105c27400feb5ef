"""Our gateway next to LiteLLM proxy, same fake upstream, same core, same load, same run.

Run: `.venv/bin/python -m bench.bench_litellm [--quick]`. LiteLLM is installed into bench/.litellm-venv (not a
project dependency) on first use. It runs with one worker and no database (offline it cannot use PostgreSQL:
Prisma downloads engine binaries), so it does less bookkeeping per request than we do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.bench_gateway import MODEL, Target, latencies, wrk_run
from bench.common import (
    ROOT,
    cpu_seconds_tree,
    ensure_wrk,
    fake_upstream,
    free_port,
    gateway,
    hwm_mib,
    median,
    percentile,
    pin,
    table,
    wait_http,
)
from bench.common import prepare_database as prepare

LITELLM_VERSION = "1.108.7"
VENV = ROOT / "bench" / ".litellm-venv"
MASTER_KEY = "sk-bench-7f3c9a1e"


def ensure_litellm() -> Path:
    binary = VENV / "bin" / "litellm"
    if not binary.exists():
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"], check=True
        )
    return binary


@contextlib.contextmanager
def litellm_proxy(upstream_url: str, cpu: int = 1, prefix: Sequence[str] = ()) -> Iterator[tuple[str, int]]:
    binary = ensure_litellm()
    port = free_port()
    config = f"""
model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/{MODEL}
      api_base: {upstream_url}/v1
      api_key: fake-upstream-key
general_settings:
  master_key: {MASTER_KEY}
litellm_settings:
  drop_params: true
"""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(config)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    process = subprocess.Popen(
        [*pin(cpu), *prefix, str(binary), "--config", handle.name, "--port", str(port), "--num_workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=900 if prefix else 180)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(20)
        os.unlink(handle.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n1, seconds = (150, 4) if args.quick else (400, 10)
    ensure_wrk()
    key = prepare()
    rows, throughput, memory = [], [], []
    with fake_upstream(cpu=0) as upstream:
        direct = Target("direct", upstream.url + "/v1/chat/completions", {})
        servers = [
            ("AI Model Router", gateway(upstream.url, cpu=1), {"Authorization": f"Bearer {key}"}),
            ("LiteLLM proxy", litellm_proxy(upstream.url, cpu=1), {"Authorization": f"Bearer {MASTER_KEY}"}),
        ]
        results: dict[str, dict[str, float]] = {}
        for name, server, headers in servers:
            with server as (url, pid):
                target = Target(name, url + "/v1/chat/completions", headers)
                base = asyncio.run(latencies(direct, concurrency=1, total=n1, stream=False))
                ours = asyncio.run(latencies(target, concurrency=1, total=n1, stream=False))
                results[name] = {
                    "added_p50": median(ours) - median(base),
                    "added_p99": percentile(ours, 99) - percentile(base, 99),
                }
                for kind, stream in (("json", False), ("stream", True)):
                    cpu_before = cpu_seconds_tree(pid)
                    rps, done = wrk_run(target, seconds=seconds, connections=64, stream=stream)
                    results[name][f"rps_{kind}"] = rps
                    results[name][f"cpu_{kind}"] = (cpu_seconds_tree(pid) - cpu_before) * 1000 / max(done, 1)
                results[name]["rss"] = hwm_mib(pid)
    ours, theirs = results["AI Model Router"], results["LiteLLM proxy"]
    for label, key_name in (("added p50 ms (c=1)", "added_p50"), ("added p99 ms (c=1)", "added_p99")):
        rows.append([label, ours[key_name], theirs[key_name], theirs[key_name] / max(ours[key_name], 0.001)])
    for label, key_name in (("req/s json (c=64)", "rps_json"), ("req/s stream (c=64)", "rps_stream")):
        throughput.append(
            [label, ours[key_name], theirs[key_name], ours[key_name] / max(theirs[key_name], 0.001)]
        )
    for label, key_name in (("CPU ms/request json", "cpu_json"), ("CPU ms/request stream", "cpu_stream")):
        rows.append([label, ours[key_name], theirs[key_name], theirs[key_name] / max(ours[key_name], 0.001)])
    memory.append(["peak RSS MiB", ours["rss"], theirs["rss"], theirs["rss"] / max(ours["rss"], 0.001)])
    print(
        table(
            "Latency and CPU (lower is better; ratio = LiteLLM / ours)",
            ["figure", "ours", "LiteLLM", "ratio"],
            rows,
        )
    )
    print()
    print(
        table(
            "Throughput on one core (ratio = ours / LiteLLM)",
            ["figure", "ours", "LiteLLM", "ratio"],
            throughput,
        )
    )
    print()
    print(table("Memory (ratio = LiteLLM / ours)", ["figure", "ours", "LiteLLM", "ratio"], memory))


if __name__ == "__main__":
    main()
