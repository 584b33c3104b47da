"""`inv bench`: the pure half. What is measured, what each figure must reach, and how results are read and shown.

Everything here is data in, data out, so it is unit-tested without Docker: the figure catalog with its
targets, target evaluation, wrk output parsing, the interleaving schedule of the proxy runs, the rows
of the results table (rich and Markdown) and the JSON document. `bench_run.py` does the measuring.

Decisions:
- Every figure the run can produce is declared up front in `catalog()`. A figure whose section failed or
  was skipped is still written, with no value and a note: results.json always has the same shape, and
  the table never silently drops a target.
- Values are stored in base units (bytes, seconds, requests/s, milliseconds) and only formatted for
  display; targets compare either the value or the ratio value/baseline, never a rounded string.
- A missed target is reported, not raised: on a shared machine timings are noisy, so the bench informs
  and people decide. Only a measurement that could not be taken makes `inv bench` exit non-zero.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from atbb_kit.runner import Command

SCHEMA_VERSION = 1
LABEL = "atbb.bench"
NAME_PREFIX = "atbb-bench"
# Order of execution too: the CLI timings run first while nothing of ours is running, the builds come
# before anything that needs the image, and wrk runs last with only the app and its database up.
SECTIONS = ("cli", "build", "image", "start", "proxy")
MB = 1_000_000  # the kit's size budget uses SI megabytes too

MET, NOT_MET, NO_TARGET, NOT_MEASURED = "met", "NOT MET", "", "not measured"


# ---------------------------------------------------------------------------------------------------------
# Targets and figures


@dataclass(frozen=True)
class Target:
    """`compare` is "value" or "ratio" (value / baseline); `op` one of <=, <, >=, >."""

    compare: str
    op: str
    limit: float
    text: str

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        subject = ratio if self.compare == "ratio" else value
        if subject is None:
            return None
        return {
            "<=": subject <= self.limit,
            "<": subject < self.limit,
            ">=": subject >= self.limit,
            ">": subject > self.limit,
        }[self.op]

    def to_json(self) -> dict[str, Any]:
        return {"compare": self.compare, "op": self.op, "limit": self.limit, "text": self.text}


@dataclass(frozen=True)
class Spec:
    """A figure the bench reports: where it comes from, its unit, what it is compared with, its target."""

    key: str
    section: str
    label: str
    unit: str  # bytes | s | rps | ms
    baseline_label: str = ""
    target: Target | None = None
    note: str = ""
    # How the ratio reads best: "share" (35%) for parts of a baseline, "multiple" (1.20x) for slowdowns.
    ratio_as: str = "share"


@dataclass(frozen=True)
class Figure:
    spec: Spec
    value: float | None = None
    baseline: float | None = None
    samples: tuple[float, ...] = ()
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return self.spec.target.met(self.value, self.ratio) if self.spec.target else None

    @property
    def verdict(self) -> str:
        if self.value is None:
            return NOT_MEASURED
        if self.spec.target is None:
            return NO_TARGET
        met = self.met
        if met is None:  # a ratio target whose baseline is missing cannot be judged
            return NOT_MEASURED
        return MET if met else NOT_MET

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "key": s.key,
            "section": s.section,
            "label": s.label,
            "unit": s.unit,
            "value": self.value,
            "baseline": self.baseline,
            "baseline_label": s.baseline_label,
            "ratio": self.ratio,
            "target": s.target.to_json() if s.target else None,
            "met": self.met,
            "verdict": self.verdict,
            "samples": list(self.samples),
            "note": self.note or s.note,
        }


# The two proxied routes: the trivial appview route is the worst case for a proxy (nothing but the hop
# itself costs anything), the web page the realistic one (it calls appview, which queries PostgreSQL).
ROUTES = {"ping": ("/api/ping", "appview", 0.70), "page": ("/", "web", 0.90)}
CONNECTIONS = (8, 64)
# The added-p99 target applies at this concurrency only; at 64 connections queueing dominates.
P99_TARGET_CONNECTIONS = 8
P99_ADDED_LIMIT_MS = 2.0


def catalog(*, quick: bool = False, complete: bool = True) -> tuple[Spec, ...]:
    """Every figure, in table order. `complete` (all sections ran) decides whether the wall-time target applies."""
    specs = [
        Spec("cli.bare_list_seconds", "cli", "bare `invoke --list` (one-task tasks.py)", "s"),
        Spec(
            "cli.list_seconds",
            "cli",
            "`inv --list`",
            "s",
            "bare --list",
            Target("ratio", "<=", 1.5, "≤ 1.5× bare"),
            ratio_as="multiple",
        ),
        Spec(
            "cli.tags_seconds",
            "cli",
            "`inv tags`",
            "s",
            "bare --list",
            Target("ratio", "<=", 3.0, "≤ 3× bare"),
            ratio_as="multiple",
        ),
        Spec(
            "cli.config_check_seconds",
            "cli",
            "`inv config --check`",
            "s",
            "bare --list",
            Target("ratio", "<=", 3.0, "≤ 3× bare"),
            ratio_as="multiple",
        ),
        Spec("build.cold_seconds", "build", "cold build (--no-cache)", "s"),
        Spec(
            "build.no_change_seconds",
            "build",
            "rebuild, nothing changed",
            "s",
            "cold",
            Target("ratio", "<=", 0.05, "≤ 5% of cold"),
        ),
        Spec(
            "build.source_change_seconds",
            "build",
            "rebuild after one source file changed",
            "s",
            "cold",
            Target("ratio", "<=", 0.35, "≤ 35% of cold"),
        ),
        Spec(
            "build.dependency_added_seconds",
            "build",
            "rebuild after a dependency was added",
            "s",
            "cold",
            note="report only",
        ),
        Spec("image.base_bytes", "image", "base image size", "bytes"),
        Spec("image.kit_bytes", "image", "kit image size", "bytes", "naive image"),
        Spec(
            "image.added_vs_naive_bytes",
            "image",
            "bytes added over the base (kit vs naive)",
            "bytes",
            "naive added",
            Target("ratio", "<=", 0.15, "≤ 15% of naive"),
        ),
        Spec(
            "image.added_bytes",
            "image",
            "bytes the kit image adds over the base",
            "bytes",
            target=Target("value", "<", 30 * MB, "< 30 MB"),
        ),
        Spec(
            "start.first_200_seconds",
            "start",
            "docker run → first 200 on the health path via nginx",
            "s",
            target=Target("value", "<", 2.0, "< 2 s"),
        ),
        Spec(
            "start.healthy_seconds",
            "start",
            "docker run → HEALTHCHECK healthy",
            "s",
            note="Docker 20.10 runs the first probe one --interval (10 s) after start",
        ),
    ]
    for route, (path, service, share) in ROUTES.items():
        for conns in CONNECTIONS:
            where = f"{path} c{conns}"
            key = f"proxy.{route}.c{conns}"
            specs.append(
                Spec(
                    f"{key}.rps",
                    "proxy",
                    f"{where}: requests/s via nginx",
                    "rps",
                    f"{service} direct",
                    Target("ratio", ">=", share, f"≥ {share:.0%} of direct"),
                )
            )
            specs.append(
                Spec(
                    f"{key}.p50_ms", "proxy", f"{where}: p50 via nginx", "ms", f"{service} direct", ratio_as="multiple"
                )
            )
            p99_target = (
                Target("value", "<=", P99_ADDED_LIMIT_MS, f"≤ {P99_ADDED_LIMIT_MS:g} ms")
                if conns == P99_TARGET_CONNECTIONS
                else None
            )
            specs.append(
                Spec(f"{key}.p99_added_ms", "proxy", f"{where}: p99 added by nginx", "ms", "direct p99", p99_target)
            )
    limit, text = (180.0, "< 3 min") if quick else (900.0, "< 15 min")
    specs.append(
        Spec(
            "bench.total_seconds",
            "bench",
            "wall time of this bench run",
            "s",
            target=Target("value", "<", limit, text) if complete else None,
            note="" if complete else "partial run (--only): no target",
        )
    )
    return tuple(specs)


def spec_index(specs: Iterable[Spec]) -> dict[str, Spec]:
    return {s.key: s for s in specs}


def fill(specs: Sequence[Spec], measured: Mapping[str, Figure], missing_note: Mapping[str, str]) -> list[Figure]:
    """One figure per spec, in catalog order: the measured one, or an empty one saying why it is empty."""
    out = []
    for spec in specs:
        found = measured.get(spec.key)
        if found is not None:
            out.append(found)
        else:
            out.append(Figure(spec, note=missing_note.get(spec.section, "not measured")))
    return out


@dataclass(frozen=True)
class Settings:
    """How much of each measurement a run takes: `inv bench` (full) or `inv bench --quick`."""

    quick: bool
    start_runs: int  # containers started for the start-up figures (median)
    wrk_seconds: int  # per path and (route, connections) cell, split into segments
    wrk_segment_seconds: int
    wrk_warmup_seconds: int  # per path and cell, not recorded: JIT, connection pools, nginx keepalive
    wrk_threads: int
    cli_runs: int  # timed runs of each command (median), after one untimed round
    dependency_step: bool  # the dependency-added rebuild needs the npm registry and a full rebuild

    @property
    def segments(self) -> int:
        return max(1, self.wrk_seconds // self.wrk_segment_seconds)

    def to_json(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "start_runs": self.start_runs,
            "wrk_seconds": self.wrk_seconds,
            "wrk_segment_seconds": self.wrk_segment_seconds,
            "wrk_warmup_seconds": self.wrk_warmup_seconds,
            "wrk_threads": self.wrk_threads,
            "wrk_connections": list(CONNECTIONS),
            "cli_runs": self.cli_runs,
            "dependency_step": self.dependency_step,
        }


def settings_for(quick: bool) -> Settings:
    if quick:
        return Settings(True, 2, 3, 1, 1, 2, 10, False)
    return Settings(False, 5, 10, 2, 2, 2, 10, True)


# ---------------------------------------------------------------------------------------------------------
# wrk


_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)$")
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def duration_ms(text: str) -> float:
    """wrk's latency and time format (`252.00us`, `1.87ms`, `1.02s`, `1.00m`) in milliseconds."""
    found = _DURATION.match(text.strip())
    if not found:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * _TO_MS[found.group(2)]


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    latency_ms: Mapping[int, float]  # percentile -> ms, from --latency
    socket_errors: int = 0
    non_2xx: int = 0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": self.seconds,
            "rps": self.rps,
            "latency_ms": {str(k): v for k, v in sorted(self.latency_ms.items())},
            "socket_errors": self.socket_errors,
            "non_2xx": self.non_2xx,
        }


_REQUESTS = re.compile(r"^\s*(\d+) requests in ([0-9.]+(?:us|ms|s|m|h)),", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([0-9.]+)\s*$", re.M)
_PERCENTILE = re.compile(r"^\s+(\d+(?:\.\d+)?)%\s+([0-9.]+(?:us|ms|s|m|h))\s*$", re.M)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def parse_wrk(text: str) -> WrkResult:
    """Parse `wrk --latency` output. Raises ValueError when it is not a finished run (e.g. cannot connect)."""
    requests = _REQUESTS.search(text)
    rps = _RPS.search(text)
    if not requests or not rps:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "(no output)")
        raise ValueError(f"wrk did not report a finished run: {first[:200]}")
    if "Latency Distribution" not in text:
        raise ValueError("wrk output has no latency distribution: run it with --latency")
    section = text.split("Latency Distribution", 1)[1]
    latency: dict[int, float] = {}
    for pct, value in _PERCENTILE.findall(section):
        if float(pct).is_integer():
            latency[int(float(pct))] = duration_ms(value)
    if 50 not in latency or 99 not in latency:
        raise ValueError("wrk's latency distribution lacks the 50% or 99% line")
    socket = _SOCKET.search(text)
    non_2xx = _NON_2XX.search(text)
    return WrkResult(
        requests=int(requests.group(1)),
        seconds=duration_ms(requests.group(2)) / 1000,
        rps=float(rps.group(1)),
        latency_ms=latency,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def abba(pairs: int) -> tuple[str, ...]:
    """Order of the direct (A) and proxied (B) wrk segments: A B B A A B ..., `pairs` of each.

    Both paths then sample the same stretch of a drifting background load (others' builds on a shared
    machine) instead of one path getting the quiet minute and the other the busy one.
    """
    out: list[str] = []
    for i in range(pairs):
        out.extend(("direct", "proxied") if i % 2 == 0 else ("proxied", "direct"))
    return tuple(out)


@dataclass(frozen=True)
class PathStats:
    """A path's segments summarised by medians: robust to one segment that met someone else's build."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    segments: tuple[WrkResult, ...] = field(default=())

    @classmethod
    def of(cls, segments: Sequence[WrkResult]) -> PathStats:
        if not segments:
            raise ValueError("no wrk segments")
        return cls(
            rps=statistics.median(s.rps for s in segments),
            p50_ms=statistics.median(s.latency_ms[50] for s in segments),
            p99_ms=statistics.median(s.latency_ms[99] for s in segments),
            errors=sum(s.errors for s in segments),
            segments=tuple(segments),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "rps": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": self.errors,
            "segments": [s.to_json() for s in self.segments],
        }


def proxy_figures(
    index: Mapping[str, Spec], route: str, conns: int, direct: PathStats, proxied: PathStats
) -> list[Figure]:
    key = f"proxy.{route}.c{conns}"
    note = ""
    if direct.errors or proxied.errors:
        note = f"errors: {direct.errors} direct, {proxied.errors} via nginx (socket errors + non-2xx)"
    return [
        Figure(index[f"{key}.rps"], proxied.rps, direct.rps, note=note),
        Figure(index[f"{key}.p50_ms"], proxied.p50_ms, direct.p50_ms, note=note),
        Figure(index[f"{key}.p99_added_ms"], proxied.p99_ms - direct.p99_ms, direct.p99_ms, note=note),
    ]


# ---------------------------------------------------------------------------------------------------------
# Commands (data only; bench_run.py hands them to the Runner)


def wrk_command(pid: int, url: str, *, connections: int, seconds: int, threads: int) -> Command:
    """wrk run from the host inside the app container's network namespace.

    nsenter joins only the network namespace: the host's wrk binary reaches 127.0.0.1:80 (nginx) and the
    services' loopback ports alike, over the same loopback, in the same container, with nothing added to
    the image and nothing exposed. It needs root (CAP_SYS_ADMIN) and a Linux engine whose container PIDs
    the host can see.
    """
    return Command(
        (
            "nsenter",
            f"--target={pid}",
            "--net",
            "--",
            "wrk",
            f"--threads={min(threads, connections)}",
            f"--connections={connections}",
            f"--duration={seconds}s",
            "--timeout=5s",
            "--latency",
            url,
        ),
        install_hint="install wrk (apt-get install wrk) and util-linux (nsenter), or run scripts/bootstrap.sh",
    )


def with_label(cmd: Command, key: str, value: str) -> Command:
    """A `docker build` Command with `--label key=value` added before its final argument (the context)."""
    return replace(cmd, argv=(*cmd.argv[:-1], "--label", f"{key}={value}", cmd.argv[-1]))


SOURCE_SUFFIXES = (".ts", ".tsx", ".mts", ".js", ".mjs", ".jsx")


def pick_source_file(paths: Iterable[str]) -> str | None:
    """The file the "one source file changed" rebuild edits: an app's source first, else any package's.

    Any source file invalidates the same build step (the monorepo is copied in one COPY), so which one
    matters little; an app's file is what a developer touches most. Sorted, so every run edits the same one.
    """
    candidates = sorted(
        p for p in paths if p.endswith(SOURCE_SUFFIXES) and "/src/" in f"/{p}" and "node_modules/" not in p
    )
    apps = [p for p in candidates if p.startswith("apps/")]
    return (apps or candidates or [None])[0]


# ---------------------------------------------------------------------------------------------------------
# Display


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "bytes":
        return f"{value / MB:.1f} MB"
    if unit == "s":
        return f"{value:.2f} s" if abs(value) < 100 else f"{value:.0f} s"
    if unit == "rps":
        return f"{value:,.0f} req/s"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:g} {unit}"


def format_ratio(ratio: float | None, style: str = "share") -> str:
    if ratio is None:
        return "—"
    shown = round(ratio, 2) + 0.0  # both styles show 2 significant decimals; + 0.0 turns -0.0 into 0.0 ("0%")
    return f"{shown:.2f}×" if style == "multiple" else f"{shown:.0%}"


COLUMNS = ("figure", "value", "baseline", "ratio", "target", "met")


def table_rows(figures: Sequence[Figure]) -> list[tuple[str, ...]]:
    """The results table as text cells, shared by the terminal table and the Markdown file."""
    rows = []
    for f in figures:
        s = f.spec
        baseline = format_value(f.baseline, s.unit) if f.baseline is not None else ""
        if baseline and s.baseline_label:
            baseline = f"{baseline} ({s.baseline_label})"
        ratio = format_ratio(f.ratio, s.ratio_as) if f.baseline is not None else ""
        target = s.target.text if s.target else ""
        rows.append((s.label, format_value(f.value, s.unit), baseline, ratio, target, f.verdict))
    return rows


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Mapping[str, Any], figures: Sequence[Figure]) -> str:
    """docs/performance-results.md: machine facts, the table, and the notes that qualify the numbers."""
    m = doc["machine"]
    lines = [
        "# atBB kit: latest benchmark results",
        "",
        "Generated by `inv bench` (see [performance.md](performance.md) for what each figure means and how it",
        "is measured). Do not edit: rerun `inv bench` to refresh it.",
        "",
        f"- run `{doc['run_id']}` ({doc['mode']}), {doc['started_at']}, {doc['total_seconds']:.0f} s in all",
        f"- kit commit `{m['kit_git_sha']}`" + (" (working tree had uncommitted changes)" if m["kit_dirty"] else ""),
        f"- machine: {m['cores']} cores, {m['memory_bytes'] / 2**30:.1f} GiB, kernel {m['kernel']}, "
        f"Docker server {m['docker_server_version']}, builder {m['builder']}",
        f"- base image `{m['base_image']['ref']}` (`{(m['base_image']['id'] or '?')[:19]}`), "
        f"PostgreSQL `{m['postgres_image']['ref']}`",
        f"- load average at start / end: {m['load_average_start']} / {m['load_average_end']} "
        "(other work on the machine; above the core count, timings are noisy)",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in table_rows(figures):
        cells = [*row[:-1], "**NOT MET**" if row[-1] == NOT_MET else row[-1]]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    notes = [(f.spec.label, f.note or f.spec.note) for f in figures if f.note or f.spec.note]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {_md_cell(label)}: {_md_cell(note)}" for label, note in notes]
    failed = {name: s for name, s in doc["sections"].items() if s["status"] != "ok"}
    if failed:
        lines += ["", "Sections not measured:", ""]
        lines += [f"- {name}: {s['status']} — {_md_cell(s.get('error') or '')}" for name, s in failed.items()]
    return "\n".join(lines) + "\n"


def print_table(doc: Mapping[str, Any], figures: Sequence[Figure]) -> None:
    from rich.console import Console
    from rich.table import Table

    m = doc["machine"]
    table = Table(
        title=f"inv bench ({doc['mode']}) — run {doc['run_id']}",
        caption=(
            f"{m['cores']} cores, {m['memory_bytes'] / 2**30:.0f} GiB, Docker {m['docker_server_version']}, "
            f"base {m['base_image']['ref']}, kit {str(m['kit_git_sha'])[:12]}"
            f"{' (dirty)' if m['kit_dirty'] else ''}, load {m['load_average_start']} → {m['load_average_end']}"
        ),
    )
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("value", "ratio") else "left", overflow="fold")
    style = {MET: "green", NOT_MET: "bold red", NOT_MEASURED: "yellow"}
    for row in table_rows(figures):
        verdict = row[-1]
        table.add_row(*row[:-1], f"[{style[verdict]}]{verdict}[/]" if verdict in style else verdict)
    # rich wraps at 80 columns when stdout is not a terminal (CI logs): keep rows whole there.
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    console.print(table)


# ---------------------------------------------------------------------------------------------------------
# The JSON document

MACHINE_FIELDS = (
    "cores",
    "memory_bytes",
    "kernel",
    "python",
    "docker_server_version",
    "docker_api_version",
    "builder",
    "base_image",
    "postgres_image",
    "kit_git_sha",
    "kit_dirty",
    "load_average_start",
    "load_average_end",
)
DOCUMENT_FIELDS = (
    "schema_version",
    "run_id",
    "mode",
    "sections_requested",
    "started_at",
    "total_seconds",
    "machine",
    "settings",
    "sections",
    "figures",
    "details",
)


def document(
    *,
    run_id: str,
    mode: str,
    requested: Sequence[str],
    started_at: str,
    total_seconds: float,
    machine: Mapping[str, Any],
    settings: Mapping[str, Any],
    sections: Mapping[str, Mapping[str, Any]],
    figures: Sequence[Figure],
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "mode": mode,
        "sections_requested": list(requested),
        "started_at": started_at,
        "total_seconds": total_seconds,
        "machine": dict(machine),
        "settings": dict(settings),
        "sections": {k: dict(v) for k, v in sections.items()},
        "figures": [f.to_json() for f in figures],
        # Raw measurements behind the figures (segments, samples, image ids): for digging, not for the table.
        "details": dict(details or {}),
    }
    return doc


def parse_only(text: str | None) -> tuple[str, ...]:
    """`--only build,proxy` -> the sections in execution order; unknown names are a usage error."""
    if not text:
        return SECTIONS
    asked = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in asked if s not in SECTIONS]
    if unknown or not asked:
        raise ValueError(f"unknown section(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SECTIONS)}")
    return tuple(s for s in SECTIONS if s in asked)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
