"""`inv bench`: the measuring half. Builds, starts and loads real containers; `bench.py` judges the numbers.

Every object a run creates is named `atbb-bench-<run id>-*` (images `atbb-bench-<run id>:<what>`) and
labelled `atbb.bench=<run id>`. The network, PostgreSQL, migration, app containers, readiness waits,
signal guard and cleanup are the run's throwaway stack (ops/stack.py), which removes exactly that, on
success, failure, Ctrl-C and SIGTERM; an interrupted run exits 130 or 143 after it. Nothing is published
on a host port: the host reaches the containers on the private network Docker created for the run, so
parallel runs (and other people's stacks) never collide on a port.

What is deliberately left behind: BuildKit's build cache. It cannot be pruned per run without pruning
other people's cache too; `docker builder prune` reclaims it when you choose.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atbb_kit.commands import docker as commands
from atbb_kit.commands import pnpm
from atbb_kit.commands.load import invoke_command, peer_command, with_args, with_label, wrk_command
from atbb_kit.commands.netns import netns_probe, netns_python
from atbb_kit.core.config import load_config
from atbb_kit.core.errors import KitError
from atbb_kit.infra import engine
from atbb_kit.infra.checkout import read_context
from atbb_kit.infra.http import TRANSPORT_ERRORS
from atbb_kit.infra.runner import Background, Result, Runner
from atbb_kit.ops.bench import (
    CONNECTIONS,
    LABEL,
    MB,
    NAME_PREFIX,
    NEEDS_FIND_SCRIPT,
    NEEDS_TAR_SCRIPT,
    NEEDS_WALK_SCRIPT,
    PATHS,
    PEER_PORTS,
    PEER_TEMPLATES,
    SECTIONS,
    Figure,
    PathStats,
    Settings,
    WrkResult,
    bench_routes,
    build_steps,
    catalog,
    cell_summary,
    document,
    fill,
    layer_kind,
    median,
    needs_paths,
    parse_wrk,
    pick_source_file,
    proxy_figures,
    render_peer_config,
    rotation,
    settings_for,
    spec_index,
)
from atbb_kit.ops.stack import App, Stack, StepFailed, log_tail

if TYPE_CHECKING:
    from atbb_kit.core.config import Config

WAIT_SECONDS = 120.0
# The dependency the "dependency added" rebuild adds: tiny, no dependencies of its own, long stable.
DEPENDENCIES = (("ms", "2.1.3"), ("is-number", "7.0.0"))
BARE_TASKS = '''"""The baseline of `inv bench`'s CLI timings: Invoke with one task and nothing else."""
from invoke import task


@task
def hello(c):
    """Say hello."""
    print("hello")
'''

# Directories never worth copying into the build workspace (the .dockerignore drops them anyway); the
# second set only at the kit root, where a monorepo's own folders of those names cannot be.
_SKIP_ANYWHERE = frozenset(
    {".git", "node_modules", ".turbo", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
)
_SKIP_AT_ROOT = frozenset({".venv", "venv", "build"})


class SectionFailed(KitError):
    """A measurement could not be taken; the run goes on with the next section."""


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_average() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def memory_bytes() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return 0


@dataclass
class BenchRun:
    cfg: Config  # of the real kit; the build workspace gets its own copy
    stack: Stack  # the run's names, labels, network, PostgreSQL, app containers and cleanup
    runner: Runner
    settings: Settings
    base: str
    nginx_conf: Path | None = None
    say: Callable[[str], None] = lambda _: None

    figures: dict[str, Figure] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    workspace: Path | None = None
    ws_cfg: Any = None
    cli: Any = None
    _temp_dirs: list[Path] = field(default_factory=list)
    _processes: list[Background] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.routes = bench_routes(self.cfg)
        self.index = spec_index(catalog(quick=self.settings.quick, routes=self.routes))

    # --- names -----------------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.stack.run_id

    @property
    def prefix(self) -> str:
        return self.stack.prefix

    @property
    def client(self) -> Any:
        return self.stack.client

    @property
    def postgres_image(self) -> str:
        return self.stack.postgres_image

    def image(self, what: str) -> str:
        return f"{self.prefix}:{what}"

    def record(self, key: str, value: float | None, baseline: float | None = None, **kw: Any) -> Figure:
        fig = Figure(self.index[key], value, baseline, **kw)
        self.figures[key] = fig
        return fig

    # --- the build workspace ---------------------------------------------------------------------------

    def prepare_workspace(self) -> Path:
        """A private copy of the kit (the build context and atbb.yaml), so edits never touch the real tree."""
        if self.workspace is not None:
            return self.workspace
        # The build context is the kit root (docker/, nginx/ and every bundled example), wherever the
        # config file sits inside it.
        root = commands.KIT_ROOT
        ws = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-kit-"))
        self._temp_dirs.append(ws)

        def ignore(directory: str, names: list[str]) -> set[str]:
            skip = {n for n in names if n in _SKIP_ANYWHERE or n.endswith(".egg-info")}
            if Path(directory).resolve() == root:
                skip |= {n for n in names if n in _SKIP_AT_ROOT}
            return skip

        shutil.copytree(root, ws, symlinks=True, ignore=ignore, dirs_exist_ok=True)
        if self.nginx_conf is not None:
            # Over the config's own rendered nginx.conf (nginx.conf in atbb.yaml), wherever it lives.
            shutil.copyfile(self.nginx_conf, ws / self.cfg.nginx_conf_path().relative_to(root))
        config_path = self.cfg.file()
        try:
            rel = config_path.resolve().relative_to(root)
        except ValueError:  # ATBB_CONFIG outside the kit root
            rel = Path(config_path.name)
            shutil.copyfile(config_path, ws / rel)
        environ = {k: v for k, v in os.environ.items() if k != "ATBB_CONFIG"}
        self.ws_cfg = load_config(ws / rel, environ=environ, overrides={"image.base": self.base})
        self.workspace = ws
        return ws

    def _builder(self):
        if self.cli is None:
            self.cli = engine.detect_cli(self.runner)
        return self.cli

    def _build_command(self, tag: str, *, dockerfile: Path | None = None, no_cache: bool = False, args=None):
        """`docker build` of the workspace with the kit's own argv builder, labelled with this run."""
        ws = self.prepare_workspace()
        cli = self._builder()
        cmd = commands.docker_build(
            cli.path,
            cli.builder,
            context=ws,
            dockerfile=dockerfile or ws / "docker" / "Dockerfile",
            tags=[tag],
            args=args if args is not None else commands.build_args(self.ws_cfg, context=ws),
            labels={},
            no_cache=no_cache,
        )
        return with_label(cmd, LABEL, self.run_id)

    def docker_build(self, tag: str, *, dockerfile: Path | None = None, no_cache: bool = False, args=None) -> float:
        """One `docker build` of the workspace with the kit's own argv builder; returns its wall time."""
        cmd = self._build_command(tag, dockerfile=dockerfile, no_cache=no_cache, args=args)
        result = self.runner.run(cmd, capture=True, quiet=True, check=False)
        if not result.ok:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise SectionFailed(f"docker build of {tag} failed:\n{tail}", "see the build output above")
        # Which steps ran and which came from the cache: a "nothing changed" rebuild that ran steps means
        # the build cache was pruned or collected under it (a shared engine), not that the Dockerfile broke.
        self.details.setdefault("build_steps", []).append({"tag": tag, **build_steps(result.stdout + result.stderr)})
        return result.seconds

    def ensure_kit_image(self) -> str:
        """The kit's image for the image, start and proxy sections: the build section's, else a cached build."""
        ref = self.image("kit")
        if self._image_attrs(ref) is None:
            self.say(f"==> building {ref} (cached build; `--only build` times builds)")
            self.docker_build(ref)
        return ref

    def _image_attrs(self, ref: str) -> dict[str, Any] | None:
        from docker.errors import ImageNotFound

        try:
            return self.client.images.get(ref).attrs
        except ImageNotFound:
            return None

    # --- sections --------------------------------------------------------------------------------------

    def section_cli(self) -> None:
        root = self.cfg.root()
        bare = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-cli-"))
        self._temp_dirs.append(bare)
        (bare / "tasks.py").write_text(BARE_TASKS, encoding="utf-8")
        # The bare baseline runs the same interpreter: startup costs both pay (site, .pth files) cancel out.
        commands_ = {
            "cli.bare_list_seconds": invoke_command(bare, "--list"),
            "cli.list_seconds": invoke_command(root, "--list"),
            "cli.tags_seconds": invoke_command(root, "tags"),
            "cli.config_check_seconds": invoke_command(root, "config", "--check"),
        }
        keys = list(commands_)
        times: dict[str, list[float]] = {k: [] for k in keys}
        failures: dict[str, str] = {}
        # Round 0 warms the page cache and the bytecode caches and is not counted. Each round rotates the
        # order, and rounds interleave the commands, so a burst of someone else's load hits them alike.
        for rnd in range(self.settings.cli_runs + 1):
            for key in keys[rnd % len(keys) :] + keys[: rnd % len(keys)]:
                if key in failures:
                    continue
                started = time.perf_counter()
                proc = self.runner.run(commands_[key], capture=True, quiet=True, check=False)
                seconds = time.perf_counter() - started
                if proc.returncode != 0:
                    lines = (proc.stderr or proc.stdout).strip().splitlines()
                    failures[key] = f"exit {proc.returncode}: {(lines or ['no output'])[-1][:160]}"
                elif rnd:
                    times[key].append(seconds)
        bare_median = median(times["cli.bare_list_seconds"]) if times["cli.bare_list_seconds"] else None
        for key in keys:
            samples = tuple(times[key])
            if key in failures:
                self.record(key, None, bare_median, note=failures[key])
                continue
            value = median(samples)
            self.record(key, value, None if key == "cli.bare_list_seconds" else bare_median, samples=samples)
        self.details["cli"] = {
            "commands": {k: list(cmd.argv[2:]) for k, cmd in commands_.items()},
            "failures": failures,
        }
        if failures:
            raise SectionFailed("; ".join(f"{k}: {v}" for k, v in failures.items()))

    def section_build(self) -> None:
        self.prepare_workspace()
        mono = self.ws_cfg.monorepo_dir()
        # The run id in a comment of the workspace file makes every layer from `pnpm fetch` on this run's
        # own, so the dependency-added rebuild cannot reuse what an earlier bench run left in the cache.
        workspace_yaml = mono / "pnpm-workspace.yaml"
        if workspace_yaml.is_file():
            with workspace_yaml.open("a", encoding="utf-8") as fh:
                fh.write(f"\n# atbb-bench run {self.run_id}: keeps this run's build cache its own\n")
        ref = self.image("kit")
        info: dict[str, Any] = {"builder": self._builder().builder, "client": self._builder().path}
        self.details["build"] = info

        self.say("==> build: cold (--no-cache, empty pnpm store and turbo cache)")
        # --no-cache rebuilds every layer but keeps BuildKit's cache mounts: empty them, or "cold" would
        # reuse the previous run's downloads and turbo outputs.
        self.runner.run(commands.docker_prune_build_cache_mounts(self._builder().path), capture=True, quiet=True)
        cold = self.docker_build(ref, no_cache=True)
        self.record("build.cold_seconds", cold)
        cold_id = self.client.images.get(ref).id
        self.say(f"    {cold:.1f} s")

        self.say("==> build: again, nothing changed")
        same = self.docker_build(ref)
        info["no_change_same_image"] = self.client.images.get(ref).id == cold_id
        self.record("build.no_change_seconds", same, cold)
        self.say(f"    {same:.1f} s")

        tracked = [str(p.relative_to(mono)) for p in mono.rglob("*") if p.is_file()]
        source = pick_source_file(tracked)
        if source is None:
            raise SectionFailed(f"no source file under {self.ws_cfg.monorepo}/*/src to change")
        with (mono / source).open("a", encoding="utf-8") as fh:
            fh.write(f"\n// atbb-bench {self.run_id}: one changed source file\n")
        info["source_file"] = source if self.ws_cfg.monorepo in ("", ".") else f"{self.ws_cfg.monorepo}/{source}"
        self.say(f"==> build: after changing {info['source_file']}")
        changed = self.docker_build(self.image("kit-source"))
        self.record("build.source_change_seconds", changed, cold)
        self.say(f"    {changed:.1f} s")

        if not self.settings.dependency_step:
            self.record("build.dependency_added_seconds", None, cold, note="skipped with --quick")
            return
        name, version, manifest = self._add_dependency(mono)
        info["dependency"] = f"{name}@{version} in {manifest}"
        self.say(f"==> build: after adding {name}@{version} (pnpm install --lockfile-only)")
        lock = self.runner.run(
            pnpm.pnpm(mono, "install", "--lockfile-only", "--ignore-scripts"), capture=True, quiet=True, check=False
        )
        info["lockfile_update_seconds"] = lock.seconds
        if not lock.ok:
            note = f"pnpm install --lockfile-only failed: {_last_line(lock)}"
            self.record("build.dependency_added_seconds", None, cold, note=note)
            raise SectionFailed(note, "the npm registry must be reachable to add a dependency")
        added = self.docker_build(self.image("kit-dependency"))
        self.record("build.dependency_added_seconds", added, cold)
        self.say(f"    {added:.1f} s")

    def _add_dependency(self, mono: Path) -> tuple[str, str, str]:
        # The first service that names its workspace package: the one whose dependencies change.
        wanted = next((svc.package for svc in self.ws_cfg.services.values() if svc.package), None)
        if wanted is None:
            raise SectionFailed("no service names its workspace package (services.*.package in atbb.yaml)")
        for path, data in _workspace_packages(mono):
            if data.get("name") != wanted:
                continue
            deps = data.setdefault("dependencies", {})
            for name, version in DEPENDENCIES:
                if name not in deps:
                    deps[name] = version
                    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
                    return name, version, str(path.relative_to(mono))
            raise SectionFailed(f"{wanted} already depends on every candidate ({DEPENDENCIES})")
        raise SectionFailed(f"no package.json named {wanted} (services.*.package) under the monorepo")

    def section_image(self) -> None:
        kit_ref = self.ensure_kit_image()
        ws = self.prepare_workspace()
        naive_ref = self.image("naive")
        kit_args = commands.build_args(self.ws_cfg, context=ws)
        args = {key: kit_args[key] for key in ("NODE_BASE", "PNPM_VERSION", "MONOREPO", "NGINX_CONF")}
        self.say("==> image: building the naive single-stage image (bench/Dockerfile.naive)")
        naive_seconds = self.docker_build(naive_ref, dockerfile=ws / "bench" / "Dockerfile.naive", args=args)
        sizes = {}
        for what, ref in (("base", self.base), ("kit", kit_ref), ("naive", naive_ref)):
            attrs = self._image_attrs(ref)
            if attrs is None:
                raise SectionFailed(f"image {ref} is not in the local engine")
            # The same measure as `inv image` and its budget: the platform's unpacked layers on any engine.
            sizes[what] = {"ref": ref, "id": attrs["Id"], "bytes": engine.layers_size(attrs)}
        base, kit, naive = sizes["base"]["bytes"], sizes["kit"]["bytes"], sizes["naive"]["bytes"]
        self.record("image.base_bytes", base)
        self.record("image.kit_bytes", kit, naive)
        self.record("image.added_vs_naive_bytes", kit - base, naive - base)
        self.record("image.added_bytes", kit - base)
        layers = self._added_layers(kit_ref, self.base)
        system = sum(layer["bytes"] for layer in layers if layer_kind(layer["created_by"]) == "system packages")
        migrate = sum(layer["bytes"] for layer in layers if layer_kind(layer["created_by"]) == "migrate package")
        self.record("image.system_packages_bytes", system)
        self.record("image.migrate_bytes", migrate)
        self.details["image"] = {**sizes, "naive_build_seconds": naive_seconds, "kit_layers": layers}
        self.say(f"    kit adds {(kit - base) / MB:.1f} MB, naive adds {(naive - base) / MB:.1f} MB")
        self.say("==> image: what each service needs at run time (pnpm list --prod in the build stage)")
        needs = self._service_needs()
        total = sum(n["bytes"] for n in needs.values())
        self.details["image"]["needs"] = needs
        self.record("image.added_vs_needs_bytes", kit - base, total)
        self.record("image.added_without_migrate_bytes", kit - base - migrate, total)
        self.say(
            f"    the services need {total / MB:.1f} MB together ("
            + ", ".join(f"{name} {n['bytes'] / MB:.1f}" for name, n in needs.items())
            + f"); the image adds {(kit - base) / MB:.1f} MB, of which nginx and tini {system / MB:.1f} MB"
            f" and the migrate package {migrate / MB:.1f} MB"
        )

    def _added_layers(self, ref: str, base_ref: str) -> list[dict[str, Any]]:
        """The layers `ref` adds over `base_ref`, oldest first, with the instruction that made each."""
        history = list(reversed(self.client.images.get(ref).history()))
        skip = len(self.client.images.get(base_ref).history())
        return [
            {"created_by": (h.get("CreatedBy") or "")[:300], "bytes": int(h.get("Size") or 0)} for h in history[skip:]
        ]

    def _service_needs(self) -> dict[str, dict[str, Any]]:
        """Per service: its production dependency closure and the build outputs of its workspace packages.

        Measured in the build stage of the kit's own Dockerfile (everything installed and built): `pnpm list
        --prod --depth Infinity` names each service package's production closure; an external package
        counts whole, a workspace package with its package.json and what runtime.include keeps of it. Bytes
        are those of a tar of the set (what a layer holding it would weigh), per service, so a dependency
        two services share counts twice: the sum is what separate per-service images would add.
        """
        stage = self.image("build-stage")
        cmd = with_args(self._build_command(stage), "--target", "build")
        result = self.runner.run(cmd, capture=True, quiet=True, check=False)
        if not result.ok:
            raise SectionFailed(f"docker build --target build failed: {_last_line(result)}")
        packages = {name: svc.package for name, svc in self.cfg.services.items() if svc.package}
        if not packages:
            raise SectionFailed("no service names its workspace package (services.*.package in atbb.yaml)")
        folders = self._package_folders(set(packages.values()))
        walk = self._run_in(stage, NEEDS_WALK_SCRIPT, *[f"/src/{folders[p]}" for p in packages.values()])
        included = self._run_in(stage, NEEDS_FIND_SCRIPT, *self.cfg.runtime.include)
        sets = needs_paths(walk, included, list(packages.values()))
        needs = {}
        for name, pkg in packages.items():
            paths = sets[pkg]
            size = int(self._run_in(stage, NEEDS_TAR_SCRIPT, *paths).strip() or 0)
            needs[name] = {"package": pkg, "bytes": size, "paths": len(paths)}
        return needs

    def _package_folders(self, names: set[str]) -> dict[str, str]:
        """Workspace package name -> its folder relative to the monorepo root."""
        mono = self.ws_cfg.monorepo_dir()
        found = {}
        for path, data in _workspace_packages(mono):
            name = data.get("name")
            if name in names and name not in found:
                found[name] = str(path.parent.relative_to(mono)) if path.parent != mono else "."
        missing = names - set(found)
        if missing:
            raise SectionFailed(f"no package.json named {', '.join(sorted(missing))} (services.*.package)")
        return found

    def _run_in(self, image: str, script: str, *args: str) -> str:
        """Run a sh script in a labelled throwaway container of `image`; its stdout (fails on a non-zero exit)."""
        container = self.stack.run(
            image,
            f"probe-{secrets.token_hex(3)}",
            command=list(args),
            entrypoint=["sh", "-c", script, "sh"],
            network_disabled=True,
        )
        try:
            code = container.wait(timeout=WAIT_SECONDS)["StatusCode"]
            out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            if code != 0:
                raise SectionFailed(f"a measurement in {image} exited {code}: {log_tail(container)}")
            return out
        finally:
            container.remove(force=True)

    def section_start(self) -> None:
        image = self.ensure_kit_image()
        self.ensure_stack(image)
        runs = []
        for i in range(self.settings.start_runs):
            runs.append(self.measure_start(image, f"start-{i + 1}"))
            self.say(
                f"==> start {i + 1}/{self.settings.start_runs}: first 200 after {runs[-1]['first_200_seconds']:.2f} s,"
                f" healthy after {runs[-1]['healthy_seconds']:.1f} s"
            )
        first = tuple(r["first_200_seconds"] for r in runs)
        healthy = tuple(r["healthy_seconds"] for r in runs)
        gap = tuple(r["healthy_seconds"] - r["first_200_seconds"] for r in runs)
        self.record("start.first_200_seconds", median(first), samples=first)
        self.record("start.healthy_seconds", median(healthy), samples=healthy)
        self.record("start.healthy_after_first_200_seconds", median(gap), samples=gap)
        self.details["start"] = {"runs": runs, "healthcheck": self._healthcheck(image)}

    def _healthcheck(self, image: str) -> dict[str, Any]:
        """The image's HEALTHCHECK schedule as the engine stored it (nanoseconds in the API; seconds here)."""
        attrs = self._image_attrs(image) or {}
        hc = (attrs.get("Config") or {}).get("Healthcheck") or {}
        out: dict[str, Any] = {"test": hc.get("Test")}
        for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
            if key in hc:
                out[key] = hc[key] / 1e9
        out["Retries"] = hc.get("Retries")
        return out

    def section_proxy(self) -> None:
        image = self.ensure_kit_image()
        self.ensure_stack(image)
        app = self.start_app(image, "proxy")
        for route in self.routes:
            self._wait_200(app, route.path)
        container = app.container
        pid = int(container.attrs["State"]["Pid"])
        probe = self.runner.run(netns_probe(pid), check=False, quiet=True)
        if not probe.ok:
            raise SectionFailed(
                f"cannot enter the app container's network namespace ({_last_line(probe) or 'nsenter failed'})",
                "run `inv bench` as root on a Linux Docker engine (nsenter needs CAP_SYS_ADMIN)",
            )
        threads = os.cpu_count() or 1
        configs = self.start_peers(pid, threads)
        s = self.settings
        cells: dict[str, Any] = {}
        self.details["proxy"] = {
            "container": container.name,
            "method": "wrk, HAProxy and Caddy on the host inside the container's network namespace (nsenter --net)",
            "routes": [{"key": r.key, "path": r.path, "service": r.service, "port": r.port} for r in self.routes],
            "paths": list(PATHS),
            "peer_threads": threads,
            "peer_configs": configs,
            "cells": cells,
        }
        ports = {"nginx": 80, **PEER_PORTS}
        all_urls = []
        for route in self.routes:
            all_urls += [f"http://127.0.0.1:{port}{route.path}" for port in (route.port, *ports.values())]
        self._wait_in_namespace(pid, all_urls)
        try:
            for route in self.routes:
                urls = {"direct": f"http://127.0.0.1:{route.port}{route.path}"}
                urls |= {proxy: f"http://127.0.0.1:{port}{route.path}" for proxy, port in ports.items()}
                for conns in CONNECTIONS:
                    load_before = load_average()
                    for which in PATHS:
                        self._wrk(pid, urls[which], conns, s.wrk_warmup_seconds)
                    segments: dict[str, list[WrkResult]] = {which: [] for which in PATHS}
                    for which in rotation(PATHS, s.segments):
                        segments[which].append(self._wrk(pid, urls[which], conns, s.wrk_segment_seconds))
                    stats = {which: PathStats.of(segments[which]) for which in PATHS}
                    for fig in proxy_figures(self.index, route.key, conns, stats):
                        self.figures[fig.spec.key] = fig
                    cells[f"{route.key}.c{conns}"] = {
                        "path": route.path,
                        "connections": conns,
                        "urls": urls,
                        **{which: stats[which].to_json() for which in PATHS},
                        "load_average_before": load_before,
                        "load_average_after": load_average(),
                    }
                    self.say(f"==> proxy {route.path} c{conns}: {cell_summary(stats)}")
        finally:
            self.stop_peers()

    def start_peers(self, pid: int, threads: int) -> dict[str, str]:
        """HAProxy and Caddy, configured from atbb.yaml, in the app container's network namespace."""
        folder = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-peers-"))
        self._temp_dirs.append(folder)
        configs = {}
        for kind, port in PEER_PORTS.items():
            if shutil.which(kind) is None:
                raise SectionFailed(f"{kind} is not installed", f"apt-get install {kind} (scripts/bootstrap.sh)")
            text = render_peer_config(kind, self.cfg, port=port, threads=threads)
            path = folder / PEER_TEMPLATES[kind].removesuffix(".template")
            path.write_text(text, encoding="utf-8")
            configs[kind] = text
            # Caddy keeps state under HOME/XDG folders: a private one, never the invoking user's.
            env = {"HOME": str(folder), "XDG_DATA_HOME": str(folder), "XDG_CONFIG_HOME": str(folder)}
            cmd = replace(peer_command(kind, pid, path), env={**env, "GOMAXPROCS": str(threads)})
            proc = self.runner.start(cmd, log=folder / f"{kind}.log", quiet=True)
            self._processes.append(proc)
            time.sleep(0.2)
            if not proc.running():
                tail = proc.output().strip().splitlines()[-3:]
                raise SectionFailed(f"{kind} exited {proc.returncode} at start: {' / '.join(tail)}")
        return configs

    def _wait_in_namespace(self, pid: int, urls: list[str]) -> None:
        """Until every URL answers 200 from inside the container's network namespace (peers start in ms)."""
        script = (
            "import sys, time, urllib.request\n"
            "deadline = time.monotonic() + 20\n"
            "for url in sys.argv[1:]:\n"
            "    while True:\n"
            "        try:\n"
            "            if urllib.request.urlopen(url, timeout=2).status == 200: break\n"
            "        except Exception as exc:\n"
            "            if time.monotonic() > deadline: sys.exit(f'{url}: {exc}')\n"
            "        time.sleep(0.05)\n"
        )
        cmd = netns_python(pid, script, *urls)
        result = self.runner.run(cmd, capture=True, quiet=True, check=False)
        if not result.ok:
            raise SectionFailed(f"a proxy did not answer 200: {_last_line(result)}")

    def stop_peers(self) -> None:
        while self._processes:
            self._processes.pop().stop(grace=5)

    def _wrk(self, pid: int, url: str, conns: int, seconds: int) -> WrkResult:
        cmd = wrk_command(pid, url, connections=conns, seconds=seconds, threads=self.settings.wrk_threads)
        result = self.runner.run(cmd, capture=True, quiet=True, check=False)
        try:
            return parse_wrk(result.stdout)
        except ValueError as exc:
            raise SectionFailed(f"wrk against {url}: {exc} ({_last_line(result)})") from None

    # --- containers (on the run's stack) --------------------------------------------------------------

    def ensure_stack(self, image: str) -> None:
        """A PostgreSQL and one migration on the run's stack: what the app needs to answer 200."""
        if self.stack.db is None:
            self.stack.start_postgres()
            self.stack.migrate(image)

    def start_app(self, image: str, name: str) -> App:
        """The app as the Compose example runs it, reached on the run's network (no host port)."""
        # No per-request log lines from the services: both wrk paths pay for nginx's access log only.
        env = self.stack.app_env("bench", extra={"LOG_LEVEL": "warn"})
        return self.stack.start_app(image, name, env, publish=False)

    def _wait_200(self, app: App, path: str) -> float:
        """Poll every 10 ms until `path` answers 200; seconds since the container was created."""
        self.stack.wait_answering(
            app, path, accept=lambda resp: resp.status == 200, interval=0.01, check_every=50, follow_redirects=True
        )
        return time.monotonic() - app.started

    def measure_start(self, image: str, name: str) -> dict[str, float]:
        app = self.start_app(image, name)
        run_seconds = time.monotonic() - app.started
        try:
            first = self._wait_200(app, self.cfg.health.path)
            self.stack.wait_healthy(app, interval=0.1)
            healthy = time.monotonic() - app.started
        finally:
            self.stack.remove_app(name)
        return {"docker_run_seconds": run_seconds, "first_200_seconds": first, "healthy_seconds": healthy}

    # --- facts and cleanup -----------------------------------------------------------------------------

    def machine(self) -> dict[str, Any]:
        version = self.client.version()
        ctx = read_context({k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}, self.cfg.root())
        base = self._image_attrs(self.base)
        pg = self._image_attrs(self.postgres_image)
        return {
            "cores": os.cpu_count() or 0,
            "memory_bytes": memory_bytes(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "docker_server_version": version.get("Version", "?"),
            "docker_api_version": version.get("ApiVersion", "?"),
            "builder": self.cli.builder if self.cli else None,
            "base_image": {"ref": self.base, "id": base["Id"] if base else None},
            "postgres_image": {"ref": self.postgres_image, "id": pg["Id"] if pg else None},
            "kit_git_sha": ctx.sha,
            "kit_dirty": ctx.dirty,
            "load_average_start": load_average(),
            "load_average_end": None,
        }

    def cleanup(self) -> None:
        """Stop the proxies and remove the temp folders; the stack removes the engine's objects."""
        self.stop_peers()
        for path in self._temp_dirs:
            shutil.rmtree(path, ignore_errors=True)


def _workspace_packages(mono: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each package.json of the monorepo's own packages (not node_modules'), in path order, parsed."""
    for path in sorted(mono.rglob("package.json")):
        if "node_modules" not in path.parts:
            yield path, json.loads(path.read_text(encoding="utf-8"))


def _failure(exc: BaseException) -> str:
    if isinstance(exc, StepFailed):
        return exc.one_line()
    return str(exc) if isinstance(exc, KitError) else f"{type(exc).__name__}: {exc}"


def _last_line(result: Result) -> str:
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1][:200] if lines else ""


@dataclass
class RunResult:
    """What `inv bench` writes and reports: the document, its figures, failed sections, leftovers."""

    doc: dict[str, Any]
    figures: list[Figure]
    failed: dict[str, str]
    cleanup_problems: list[str]


def run_bench(
    cfg: Config,
    client: Any,
    runner: Runner,
    *,
    quick: bool,
    sections: tuple[str, ...],
    base: str,
    nginx_conf: Path | None,
    say: Callable[[str], None],
) -> RunResult:
    settings = settings_for(quick)
    stack = Stack(
        client, LABEL, NAME_PREFIX, cfg.compose.postgres_image, tuple(cfg.env.required), WAIT_SECONDS, say=say
    )
    bench = BenchRun(cfg, stack, runner, settings, base, nginx_conf=nginx_conf, say=say)
    started_at, started = _now(), time.monotonic()
    say(
        f"==> bench run {bench.run_id} ({'quick' if quick else 'full'}): {', '.join(sections)}; everything it starts"
        f" is named {bench.prefix}-* and labelled {LABEL}={bench.run_id}"
    )
    machine = bench.machine()
    status: dict[str, dict[str, Any]] = {
        name: {"status": "skipped", "error": None, "seconds": 0.0, "load_average_after": None} for name in SECTIONS
    }
    failed: dict[str, str] = {}
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    # What a section may fail with and the run survive; anything else is a kit bug and propagates.
    expected = (KitError, StepFailed, DockerException, RequestException, *TRANSPORT_ERRORS)
    with stack:
        try:
            for name in sections:
                t0 = time.monotonic()
                try:
                    getattr(bench, f"section_{name}")()
                    status[name] = {"status": "ok", "error": None}
                except expected as exc:
                    failed[name] = _failure(exc)
                    status[name] = {"status": "failed", "error": failed[name]}
                    say(f"error: bench section {name}: {failed[name]}")
                status[name]["seconds"] = time.monotonic() - t0
                status[name]["load_average_after"] = load_average()
        finally:
            stack.guard.cleaning = True
            bench.cleanup()
    interrupted = stack.interruption("bench")
    if interrupted is not None:
        raise interrupted
    machine["builder"] = bench.cli.builder if bench.cli else None
    machine["load_average_end"] = load_average()
    complete = tuple(sections) == SECTIONS
    specs = catalog(quick=quick, complete=complete, routes=bench.routes)
    total = time.monotonic() - started
    index = spec_index(specs)
    bench.figures["bench.total_seconds"] = Figure(index["bench.total_seconds"], total)
    missing = {
        name: ("not in --only" if s["status"] == "skipped" else f"section failed: {s['error']}").splitlines()[0][:200]
        for name, s in status.items()
    }
    # Figures were recorded against the catalog of a complete run; re-key them onto this run's specs.
    measured = {k: Figure(index[k], f.value, f.baseline, f.samples, f.note) for k, f in bench.figures.items()}
    figures = fill(specs, measured, missing)
    doc = document(
        run_id=bench.run_id,
        mode="quick" if quick else "full",
        requested=sections,
        started_at=started_at,
        total_seconds=total,
        machine=machine,
        settings=settings.to_json(),
        sections=status,
        figures=figures,
        details=bench.details,
    )
    return RunResult(doc, figures, failed, stack.problems)
