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

import json
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from string import Template
from typing import Any

from atbb_kit.core import nginx_conf, routing
from atbb_kit.core.paths import KIT_ROOT
from atbb_kit.infra.console import Column, console

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
    unit: str  # bytes | s | rps | ms | us
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


# The proxies measured side by side on the same routes and upstream ports: the image's own nginx as
# configured, and two peers configured equally well (bench/haproxy.cfg.template, bench/Caddyfile.template),
# each running in the app container's network namespace. "direct" is wrk straight to the service's port.
PROXIES = ("nginx", "haproxy", "caddy")
PEERS = PROXIES[1:]
PATHS = ("direct", *PROXIES)
PROXY_NAMES = {"direct": "direct", "nginx": "nginx (in image)", "haproxy": "HAProxy", "caddy": "Caddy"}
CONNECTIONS = (8, 64)
# Where the peers listen inside the app container's network namespace (any free port other than the services').
PEER_PORTS = {"haproxy": 18081, "caddy": 18082}
# Targets of issue 18. The API route is the cheap one: nginx's added p50 there is the hop's own cost.
PAGE_SHARE = 0.95  # the web page through nginx, as a share of direct requests/s
P50_ADDED_LIMIT_US = 150.0  # nginx's added p50 on the API route at 8 connections
P50_TARGET_CONNECTIONS = 8
PEER_MARGIN = 0.05  # nginx within 5% of the best peer, on requests/s and on p99


@dataclass(frozen=True)
class BenchRoute:
    """A route the proxy section loads: `key` names its figures, `path` is requested, `service` answers it."""

    key: str  # "api" (the health route) or "page" ("/")
    path: str
    service: str
    port: int
    why: str = ""


def bench_routes(cfg: Any) -> tuple[BenchRoute, ...]:
    """The two routes the proxy section measures, from atbb.yaml alone: health.path and "/".

    health.path is the one route every config must have and whose answer is cheap by design (a probe runs
    it every few seconds), so it stands for the app's API; "/" is the page people load. Each goes to the
    service atbb.yaml's routes send it to, exactly as nginx does. A config whose health path is "/" gets
    one route.
    """
    out: list[BenchRoute] = []
    wanted = (
        ("api", cfg.health.path, f"health.path in {cfg.file().name}"),
        ("page", "/", "the page at /"),
    )
    for key, path, why in wanted:
        if any(r.path == path for r in out):
            continue
        route = routing.resolve(cfg.routes, path)
        port = cfg.services[route.service].port
        out.append(BenchRoute(key, path, route.service, int(port), why))
    return tuple(out)


# Routes for the catalog when no config is at hand (unit tests, the shape of a document): the forum's.
DEFAULT_ROUTES = (
    BenchRoute("api", "/api/health", "appview", 3000, "health.path"),
    BenchRoute("page", "/", "web", 3001, "the page at /"),
)


def catalog(
    *, quick: bool = False, complete: bool = True, routes: Sequence[BenchRoute] = DEFAULT_ROUTES
) -> tuple[Spec, ...]:
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
        Spec("build.cold_seconds", "build", "cold build (--no-cache, empty cache mounts)", "s"),
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
            Target("ratio", "<=", 0.30, "≤ 30% of cold"),
        ),
        Spec(
            "build.dependency_added_seconds",
            "build",
            "rebuild after a dependency was added",
            "s",
            "cold",
            Target("ratio", "<=", 0.50, "≤ 50% of cold"),
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
        Spec("image.added_bytes", "image", "bytes the kit image adds over the base", "bytes"),
        Spec(
            "image.added_vs_needs_bytes",
            "image",
            "bytes added over the base (kit vs the services' needs)",
            "bytes",
            "services' needs",
            Target("ratio", "<=", 1.0, "≤ the services' needs"),
            note="needs: each service's production dependencies and build outputs, summed over services",
        ),
        Spec(
            "image.added_without_migrate_bytes",
            "image",
            "bytes added over the base without the migrate package (kit vs the services' needs)",
            "bytes",
            "services' needs",
        ),
        Spec("image.system_packages_bytes", "image", "of the bytes added: nginx and tini (distro packages)", "bytes"),
        Spec("image.migrate_bytes", "image", "of the bytes added: the migrate package (/migrate)", "bytes"),
        Spec(
            "start.first_200_seconds",
            "start",
            "docker run → first 200 on the health path via nginx",
            "s",
            target=Target("value", "<", 2.0, "< 2 s"),
        ),
        Spec("start.healthy_seconds", "start", "docker run → HEALTHCHECK healthy", "s"),
        Spec(
            "start.healthy_after_first_200_seconds",
            "start",
            "first 200 → HEALTHCHECK healthy",
            "s",
            target=Target("value", "<=", 2.0, "≤ 2 s"),
        ),
    ]
    for route in routes:
        for conns in CONNECTIONS:
            specs.extend(_proxy_specs(route, conns))
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


def _proxy_specs(route: BenchRoute, conns: int) -> list[Spec]:
    where = f"{route.path} c{conns}"
    key = f"proxy.{route.key}.c{conns}"
    direct = f"{route.service} direct"
    specs = []
    for proxy in PROXIES:
        name = PROXY_NAMES[proxy]
        rps_target = None
        if proxy == "nginx" and route.key == "page":
            rps_target = Target("ratio", ">=", PAGE_SHARE, f"≥ {PAGE_SHARE:.0%} of direct")
        p50_target = None
        if proxy == "nginx" and route.key == "api" and conns == P50_TARGET_CONNECTIONS:
            p50_target = Target("value", "<=", P50_ADDED_LIMIT_US, f"≤ {P50_ADDED_LIMIT_US:g} µs")
        specs += [
            Spec(f"{key}.{proxy}.rps", "proxy", f"{where}: requests/s via {name}", "rps", direct, rps_target),
            Spec(
                f"{key}.{proxy}.p50_added_us", "proxy", f"{where}: p50 added by {name}", "us", "direct p50", p50_target
            ),
            Spec(f"{key}.{proxy}.p99_added_us", "proxy", f"{where}: p99 added by {name}", "us", "direct p99"),
        ]
    specs += [
        Spec(
            f"{key}.nginx_vs_best_peer.rps",
            "proxy",
            f"{where}: requests/s, nginx vs the best peer",
            "rps",
            "best peer",
            Target("ratio", ">=", 1 - PEER_MARGIN, f"≥ {1 - PEER_MARGIN:.0%} of the best peer"),
        ),
        Spec(
            f"{key}.nginx_vs_best_peer.p99_ms",
            "proxy",
            f"{where}: p99, nginx vs the best peer",
            "ms",
            "best peer",
            Target("ratio", "<=", 1 + PEER_MARGIN, f"≤ {1 + PEER_MARGIN:.2f}× the best peer"),
            ratio_as="multiple",
        ),
    ]
    return specs


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


def rotation(paths: Sequence[str], rounds: int) -> tuple[str, ...]:
    """Order of the wrk segments: every path once per round, the order rotated each round and reversed
    every other round (for two paths: A B B A A B ...).

    All paths then sample the same stretch of a drifting background load (others' builds on a shared
    machine), and none always runs right after the same neighbour, instead of one path getting the quiet
    minute and another the busy one.
    """
    out: list[str] = []
    n = len(paths)
    for r in range(rounds):
        # With two paths a rotation is a reversal: leave it out there, so two paths run A B B A A B ...
        shift = (r // 2) % n if n > 2 else 0
        order = [paths[(shift + i) % n] for i in range(n)]
        out.extend(order if r % 2 == 0 else reversed(order))
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


def cell_summary(stats: Mapping[str, PathStats]) -> str:
    """One line per cell for the terminal: direct, then each proxy's share and added p50/p99."""
    d = stats["direct"]
    parts = [f"direct {d.rps:,.0f} req/s, p50 {d.p50_ms * 1000:.0f} µs, p99 {d.p99_ms * 1000:.0f} µs"]
    for proxy in PROXIES:
        s = stats[proxy]
        parts.append(
            f"{proxy} {s.rps:,.0f} ({s.rps / d.rps:.0%}), "
            f"{(s.p50_ms - d.p50_ms) * 1000:+.0f}/{(s.p99_ms - d.p99_ms) * 1000:+.0f} µs"
        )
    return "; ".join(parts)


def best_peer(stats: Mapping[str, PathStats], what: str) -> str:
    """The peer with the most requests/s (`what` = "rps") or the lowest p99 (`what` = "p99")."""
    if what == "rps":
        return max(PEERS, key=lambda p: stats[p].rps)
    return min(PEERS, key=lambda p: stats[p].p99_ms)


def proxy_figures(index: Mapping[str, Spec], route: str, conns: int, stats: Mapping[str, PathStats]) -> list[Figure]:
    """The figures of one (route, connections) cell from each path's summary: direct and every proxy."""
    key = f"proxy.{route}.c{conns}"
    direct = stats["direct"]
    figures = []
    for proxy in PROXIES:
        s = stats[proxy]
        note = ""
        if direct.errors or s.errors:
            note = f"errors: {direct.errors} direct, {s.errors} via {proxy} (socket errors + non-2xx)"
        figures += [
            Figure(index[f"{key}.{proxy}.rps"], s.rps, direct.rps, note=note),
            Figure(index[f"{key}.{proxy}.p50_added_us"], (s.p50_ms - direct.p50_ms) * 1000, direct.p50_ms * 1000),
            Figure(index[f"{key}.{proxy}.p99_added_us"], (s.p99_ms - direct.p99_ms) * 1000, direct.p99_ms * 1000),
        ]
    by_rps, by_p99 = best_peer(stats, "rps"), best_peer(stats, "p99")
    nginx = stats["nginx"]
    figures += [
        Figure(index[f"{key}.nginx_vs_best_peer.rps"], nginx.rps, stats[by_rps].rps, note=f"best peer: {by_rps}"),
        Figure(
            index[f"{key}.nginx_vs_best_peer.p99_ms"], nginx.p99_ms, stats[by_p99].p99_ms, note=f"best peer: {by_p99}"
        ),
    ]
    return figures


# ---------------------------------------------------------------------------------------------------------
# The peers' configurations (bench/haproxy.cfg.template, bench/Caddyfile.template)

BENCH_DIR = KIT_ROOT / "bench"
PEER_TEMPLATES = {"haproxy": "haproxy.cfg.template", "caddy": "Caddyfile.template"}
PEER_HEADER = "# GENERATED by atbb_kit/ops/bench.py for `inv bench` from atbb.yaml and {template}. NOT for deployment."


class _PeerTemplate(Template):
    delimiter = "%%"  # as nginx/nginx.conf.template: "$" and "{" mean something in both files


def _haproxy_quote(text: str) -> str:
    # Header values are log-format strings in HAProxy: "%" must be doubled, and quotes keep spaces.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def _caddy_quote(text: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError(f"a header value with braces cannot be written to a Caddyfile: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _peer_routes(cfg: Any) -> list[Any]:
    """The host-less routes, in nginx's precedence order. Host routes are left out: the bench sends no Host."""
    return list(routing.servers(cfg.routes)[0].routes)


def _haproxy(cfg: Any, hidden: list[str], added: list[tuple[str, str]]) -> dict[str, str]:
    responses = [f"    http-response del-header {name}" for name in hidden]
    responses += [f"    http-response set-header {name} {_haproxy_quote(value)}" for name, value in added]
    uses, default = [], None
    static: list[str] = []
    for route in _peer_routes(cfg):
        backend = f"atbb_{route.service}"
        if route.match == "exact":
            cond = f"{{ path {route.path} }}"
        elif route.path == "/":
            default = backend
            cond = ""
        else:
            cond = f"{{ path_beg {route.path} }}"
        if cond:
            uses.append(f"    use_backend {backend} if {cond}")
        if route.cache == "immutable":
            static.append(cond or "TRUE")
    if default:
        uses.append(f"    default_backend {default}")
    if static:
        # The path is gone by the time the response arrives: remember at request time that it was an asset.
        uses.insert(0, f"    http-request set-var(txn.atbb_static) bool(true) if {' || '.join(static)}")
        cache = _haproxy_quote(nginx_conf.STATIC_CACHE_CONTROL)
        responses += [
            "    http-response del-header Expires if { var(txn.atbb_static) -m bool }",
            f"    http-response set-header Cache-Control {cache} if {{ var(txn.atbb_static) -m bool }}",
        ]
    used = dict.fromkeys(r.service for r in cfg.routes)
    backends = [f"backend atbb_{name}\n    server {name} 127.0.0.1:{int(cfg.services[name].port)}" for name in used]
    return {
        "response_headers": "\n".join(responses),
        "use_backends": "\n".join(uses),
        "backends": "\n\n".join(backends),
    }


def _caddy(cfg: Any, hidden: list[str], added: list[tuple[str, str]]) -> dict[str, str]:
    blocks = []
    for route in _peer_routes(cfg):
        if route.match == "exact":
            matcher = f" {route.path}"
        elif route.path == "/":
            matcher = ""
        else:
            matcher = f" {route.path}*"
        downs = [f"-{name}" for name in hidden] + [f"{name} {_caddy_quote(value)}" for name, value in added]
        if route.cache == "immutable":
            downs += ["-Expires", f"Cache-Control {_caddy_quote(nginx_conf.STATIC_CACHE_CONTROL)}"]
        port = int(cfg.services[route.service].port)
        lines = [
            f"\thandle{matcher} {{",
            f"\t\treverse_proxy 127.0.0.1:{port} {{",
            # X-Forwarded-For, -Proto and -Host are Caddy's own defaults; these are the two nginx adds.
            "\t\t\theader_up X-Real-IP {remote_host}",
            "\t\t\theader_up X-Request-ID {http.request.uuid}",
            *[f"\t\t\theader_down {d}" for d in downs],
            "\t\t\ttransport http {",
            # nginx: keepalive 64 idle upstream connections, closed after 4 s (before Node's 5 s).
            f"\t\t\t\tkeepalive {_seconds(UPSTREAM_IDLE)}",
            f"\t\t\t\tkeepalive_idle_conns_per_host {UPSTREAM_IDLE_CONNS}",
            "\t\t\t}",
            "\t\t}",
            "\t}",
        ]
        blocks.append("\n".join(lines))
    return {"handles": "\n".join(blocks)}


UPSTREAM_IDLE = 4.0
UPSTREAM_IDLE_CONNS = 64


def _seconds(value: float) -> str:
    return f"{value:g}s"


def render_peer_config(kind: str, cfg: Any, *, port: int, threads: int) -> str:
    """HAProxy's or Caddy's configuration for `cfg`: atbb.yaml's routes, upstream ports and headers."""
    template_name = PEER_TEMPLATES[kind]
    hidden, added = nginx_conf.header_policy(cfg)
    values = _haproxy(cfg, hidden, added) if kind == "haproxy" else _caddy(cfg, hidden, added)
    source = (BENCH_DIR / template_name).read_text(encoding="utf-8").splitlines(keepends=True)
    template = _PeerTemplate("".join(line for line in source if not line.startswith("##")))
    limits = cfg.nginx
    return template.substitute(
        header=PEER_HEADER.format(template=f"bench/{template_name}"),
        port=str(port),
        threads=str(threads),
        maxconn=str(limits.worker_connections),
        header_timeout=f"{limits.client_header_timeout}s",
        client_timeout=f"{limits.send_timeout}s",
        keepalive_timeout=f"{limits.keepalive_timeout}s",
        **values,
    )


_STEP = re.compile(r"^#(\d+) \[(?!internal\])")
_CACHED = re.compile(r"^#(\d+) CACHED\s*$")


def build_steps(output: str) -> dict[str, int]:
    """Dockerfile steps in BuildKit's plain progress output: how many there were and how many were cached."""
    steps = {m.group(1) for line in output.splitlines() if (m := _STEP.match(line))}
    cached = {m.group(1) for line in output.splitlines() if (m := _CACHED.match(line))}
    return {"steps": len(steps), "cached": len(cached & steps)}


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
    pool = apps or candidates
    return pool[0] if pool else None


# ---------------------------------------------------------------------------------------------------------
# The image: its layers, and what each service needs at run time


def layer_kind(created_by: str) -> str:
    """Which part of docker/Dockerfile's runtime stage a layer is, from the instruction that made it."""
    text = created_by.replace("\t", " ")
    if "COPY" in text and "/migrate/" in text:
        return "migrate package"
    if "RUN" in text and "nginx tini" in text:
        return "system packages"
    return "other"


# In the build stage (WORKDIR /src): for each workspace package folder given, the real folders of its
# production dependency closure, one JSON line per package. It follows pnpm's layout, not `pnpm list`
# (whose JSON leaves out the children of "deduped" entries): a workspace package's dependencies are those
# its package.json names (dependencies, optional and peer), found through its node_modules links; an
# external package's are the links next to it in node_modules/.pnpm/<id>/node_modules, which pnpm fills
# with exactly its production dependencies and resolved peers.
NEEDS_WALK_SCRIPT = r"""exec node -e '
const fs = require("fs"), path = require("path");
const real = (p) => { try { return fs.realpathSync(p); } catch { return null; } };
const external = (dir) => dir.includes("/node_modules/");
function children(dir) {
  if (!external(dir)) {
    const pj = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    const names = Object.keys({ ...pj.dependencies, ...pj.optionalDependencies, ...pj.peerDependencies });
    return names.map((n) => real(path.join(dir, "node_modules", n))).filter(Boolean);
  }
  const nm = dir.slice(0, dir.lastIndexOf("/node_modules/") + "/node_modules".length);
  const out = [];
  for (const e of fs.readdirSync(nm)) {
    if (e === ".bin") continue;
    const names = e.startsWith("@") ? fs.readdirSync(path.join(nm, e)).map((s) => e + "/" + s) : [e];
    for (const n of names) { const r = real(path.join(nm, n)); if (r && r !== dir) out.push(r); }
  }
  return out;
}
for (const start of process.argv.slice(1)) {
  const seen = new Set([real(start)]);
  const todo = [...seen];
  while (todo.length) for (const c of children(todo.pop())) if (!seen.has(c)) { seen.add(c); todo.push(c); }
  const all = [...seen].sort();
  console.log(JSON.stringify({ external: all.filter(external), workspace: all.filter((d) => !external(d)) }));
}
' "$@"
"""
# What runtime.include keeps, exactly as docker/Dockerfile's build stage finds it.
NEEDS_FIND_SCRIPT = """set -eu
set -f
for pattern; do
  find . \\( -name node_modules -o -name .turbo \\) -prune -o -path "./$pattern" -prune -print
done"""
# Bytes of a tar of the given paths, as a layer holding them would weigh.
NEEDS_TAR_SCRIPT = """set -eu
tar -C / -cf - "$@" | wc -c"""


def needs_paths(walk: str, included: str, packages: Sequence[str], root: str = "/src") -> dict[str, list[str]]:
    """For each package: the paths (relative to /) its service needs at run time.

    `walk`: NEEDS_WALK_SCRIPT's output, one line per package, in `packages` order. `included`: the
    runtime.include matches (`./apps/api/dist`...), one per line, relative to `root`. An external
    dependency counts with its whole folder; a workspace package with its package.json and the
    runtime.include matches inside it (its sources and build configuration stay out, as in the image).
    """
    found = [line.strip().removeprefix("./") for line in included.splitlines() if line.strip()]
    docs = [line for line in walk.splitlines() if line.strip()]
    if len(docs) != len(packages):
        raise ValueError(f"expected {len(packages)} dependency closures, got {len(docs)}")
    out: dict[str, list[str]] = {}
    for pkg, text in zip(packages, docs, strict=True):
        data = json.loads(text)
        paths = set(data["external"])
        for folder in data["workspace"]:
            rel = folder.removeprefix(root).strip("/")
            paths.add(f"{folder}/package.json")
            paths.update(f"{root}/{m}" for m in found if rel == "" or m == rel or m.startswith(rel + "/"))
        out[pkg] = sorted(p.lstrip("/") for p in paths)
    return out


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
    if unit == "us":
        return f"{value:,.0f} µs"
    return f"{value:g} {unit}"


def format_ratio(ratio: float | None, style: str = "share") -> str:
    if ratio is None:
        return "—"
    shown = round(ratio, 2) + 0.0  # both styles show 2 significant decimals; + 0.0 turns -0.0 into 0.0 ("0%")
    return f"{shown:.2f}×" if style == "multiple" else f"{shown:.0%}"


COLUMNS = ("figure", "value", "baseline", "ratio", "target", "met")


def table_rows(figures: Sequence[Figure]) -> list[tuple[str, ...]]:
    """The results table as text cells, shared by the terminal table and the Markdown file."""
    rows: list[tuple[str, ...]] = []
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


def render_markdown(doc: Mapping[str, Any], figures: Sequence[Figure], charts: Mapping[str, str] | None = None) -> str:
    """docs/performance-results.md: machine facts, the table, the notes that qualify the numbers, and the
    charts (`charts`: section -> path relative to the Markdown file)."""
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
    if charts:
        lines += ["", "## Charts", ""]
        for section in SECTIONS:
            if section in charts:
                lines += [f"### {section}", "", f"![{section} chart]({charts[section]})", ""]
        lines.pop()
    return "\n".join(lines) + "\n"


def print_table(doc: Mapping[str, Any], figures: Sequence[Figure]) -> None:
    from rich.markup import escape  # rich: kept out of `inv --list`

    m = doc["machine"]
    caption = (
        f"{m['cores']} cores, {m['memory_bytes'] / 2**30:.0f} GiB, Docker {m['docker_server_version']}, "
        f"base {m['base_image']['ref']}, kit {str(m['kit_git_sha'])[:12]}"
        f"{' (dirty)' if m['kit_dirty'] else ''}, load {m['load_average_start']} → {m['load_average_end']}"
    )
    columns = [
        Column(col, justify="right" if col in ("value", "ratio") else "left", markup=col == "met") for col in COLUMNS
    ]
    style = {MET: "green", NOT_MET: "bold red", NOT_MEASURED: "yellow"}
    rows = [
        (*row[:-1], f"[{style[row[-1]]}]{row[-1]}[/]" if row[-1] in style else escape(row[-1]))
        for row in table_rows(figures)
    ]
    console.table(f"inv bench ({doc['mode']}) — run {doc['run_id']}", columns, rows, caption=caption)


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
