"""Shared pieces for the benchmarks: a bench database, pinned server processes, timing and tables."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from providers.fake_upstream import FakeUpstreamProcess, free_port  # noqa: E402

BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/router_bench")
BENCH_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PYTHON = sys.executable
CPUS = os.cpu_count() or 1


def pin(cpu: int) -> list[str]:
    """taskset prefix pinning a process to one core (no-op on a one-core machine)."""
    return ["taskset", "-c", str(cpu % CPUS)] if CPUS > 1 else []


def base_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": BENCH_DB,
        "REDIS_URL": BENCH_REDIS,
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env or base_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def vacuum_database() -> None:
    """VACUUM ANALYZE of the bench database, as autovacuum keeps a deployed one (this machine's PostgreSQL runs
    without it): the budget windows, two updates per request, are otherwise a few live rows among thousands of
    dead versions by the end of one run, and every later run reads through them (275 req/s before a vacuum,
    335-360 after, same code, same minute)."""
    subprocess.run(["psql", BENCH_DB, "-qc", "VACUUM (ANALYZE)"], capture_output=True, check=True)


def prepare_database() -> str:
    """Creates (if missing) and migrates the database BENCH_DATABASE_URL names, seeds the catalog and returns a
    fresh API key."""
    url = urllib.parse.urlsplit(BENCH_DB)
    name = url.path.lstrip("/")
    subprocess.run(
        ["psql", url._replace(path="/postgres").geturl(), "-qc", f'CREATE DATABASE "{name}"'],
        capture_output=True,
        check=False,
    )
    manage("migrate", "--noinput")
    manage("seed_catalog")
    key = manage("create_api_key", "bench", "--name", "bench").strip().splitlines()[-1]
    manage("shell", "-c", EVERY_FEATURE)  # on the key just made (the bench user's newest)
    vacuum_database()
    return key


# Every feature a request pays for, on: the bench user's monthly budget and the key's daily one have limits (so
# both windows are checked and held), the key has requests- and tokens-per-minute limits (admitted and settled
# in Redis), far above what a run can reach. The access log, the write-ahead row and the cache lookup are always on.
EVERY_FEATURE = """
from accounts.models import ApiKey
from budgets.models import Budget
key = ApiKey.objects.filter(user__username="bench").latest("pk")
ApiKey.objects.filter(pk=key.pk).update(rate_limit_rpm=2_000_000_000, rate_limit_tpm=2_000_000_000)
Budget.objects.update_or_create(scope="user", user_id=key.user_id, period="monthly",
                                defaults={"admin_limit_usd": 1_000_000_000})
Budget.objects.update_or_create(scope="key", api_key=key, period="daily", defaults={"admin_limit_usd": 1_000_000_000})
"""


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def fake_upstream(cpu: int = 0, keep_alive_s: int | None = None) -> Iterator[FakeUpstreamProcess]:
    """The fake upstream pinned to one core; `keep_alive_s` overrides uvicorn's 5 s idle keep-alive."""
    port = free_port()
    keep_alive = [] if keep_alive_s is None else ["--timeout-keep-alive", str(keep_alive_s)]
    process = subprocess.Popen(
        [*pin(cpu), PYTHON, "-m", "providers.fake_upstream", "--port", str(port), *keep_alive],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        # A handle to the pinned server for its control helpers (start() is never called on it).
        yield FakeUpstreamProcess(port=port)
    finally:
        process.terminate()
        process.wait(10)


DEPLOY_VENV = ROOT / "bench" / ".deploy-venv"


def deploy_python() -> str:
    """The interpreter of a venv holding requirements/base.txt alone, as the Dockerfile installs it (made on
    first use, remade when the pins change): the gateway is measured without the dev tools beside it, which
    change what it loads (schemathesis brings rich, which httpx then imports: ~4 MiB of the web process)."""
    pins = (ROOT / "requirements" / "base.txt").read_bytes()
    stamp = DEPLOY_VENV / f".installed-{hashlib.sha1(pins).hexdigest()[:12]}"
    if not stamp.exists():
        subprocess.run([PYTHON, "-m", "venv", "--clear", str(DEPLOY_VENV)], check=True)
        subprocess.run([str(DEPLOY_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        "-r", str(ROOT / "requirements" / "base.txt")], check=True)  # fmt: skip
        stamp.touch()
    return str(DEPLOY_VENV / "bin" / "python")


def ensure_wrk() -> str:
    """wrk, the load driver: Debian's package, installed on first use where it is missing (as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (its own threads; uvicorn with one worker serves in
    its main process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_tree(pid: int) -> float:
    """cpu_seconds of a process and all its descendants (a server that runs its workers as children)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            total += cpu_seconds(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
    return total


# As the Dockerfile runs it: production settings, uvicorn with uvloop and httptools, no access log. Only TLS is
# off, as on loopback behind no proxy (the redirect would answer 301 to plain HTTP).
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
    "SECURE_SSL_REDIRECT": "false",
}


def _service_threads() -> list[int]:
    """Every thread of the local PostgreSQL and Redis servers (PostgreSQL forks its backends from the
    postmaster, so those started later inherit what it has)."""
    found = subprocess.run(
        ["pgrep", "-x", "postgres|redis-server"], capture_output=True, text=True, check=False
    )
    threads = []
    for pid in found.stdout.split():
        with contextlib.suppress(OSError):
            threads += [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    return threads


@contextlib.contextmanager
def services_off_core(cpu: int) -> Iterator[None]:
    """PostgreSQL and Redis kept off the gateway's core while it is saturated, and put back after.

    In a deployment they are other machines. Here, under load, they would take turns on the gateway's core
    (about 2 ms of PostgreSQL CPU per request, 10-15% of that core), which LiteLLM, measured without a
    database, never pays: pinned beside the fake upstream and wrk, each gateway has its core to itself. At
    concurrency 1 they stay where they are (the gateway's core is idle while it waits for them, as it waits
    for a remote database). A user who may not change their affinity (not root) gets them where they are."""
    others = set(range(CPUS)) - {cpu % CPUS}
    saved: dict[int, set[int]] = {}
    if others:
        for tid in _service_threads():
            with contextlib.suppress(OSError):
                saved[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, others)
    try:
        yield
    finally:
        if saved:
            for tid in _service_threads():  # backends forked meanwhile too
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, saved.get(tid, set(range(CPUS))))


@contextlib.contextmanager
def gateway(
    upstream_url: str,
    *,
    cpu: int = 1,
    workers: int = 1,
    prefix: Sequence[str] = (),
    root: Path = ROOT,
    **env: str,
) -> Iterator[tuple[str, int]]:
    """The ASGI gateway pinned to one core, as deployed (PRODUCTION), every provider pointed at the fake
    upstream. `prefix` runs it under a tool (bench_instructions: callgrind); `root` serves another checkout."""
    port = free_port()
    environment = base_env(
        **PRODUCTION,
        OPENAI_BASE_URL=upstream_url + "/v1",
        ANTHROPIC_BASE_URL=upstream_url,
        GEMINI_BASE_URL=upstream_url,
        DEEPSEEK_BASE_URL=upstream_url,
        **env,
    )
    # Its log (one JSON access line per request at INFO, as in production) goes to a file, as a container's
    # stdout would go to its log driver: written, not printed over the bench's table.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the process below)
    process = subprocess.Popen(
        [
            *pin(cpu),
            *prefix,
            deploy_python(),
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ],
        cwd=root,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/health", timeout=600 if prefix else 30)
        except RuntimeError:
            log.seek(0)
            raise RuntimeError("the gateway did not come up:\n" + log.read().decode()[-3000:]) from None
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def hwm_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of one process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells[1:]]
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
