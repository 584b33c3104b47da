"""The upgrade benchmark: wall time of `inv upgrade` per step, and what a visitor sees during the switch.

`Load` is a bounded loopback load generator: N threads, each sending GET requests in turn to the paths it
is given (the forum's `/` and its health path), a new connection per request, paced to `rate` requests a
second in all, until stopped or until its own time limit. Paced, not flat out: a closed loop at full speed
saturates a small host (two CPUs here), and then the forum's own health answer (503 when the database does
not answer within 2 s) fails requests that have nothing to do with the upgrade. Every answer is recorded
with its start time, latency and status; a status outside 200-399 is a failed request and an exception
(refused, reset, timeout) a socket error. The e2e tests use
the same generator (tests/e2e/test_upgrade.py), so the figures and the assertions count the same way.

`measure` runs the steady state for a while, then `inv upgrade` under the same load, then the steady state
again; it reads the step lines `inv upgrade` prints (`[n/N] title: ok in X s`) as they come, and compares
the latencies inside the switch window (from the start of the `switch` step to the end of `drain`) with the
p99 of the steady state before and after.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from atbb_kit.commands.base import Command
from atbb_kit.commands.load import invoke_command
from atbb_kit.core.config import load_config
from atbb_kit.core.paths import KIT_ROOT
from atbb_kit.infra.console import Column, console
from atbb_kit.infra.runner import Result, Runner
from atbb_kit.ops.deployment import write_demo_env


@dataclass(frozen=True)
class Sample:
    start: float  # time.monotonic()
    seconds: float
    status: int  # 0: socket error
    path: str
    error: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)

    def between(self, t0: float, t1: float) -> LoadResult:
        return LoadResult([s for s in self.samples if t0 <= s.start <= t1])

    @property
    def total(self) -> int:
        return len(self.samples)

    @property
    def failed(self) -> list[Sample]:
        return [s for s in self.samples if s.status and not 200 <= s.status < 400]

    @property
    def errors(self) -> list[Sample]:
        return [s for s in self.samples if not s.status]

    def p99(self) -> float:
        return percentile([s.seconds for s in self.samples], 99)

    def longest(self) -> float:
        return max((s.seconds for s in self.samples), default=0.0)

    def describe(self) -> str:
        bad = self.failed[:3] + self.errors[:3]
        shown = "; ".join(f"{s.path} -> {s.status or s.error}" for s in bad)
        return (
            f"{self.total} requests, {len(self.failed)} failed, {len(self.errors)} socket errors, "
            f"p99 {self.p99() * 1000:.1f} ms, longest {self.longest() * 1000:.1f} ms" + (f" ({shown})" if shown else "")
        )


class Load:
    """`with Load(port, paths) as load: ...` then `load.result`. Loopback only; stops itself after `limit` s."""

    def __init__(
        self,
        port: int,
        paths: Sequence[str],
        *,
        connections: int = 8,
        rate: float = 60.0,
        limit: float = 600.0,
        timeout: float = 10.0,
    ) -> None:
        self.port = port
        self.interval = connections / rate if rate > 0 else 0.0
        self.paths = list(paths)
        self.connections = connections
        self.limit = limit
        self.timeout = timeout
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.result = LoadResult()

    def _worker(self, index: int) -> None:
        deadline = time.monotonic() + self.limit
        n = index
        local: list[Sample] = []
        # Staggered starts, then one request every `interval` (at once when behind).
        due = time.monotonic() + self.interval * index / max(1, self.connections)
        while not self._stop.is_set() and time.monotonic() < deadline:
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            due = max(due + self.interval, time.monotonic() - self.interval)
            path = self.paths[n % len(self.paths)]
            n += 1
            t0 = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                conn.request("GET", path, headers={"Connection": "close"})
                resp = conn.getresponse()
                resp.read()
                local.append(Sample(t0, time.monotonic() - t0, resp.status, path))
            except (OSError, http.client.HTTPException) as exc:
                local.append(Sample(t0, time.monotonic() - t0, 0, path, f"{type(exc).__name__}: {exc}"[:200]))
            finally:
                conn.close()
        with self._lock:
            self.result.samples.extend(local)

    def start(self) -> Load:
        for i in range(self.connections):
            t = threading.Thread(target=self._worker, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        self.result.samples.sort(key=lambda s: s.start)
        return self.result

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# `[7/9] switch: ok in 0.4 s` — the step lines atbb_kit/ops/upgrade.py prints.
STEP_DONE = re.compile(r"^\[(\d+)/(\d+)\] (.+?): (ok|failed|interrupted) in ([0-9.]+) s$")
STEP_START = re.compile(r"^\[(\d+)/(\d+)\] (.+?): (?!ok in|failed in|interrupted in)")


@dataclass
class UpgradeRun:
    returncode: int
    seconds: float
    steps: list[tuple[str, float]]  # (title, seconds)
    marks: dict[str, float]  # "<title> start"/"<title> end" -> time.monotonic()
    output: str


def run_streaming(cmd: Command, timeout: float) -> UpgradeRun:
    """Run `inv upgrade ...` (with exactly the Command's environment), timestamping its step lines as they
    arrive."""
    marks: dict[str, float] = {}
    steps: list[tuple[str, float]] = []
    lines: list[str] = []
    t0 = time.monotonic()
    with Runner(echo=False).start(cmd, inherit_env=False, deadline=timeout) as proc:
        for line in proc.lines():
            now = time.monotonic()
            lines.append(line)
            done = STEP_DONE.match(line)
            if done:
                marks[f"{done.group(3)} end"] = now
                steps.append((done.group(3), float(done.group(5))))
                continue
            begun = STEP_START.match(line)
            if begun:
                marks[f"{begun.group(3)} start"] = now
        returncode = proc.wait().returncode
    return UpgradeRun(returncode, time.monotonic() - t0, steps, marks, "\n".join(lines))


@dataclass
class Figures:
    steady: str
    steady_p99_ms: float
    upgrade_seconds: float
    steps: list[tuple[str, float]]
    switch_requests: int
    switch_longest_ms: float
    switch_p99_ms: float
    ratio_p99: float
    total: int
    failed: int
    socket_errors: int
    returncode: int

    def rows(self) -> list[list[str]]:
        rows = [[f"step: {t}", f"{s:.1f} s"] for t, s in self.steps]
        rows += [
            ["inv upgrade, wall time", f"{self.upgrade_seconds:.1f} s (exit {self.returncode})"],
            ["steady state p99", f"{self.steady_p99_ms:.1f} ms"],
            ["switch window: requests", str(self.switch_requests)],
            ["switch window: p99 / longest", f"{self.switch_p99_ms:.1f} ms / {self.switch_longest_ms:.1f} ms"],
            ["switch p99 / steady p99", f"{self.ratio_p99:.2f}x (target <= 2x)"],
            ["requests in all", str(self.total)],
            ["failed requests / socket errors", f"{self.failed} / {self.socket_errors}"],
        ]
        return rows


def measure(
    port: int,
    paths: Sequence[str],
    upgrade: Command,
    *,
    steady_seconds: float = 15.0,
    connections: int = 8,
    rate: float = 60.0,
    timeout: float = 900.0,
) -> Figures:
    """Steady state first, then the upgrade under the same load (one load generator throughout)."""
    with Load(port, paths, connections=connections, rate=rate, limit=steady_seconds + timeout + 30) as load:
        t_steady = time.monotonic()
        time.sleep(steady_seconds)
        t_upgrade = time.monotonic()
        run = run_streaming(upgrade, timeout)
        # The same again after the upgrade: on a shared host the load changes by the minute, and a
        # baseline from both sides of the switch is fairer than one from before it alone.
        t_after = time.monotonic()
        time.sleep(steady_seconds)
        t_end = time.monotonic()
    result = load.result
    steady = LoadResult(result.between(t_steady, t_upgrade).samples + result.between(t_after, t_end).samples)
    w0 = run.marks.get("switch start", t_upgrade)
    w1 = run.marks.get("drain old end", time.monotonic())
    window = result.between(w0, w1)
    steady_p99 = steady.p99()
    return Figures(
        steady=steady.describe(),
        steady_p99_ms=steady_p99 * 1000,
        upgrade_seconds=run.seconds,
        steps=run.steps,
        switch_requests=window.total,
        switch_longest_ms=window.longest() * 1000,
        switch_p99_ms=window.p99() * 1000,
        ratio_p99=(window.p99() / steady_p99) if steady_p99 else 0.0,
        total=result.total,
        failed=len(result.failed),
        socket_errors=len(result.errors),
        returncode=run.returncode,
    )


def save(figures: Figures, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(figures), indent=2) + "\n", encoding="utf-8")


# --- the script: `python -m atbb_kit.ops.bench_upgrade --from IMAGE --to IMAGE` ------------------------


def _inv(*args: str, env: dict[str, str], cwd: Path, timeout: float = 900) -> Result:
    """`inv ARGS` with exactly `env`, captured; exit code 124 when it outlives `timeout` (it is stopped)."""
    cmd = invoke_command(cwd, *args, env=env)
    return Runner(echo=False).start(cmd, merge_stderr=False, inherit_env=False).wait(timeout)


def main(argv: Sequence[str] | None = None) -> int:
    """A throwaway Compose stack of the example at --from, the steady state, `inv upgrade --to` under load,
    the figures as a table and as JSON (build/bench/upgrade.json), the stack removed."""
    parser = argparse.ArgumentParser(prog="python -m atbb_kit.ops.bench_upgrade", description=main.__doc__)
    parser.add_argument("--from", dest="old", required=True, help="the image the stack starts with")
    parser.add_argument("--to", dest="new", required=True, help="the image `inv upgrade` switches to")
    parser.add_argument(
        "--steady", type=float, default=15.0, help="seconds of steady state before and after (default 15)"
    )
    parser.add_argument("--rate", type=float, default=60.0, help="requests a second in all (default 60)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="let inv upgrade smoke-test the image (slower)")
    parser.add_argument("--output", type=Path, default=KIT_ROOT / "build" / "bench" / "upgrade.json")
    args = parser.parse_args(argv)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    project = f"atbbbenchup{secrets.token_hex(4)}"
    # The app's own config (ATBB_CONFIG) carries over to the inv runs; other ATBB_* overrides do not.
    cfg = load_config()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATBB_") or k == "ATBB_CONFIG"}
    images_env = KIT_ROOT / "build" / "test-images.env"
    if images_env.is_file():
        for line in images_env.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key.strip()] = value.strip()
    env.update({"ATBB_COMPOSE_PROJECT": project, "ATBB_COMPOSE_HOST_PORT": str(port)})
    with tempfile.TemporaryDirectory(prefix="atbb-bench-upgrade-") as tmp:
        work = Path(tmp)
        env_file = work / "atbb.env"
        write_demo_env(env_file, port)
        console.say(f"==> stack {project} at {args.old} on port {port}")
        try:
            up = _inv("compose-up", "--env-file", str(env_file), "--image", args.old, env=env, cwd=KIT_ROOT)
            if up.returncode:
                console.error(f"inv compose-up failed: {up.stderr.strip()[-500:]}")
                return 1
            upgrade = invoke_command(
                KIT_ROOT,
                *("upgrade", "--image", args.new, "--env-file", str(env_file)),
                *("--backup-dir", str(work / "backups")),
                *(() if args.smoke else ("--no-smoke",)),
                env=env,
            )
            console.say(f"==> {args.steady:g} s steady state, then inv upgrade to {args.new}, {args.rate:g} req/s")
            figures = measure(
                port,
                ("/", cfg.health.path),
                upgrade,
                steady_seconds=args.steady,
                connections=args.connections,
                rate=args.rate,
            )
        finally:
            _inv("compose-down", "--env-file", str(env_file), "--volumes", env=env, cwd=KIT_ROOT, timeout=300)
    console.table("inv upgrade under load", [Column("figure"), Column("value", justify="right")], figures.rows())
    console.say(f"steady state: {figures.steady}")
    save(figures, args.output)
    console.say(f"==> figures written to {args.output}")
    return 0 if figures.returncode == 0 and not figures.failed and not figures.socket_errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
