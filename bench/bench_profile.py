"""A sampling profile of the gateway's web process under load: where its CPU goes, by package and by function.

Run: `make bench BENCH=profile` (or `.venv/bin/python -m bench.bench_profile [--seconds 20] [--stream]`). The
gateway runs as deployed (bench.common.PRODUCTION) pinned to CPU 1, wrk and the fake upstream on CPU 0; every
request has a new prompt (the cache misses; budgets, rate limits, logging all on). py-spy (a dev dependency)
samples the process while wrk keeps 64 connections busy; the collapsed stacks are kept in bench/.profile/ for a
flame graph (e.g. `py-spy` speedscope or flamegraph.pl) and summarised here:

- by package: the share of samples whose innermost frame is in that package (self time), stdlib by module,
  our own code by app;
- by function: the top self-time functions, and the top inclusive ones among our own code.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_gateway import wrk_script
from bench.common import ROOT, cpu_seconds, ensure_wrk, fake_upstream, gateway, pin, prepare_database, table

OUT = ROOT / "bench" / ".profile"
OURS = ("accounts", "analytics", "budgets", "config", "providers", "routing")
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
STDLIB = re.compile(r"/lib/python3\.\d+/(?P<module>[^/]+?)(?:\.py)?(?:/|$)")
SITE = re.compile(r"/site-packages/(?P<package>[^/]+?)(?:\.py)?(?:/|$)")


def py_spy() -> str:
    binary = Path(sys.executable).with_name("py-spy")
    if not binary.exists():
        raise SystemExit("py-spy is needed: it is in requirements/dev.txt (make venv)")
    return str(binary)


def package_of(path: str) -> str:
    """The package of a frame's file as py-spy names it ("psycopg/cursor.py", "routing/engine.py",
    "<frozen runpy>"): ours by app, the standard library by module, anything else by its top-level package."""
    head = path.split("/", 1)[0].removesuffix(".py")
    if head in OURS:
        return f"ours:{head}"
    if path.startswith("<frozen") or head in sys.stdlib_module_names:
        return f"stdlib:{head.removeprefix('<frozen ').rstrip('>')}"
    return head or "native"


def parse(
    lines: list[str],
) -> tuple[int, collections.Counter[str], collections.Counter[str], collections.Counter[str]]:
    """Collapsed stacks ("frame;frame;... count") to: total samples, self samples by package and by function,
    and inclusive samples of our own functions (each counted once per stack)."""
    total = 0
    by_package: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    ours_inclusive: collections.Counter[str] = collections.Counter()
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [FRAME.match(frame) for frame in stack.split(";")]
        parsed = [
            (m.group("function"), m.group("file") or "") if m else (f, "")
            for m, f in zip(frames, stack.split(";"), strict=True)
        ]
        total += count
        function, path = parsed[-1]
        package = package_of(path)
        by_package[package] += count
        by_function[f"{function} ({package})"] += count
        seen = set()
        for function, path in parsed:
            package = package_of(path)
            name = f"{function} ({package})"
            if package.startswith("ours:") and name not in seen:
                seen.add(name)
                ours_inclusive[name] += count
    return total, by_package, by_function, ours_inclusive


def record(*, seconds: int, stream: bool, rate: int, native: bool = False) -> tuple[list[str], float, int]:
    """Drives the gateway with wrk while py-spy samples it; the collapsed stacks, CPU ms per request, requests."""
    ensure_wrk()
    key = prepare_database()
    OUT.mkdir(exist_ok=True)
    with fake_upstream(cpu=0) as upstream, gateway(upstream.url, cpu=1) as (url, pid):
        target = url + "/v1/chat/completions"
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(wrk_script({"Authorization": f"Bearer {key}"}, stream=stream))
        try:  # a warm-up: connections, catalog, key cache, first-request imports
            subprocess.run([*pin(0), "wrk", "-t1", "-c64", "-d3s", "-s", script.name, target], check=True,
                           capture_output=True)  # fmt: skip
            raw = OUT / f"{'stream' if stream else 'json'}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
            load = subprocess.Popen(
                [*pin(0), "wrk", "-t1", "-c64", f"-d{seconds + 2}s", "-s", script.name, target],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(1)
            cpu_before = cpu_seconds(pid)
            subprocess.run(
                [py_spy(), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
                 "--format", "raw", "--output", str(raw), "--gil", *(["--native"] if native else [])],
                check=True, capture_output=True,
            )  # fmt: skip
            cpu_used = cpu_seconds(pid) - cpu_before
            output, _ = load.communicate()
        finally:
            os.unlink(script.name)
    done = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    sampled = round(per_second * seconds)
    print(
        f"collapsed stacks: {raw.relative_to(ROOT)}   ({done:,} requests in {seconds + 2} s, {per_second:,.0f}/s)"
    )
    return raw.read_text().splitlines(), cpu_used * 1000 / max(sampled, 1), done


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--stream", action="store_true", help="streamed requests instead of JSON ones")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument(
        "--native", action="store_true", help="sample C frames too (slower; for C extensions)"
    )
    parser.add_argument("--from-file", type=Path, help="summarise collapsed stacks recorded earlier")
    args = parser.parse_args()
    if args.from_file:
        lines, cpu_ms = args.from_file.read_text().splitlines(), float("nan")
    else:
        lines, cpu_ms, _ = record(
            seconds=args.seconds, stream=args.stream, rate=args.rate, native=args.native
        )
    total, by_package, by_function, ours = parse(lines)
    if not total:
        raise SystemExit("no samples")
    print(f"CPU per request (web process, under py-spy): {cpu_ms:.2f} ms   samples: {total:,}\n")

    def share(counter: collections.Counter[str], title: str, header: str) -> None:
        rows = [[name, count * 100 / total] for name, count in counter.most_common(args.top)]
        print(table(title, [header, "% of samples"], rows))
        print()

    share(by_package, "Self time by package", "package")
    share(by_function, "Self time by function", "function")
    share(ours, "Our own functions, inclusive (with what they call)", "function")


if __name__ == "__main__":
    main()
