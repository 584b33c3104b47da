"""`inv bench` as charts: one SVG per section, drawn from a results document (bench/results.json).

People compare bars faster than table rows. Every chart is drawn from the document alone, so a recorded
results.json can be drawn again later (`write_charts(json.load(...), folder)`), and a section that was not
measured gets no chart rather than an empty one.

matplotlib is imported only here and only when a chart is drawn: `inv --list` and every other task never
pay for it, and without it `inv bench` still measures and writes its table (it says charts were skipped).

Decisions:
- SVG with text kept as text (`svg.fonttype: none`): the files stay small, diff as text, and a test (or a
  reader's search) finds each series by name.
- No pyplot: its global figure registry and backend selection are for interactive use; `Figure` objects
  saved straight to SVG need neither a display nor a backend switch.
- Deterministic output (no date in the metadata, a fixed hash salt), so a chart only changes in git when
  its numbers do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from atbb_kit.ops.bench import MB, PATHS, PROXY_NAMES

# One colour per series, the same in every chart: direct is the reference, nginx is ours.
COLOURS = {
    "direct": "#7f7f7f",
    "nginx": "#1f77b4",
    "haproxy": "#ff7f0e",
    "caddy": "#2ca02c",
    "base": "#c7c7c7",
    "kit": "#1f77b4",
    "naive": "#d62728",
    "needs": "#9467bd",
    "target": "#d62728",
}
CHART_SECTIONS = ("cli", "build", "image", "start", "proxy")


class ChartsUnavailable(RuntimeError):
    """matplotlib is not installed: the bench still writes its table and JSON."""


def _figure_cls():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:  # an optional part of `inv bench`
        raise ChartsUnavailable(
            "matplotlib is not installed (pip install -e '.[test]' or pip install matplotlib)"
        ) from exc
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "atbb-bench",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return Figure


def _values(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in doc.get("figures", [])}


def _measured(doc: Mapping[str, Any], wanted: Sequence[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """(label, figure) for each wanted (label, key) the document has a value for, in that order."""
    figs = _values(doc)
    return [(label, figs[key]) for label, key in wanted if key in figs and figs[key]["value"] is not None]


def _axes(height: float):
    """A new 8-inch-wide figure of `height` inches and its one plot (ChartsUnavailable without matplotlib)."""
    fig = _figure_cls()(figsize=(8, height))
    return fig, fig.subplots()


def _row_labels(ax, labels: Sequence[str]) -> None:
    """Horizontal bars: one row a label, the first at the top."""
    ax.set_yticks(range(len(labels)), list(labels))
    ax.invert_yaxis()


def _end_label(ax, x: float, y: float, text: str) -> None:
    """`text` just right of the end of the horizontal bar at row `y`."""
    ax.annotate(text, (x, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)


def _subtitle(doc: Mapping[str, Any]) -> str:
    m = doc.get("machine", {})
    load = m.get("load_average_start") or []
    return (
        f"run {doc.get('run_id', '?')} ({doc.get('mode', '?')}), {m.get('cores', '?')} cores, "
        f"Docker {m.get('docker_server_version', '?')}, load {load[0] if load else '?'} at start"
    )


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": "atbb-kit inv bench"}, bbox_inches="tight")
    return path


def _label_bars(ax, bars, texts: Sequence[str]) -> None:
    for bar, text in zip(bars, texts, strict=True):
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7,
        )


# ---------------------------------------------------------------------------------------------------------
# One function per section; each returns None when the document has nothing measured for it.


def proxy_chart(doc: Mapping[str, Any], path: Path) -> Path | None:
    """Requests/s, p50 added and p99 per connection count for direct, nginx and each peer, one row per route."""
    proxy = doc.get("details", {}).get("proxy") or {}
    cells = proxy.get("cells") or {}
    routes = proxy.get("routes") or []
    paths = [p for p in proxy.get("paths", PATHS) if p in PROXY_NAMES]
    if not cells or not routes:
        return None
    Figure = _figure_cls()
    conns = sorted({int(c["connections"]) for c in cells.values()})
    metrics: list[tuple[str, Callable[[Mapping[str, Any], Mapping[str, Any]], float], Sequence[str]]] = [
        ("requests/s", lambda s, d: s["rps"], paths),
        (
            "p50 added vs direct (µs)",
            lambda s, d: (s["p50_ms"] - d["p50_ms"]) * 1000,
            [p for p in paths if p != "direct"],
        ),
        ("p99 (ms)", lambda s, d: s["p99_ms"], paths),
    ]
    fig = Figure(figsize=(12, 3.3 * len(routes)))
    axes = fig.subplots(len(routes), len(metrics), squeeze=False)
    for row, route in enumerate(routes):
        for col, (title, value, series) in enumerate(metrics):
            ax = axes[row][col]
            width = 0.8 / max(1, len(series))
            for i, name in enumerate(series):
                xs, ys = [], []
                for j, c in enumerate(conns):
                    cell = cells.get(f"{route['key']}.c{c}")
                    if not cell or name not in cell:
                        continue
                    xs.append(j + (i - (len(series) - 1) / 2) * width)
                    ys.append(value(cell[name], cell["direct"]))
                bars = ax.bar(xs, ys, width, label=PROXY_NAMES[name], color=COLOURS[name])
                if title == "requests/s":
                    _label_bars(ax, bars, [f"{y / 1000:.1f}k" if y >= 1000 else f"{y:.0f}" for y in ys])
                else:
                    _label_bars(ax, bars, [f"{y:.0f}" if abs(y) >= 10 else f"{y:.1f}" for y in ys])
            ax.set_xticks(range(len(conns)), [f"{c} connections" for c in conns])
            ax.set_title(f"{route['path']} ({route['service']}): {title}", fontsize=9)
            ax.axhline(0, color="black", linewidth=0.5)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, bbox_to_anchor=(0.5, 0.99))
    fig.suptitle(f"proxy: direct vs nginx vs peers, same routes and upstreams — {_subtitle(doc)}", fontsize=9, y=1.03)
    return _save(fig, path)


def build_chart(doc: Mapping[str, Any], path: Path) -> Path | None:
    """Build times: cold, nothing changed, one file changed, dependency added, each with its target."""
    wanted = [
        ("cold", "build.cold_seconds"),
        ("nothing changed", "build.no_change_seconds"),
        ("one source file changed", "build.source_change_seconds"),
        ("dependency added", "build.dependency_added_seconds"),
    ]
    rows = _measured(doc, wanted)
    if not rows:
        return None
    fig, ax = _axes(0.6 * len(rows) + 1.2)
    ys = range(len(rows))
    values = [f["value"] for _, f in rows]
    bars = ax.barh(list(ys), values, color=[COLOURS["kit"]] * len(rows), label="build time")
    for y, (_, f), bar in zip(ys, rows, bars, strict=True):
        text = f"{f['value']:.1f} s"
        if f.get("ratio") is not None:
            text += f" ({f['ratio']:.0%} of cold)"
        _end_label(ax, bar.get_width(), y, text)
        target = f.get("target")
        if target and target["compare"] == "ratio" and f.get("baseline"):
            x = target["limit"] * f["baseline"]
            ax.plot([x, x], [y - 0.4, y + 0.4], color=COLOURS["target"], linewidth=2)
    ax.plot([], [], color=COLOURS["target"], linewidth=2, label="target")
    _row_labels(ax, [label for label, _ in rows])
    ax.set_xlabel("seconds")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"build: docker build times — {_subtitle(doc)}", fontsize=9)
    return _save(fig, path)


def image_chart(doc: Mapping[str, Any], path: Path) -> Path | None:
    """Bytes over the base: the kit's image (split into its parts), the naive image, and the services' needs."""
    figs = _values(doc)
    details = doc.get("details", {}).get("image") or {}
    base = (details.get("base") or {}).get("bytes")
    kit = (details.get("kit") or {}).get("bytes")
    if base is None or kit is None:
        return None
    system = (figs.get("image.system_packages_bytes") or {}).get("value") or 0
    migrate = (figs.get("image.migrate_bytes") or {}).get("value") or 0
    parts = [
        ("the services (dependencies, build outputs)", kit - base - system - migrate, COLOURS["kit"]),
        ("nginx and tini", system, "#aec7e8"),
        ("the migrate package", migrate, "#17becf"),
    ]
    rows: list[tuple[str, list[tuple[str, float, str]]]] = [("kit image", [p for p in parts if p[1] > 0])]
    naive = (details.get("naive") or {}).get("bytes")
    if naive is not None:
        rows.append(("naive image", [("naive image", naive - base, COLOURS["naive"])]))
    needs = (figs.get("image.added_vs_needs_bytes") or {}).get("baseline")
    if needs is not None:
        rows.append(("services' needs", [("each service's needs, summed", needs, COLOURS["needs"])]))
    fig, ax = _axes(0.55 * len(rows) + 1.4)
    for y, (_, segments) in enumerate(rows):
        left = 0.0
        for label, size, colour in segments:
            ax.barh(y, size / MB, left=left, color=colour, label=label)
            left += size / MB
        _end_label(ax, left, y, f"{left:.1f} MB")
    _row_labels(ax, [label for label, _ in rows])
    ax.set_xlabel(f"MB added over the base image ({base / MB:.1f} MB, not drawn); 1 MB = 1,000,000 bytes")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"image: bytes over the base — {_subtitle(doc)}", fontsize=9)
    return _save(fig, path)


def start_chart(doc: Mapping[str, Any], path: Path) -> Path | None:
    """Each start: docker run → first 200, and → healthy, with the 2 s targets."""
    runs = (doc.get("details", {}).get("start") or {}).get("runs") or []
    if not runs:
        return None
    fig, ax = _axes(2.8)
    xs = range(len(runs))
    width = 0.38
    first = [r["first_200_seconds"] for r in runs]
    healthy = [r["healthy_seconds"] for r in runs]
    b1 = ax.bar([x - width / 2 for x in xs], first, width, color=COLOURS["nginx"], label="first 200 via nginx")
    b2 = ax.bar(
        [x + width / 2 for x in xs], healthy, width, color=COLOURS["haproxy"], label="HEALTHCHECK healthy (+ after 200)"
    )
    _label_bars(ax, b1, [f"{v:.2f}" for v in first])
    _label_bars(ax, b2, [f"{h:.1f} (+{h - f:.1f})" for f, h in zip(first, healthy, strict=True)])
    ax.axhline(2.0, color=COLOURS["target"], linewidth=1, linestyle="--", label="2 s (first 200 target)")
    ax.set_xticks(list(xs), [f"start {i + 1}" for i in xs])
    ax.set_ylabel("seconds after docker run")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"start: docker run → first 200 and → healthy — {_subtitle(doc)}", fontsize=9)
    return _save(fig, path)


def cli_chart(doc: Mapping[str, Any], path: Path) -> Path | None:
    """CLI start-up: each command's median wall time next to a bare Invoke's."""
    wanted = [
        ("bare invoke --list", "cli.bare_list_seconds"),
        ("inv --list", "cli.list_seconds"),
        ("inv tags", "cli.tags_seconds"),
        ("inv config --check", "cli.config_check_seconds"),
    ]
    rows = _measured(doc, wanted)
    if not rows:
        return None
    fig, ax = _axes(0.5 * len(rows) + 1.2)
    colours = [COLOURS["direct"] if label.startswith("bare") else COLOURS["kit"] for label, _ in rows]
    bars = ax.barh(range(len(rows)), [f["value"] for _, f in rows], color=colours)
    for y, ((_, f), bar) in enumerate(zip(rows, bars, strict=True)):
        text = f"{f['value']:.2f} s" + (f" ({f['ratio']:.2f}× bare)" if f.get("ratio") else "")
        _end_label(ax, bar.get_width(), y, text)
    _row_labels(ax, [label for label, _ in rows])
    ax.set_xlabel("seconds (median)")
    ax.set_title(f"cli: start-up of the kit's tasks — {_subtitle(doc)}", fontsize=9)
    return _save(fig, path)


CHARTS: dict[str, Callable[[Mapping[str, Any], Path], Path | None]] = {
    "cli": cli_chart,
    "build": build_chart,
    "image": image_chart,
    "start": start_chart,
    "proxy": proxy_chart,
}


def write_charts(doc: Mapping[str, Any], folder: Path) -> dict[str, Path]:
    """Draw every section the document has numbers for into `folder/<section>.svg`; {section: path}."""
    out = {}
    for section, draw in CHARTS.items():
        if (doc.get("sections", {}).get(section) or {}).get("status") not in ("ok", None):
            continue
        drawn = draw(doc, Path(folder) / f"{section}.svg")
        if drawn is not None:
            out[section] = drawn
    return out
