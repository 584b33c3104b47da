"""`inv bench --quick` on a real engine: the results document has every field, and nothing is left behind.

Structure only: on a shared machine any timing assertion would be a coin toss, so the numbers are
checked for being numbers, never for their size.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from atbb_kit.ops import bench
from tests.conftest import ROOT, run_inv
from tests.e2e.conftest import _unavailable

FIGURE_FIELDS = {
    "key",
    "section",
    "label",
    "unit",
    "value",
    "baseline",
    "baseline_label",
    "ratio",
    "target",
    "met",
    "verdict",
    "samples",
    "note",
}
# Measured in a quick run too; the dependency-added rebuild is the only figure --quick leaves out.
NOT_IN_QUICK = {"build.dependency_added_seconds"}


@pytest.fixture(scope="module")
def routes():
    from atbb_kit.core.config import load_config

    return bench.bench_routes(load_config(ROOT / "atbb.yaml", environ={}))


@pytest.fixture(scope="module")
def quick_bench(docker_client, test_images, tmp_path_factory):
    # The proxy section runs the host's wrk, HAProxy and Caddy inside the app container's network namespace.
    missing = [tool for tool in ("wrk", "nsenter", "haproxy", "caddy") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"inv bench needs {', '.join(missing)} (scripts/bootstrap.sh installs them)")
    if os.geteuid() != 0:
        _unavailable("inv bench's proxy section needs root (nsenter into a container's network namespace)")
    out = tmp_path_factory.mktemp("bench")
    # Not the default bench/results.json: a test must not replace the numbers of someone's full run.
    paths = {"json": out / "results.json", "markdown": out / "results.md", "charts": out / "charts"}
    proc = run_inv(
        "bench",
        "--quick",
        "--json",
        str(paths["json"]),
        "--markdown",
        str(paths["markdown"]),
        "--charts",
        str(paths["charts"]),
        env=test_images,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(paths["json"].read_text()), paths["markdown"].read_text(), proc, paths["charts"]


def test_document_has_every_top_level_and_machine_field(quick_bench):
    doc, *_ = quick_bench
    assert tuple(doc) == bench.DOCUMENT_FIELDS
    assert doc["schema_version"] == bench.SCHEMA_VERSION
    assert doc["mode"] == "quick"
    assert doc["sections_requested"] == list(bench.SECTIONS)
    machine = doc["machine"]
    assert set(bench.MACHINE_FIELDS) <= set(machine)
    assert isinstance(machine["cores"], int) and machine["cores"] > 0
    assert isinstance(machine["memory_bytes"], int) and machine["memory_bytes"] > 0
    assert machine["docker_server_version"] not in ("", "?")
    assert machine["base_image"]["id"].startswith("sha256:")
    assert machine["postgres_image"]["id"].startswith("sha256:")
    assert len(machine["kit_git_sha"]) in (40, 64)
    assert isinstance(machine["kit_dirty"], bool)
    assert machine["builder"] in ("buildx", "buildkit", "classic")


def test_every_section_ran(quick_bench):
    doc, *_ = quick_bench
    assert set(doc["sections"]) == set(bench.SECTIONS)
    for name, section in doc["sections"].items():
        assert section["status"] == "ok", (name, section)
        assert isinstance(section["seconds"], float)


def test_every_figure_is_there_with_every_field(quick_bench, routes):
    doc, *_ = quick_bench
    keys = [f["key"] for f in doc["figures"]]
    assert keys == [s.key for s in bench.catalog(quick=True, routes=routes)]
    for fig in doc["figures"]:
        assert set(fig) == FIGURE_FIELDS, fig["key"]
        if fig["key"] in NOT_IN_QUICK:
            assert fig["value"] is None
            assert fig["note"]
            continue
        assert isinstance(fig["value"], int | float), fig
        assert fig["verdict"] in (bench.MET, bench.NOT_MET, bench.NO_TARGET), fig
        if fig["target"] is not None:
            assert isinstance(fig["met"], bool), fig
            assert set(fig["target"]) == {"compare", "op", "limit", "text"}
        if fig["baseline_label"]:
            assert isinstance(fig["baseline"], int | float), fig
            assert isinstance(fig["ratio"], int | float), fig


def test_raw_measurements_are_kept(quick_bench, routes):
    doc, *_ = quick_bench
    details = doc["details"]
    assert len(details["start"]["runs"]) == bench.settings_for(True).start_runs
    assert details["start"]["healthcheck"]["Interval"] > 0  # the schedule behind the healthy figure
    proxy = details["proxy"]
    assert [r["path"] for r in proxy["routes"]] == [r.path for r in routes]
    assert set(proxy["peer_configs"]) == set(bench.PEERS)
    cells = proxy["cells"]
    assert set(cells) == {f"{r.key}.c{c}" for r in routes for c in bench.CONNECTIONS}
    for cell in cells.values():
        for path in bench.PATHS:
            segments = cell[path]["segments"]
            assert len(segments) == bench.settings_for(True).segments
            assert all({"requests", "rps", "latency_ms"} <= set(s) for s in segments)
            assert all({"50", "99"} <= set(s["latency_ms"]) for s in segments)
            assert cell[path]["errors"] == 0, (path, cell[path])  # every proxy really served the route
    assert {"base", "kit", "naive", "needs", "kit_layers"} <= set(details["image"])
    assert set(details["image"]["needs"]) == {"appview", "web"}


def test_markdown_and_table_name_the_targets(quick_bench):
    _, markdown, proc, _ = quick_bench
    assert "| figure | value | baseline | ratio | target | met |" in markdown
    for label in ("≤ 30% of cold", "< 2 s", "≥ 95% of direct", "≥ 95% of the best peer", "≤ 150 µs", "≤ 1.5× bare"):
        assert label in markdown
        assert label in proc.stdout


def test_charts_are_drawn_and_linked(quick_bench):
    _, markdown, _, charts = quick_bench
    for section in bench.SECTIONS:
        assert (charts / f"{section}.svg").is_file(), section
        assert f"({os.path.relpath(charts / f'{section}.svg', charts.parent)})" in markdown


def test_nothing_is_left_behind(quick_bench, docker_client):
    doc, *_ = quick_bench
    selector = {"label": f"{bench.LABEL}={doc['run_id']}"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert docker_client.networks.list(filters=selector) == []
    assert docker_client.images.list(filters=selector) == []
