"""`inv bench`: measure the image, the builds, start-up, the proxy and the CLI against their targets; draw them."""

from __future__ import annotations

import os
import sys

from atbb_kit.tasks._base import kit, kit_task

RESULTS_JSON = "bench/results.json"
RESULTS_MARKDOWN = "docs/performance-results.md"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _draw_charts(doc, folder):
    """The SVG charts of a run; without matplotlib the run is still complete, only chartless."""
    from atbb_kit.ops.bench_charts import ChartsUnavailable, write_charts

    try:
        drawn = write_charts(doc, folder)
    except ChartsUnavailable as exc:
        _say(f"==> charts skipped: {exc}")
        return {}
    for path in drawn.values():
        _say(f"==> drew {path}")
    return drawn


@kit_task(
    help={
        "quick": "Fewer and shorter runs (about 2-3 minutes): 2 starts, 3 s of wrk per path, no dependency rebuild.",
        "only": "Comma-separated sections to run (default all): cli, build, image, start, proxy.",
        "base": "Base image for both builds (default: image.base in atbb.yaml / ATBB_IMAGE_BASE).",
        "json": f"Where to write the results document (default {RESULTS_JSON}).",
        "markdown": f"Where to write the Markdown table (default {RESULTS_MARKDOWN}, complete full runs only).",
        "nginx_conf": "Build the measured image with this nginx.conf instead of nginx/nginx.conf (tuning trials).",
        "charts": "Also draw the SVG charts into this folder (default: next to the Markdown, when it is written).",
    }
)
def bench(c, quick=False, only=None, base=None, json_=None, markdown=None, nginx_conf=None, charts=None):
    """Benchmark image size, build caching, start-up, nginx against its peers and CLI speed; write and chart it."""
    import json
    from pathlib import Path

    from atbb_kit.core import flags
    from atbb_kit.core.errors import KitError
    from atbb_kit.infra import engine
    from atbb_kit.ops import bench as B
    from atbb_kit.ops.bench_run import run_bench

    flags.image_ref("base", base)
    for flag, value in (("json", json_), ("markdown", markdown), ("nginx-conf", nginx_conf), ("charts", charts)):
        if value is not None:
            flags.path(flag, value)
    try:
        sections = B.parse_only(only)
    except ValueError as exc:
        raise KitError(f"--only: {exc}", "e.g. --only build,image") from None
    k = kit(c, overrides={"image.base": base})
    conf = Path(nginx_conf).resolve() if nginx_conf else None
    if conf is not None and not conf.is_file():
        raise KitError(f"--nginx-conf {nginx_conf} is not a file", "render one with `inv nginx-conf` and edit a copy")
    client = engine.client()
    try:
        outcome = run_bench(
            k.cfg,
            client,
            k.run,
            quick=quick,
            sections=sections,
            base=k.cfg.image.base,
            nginx_conf=conf,
            say=_say,
        )
    except KeyboardInterrupt as exc:
        err = KitError("bench: interrupted; cleanup ran (a warning above names anything left)", "rerun `inv bench`")
        # The shell's convention: 128 + the signal, 130 for Ctrl-C (SIGINT), 143 for SIGTERM.
        err.exit_code = 128 + int(getattr(exc, "signum", 2))
        raise err from None

    root = k.cfg.root()
    json_path = Path(json_) if json_ else root / RESULTS_JSON
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(outcome.doc, indent=2) + "\n", encoding="utf-8")
    # The JSON keeps every figure (a stable shape for scripts); the table only what this run set out to measure.
    shown = [f for f in outcome.figures if f.spec.section in (*sections, "bench")]
    B.print_table(outcome.doc, shown)
    _say(f"==> wrote {json_path}")

    # The committed results page only ever shows a complete full run with every section measured; a quick,
    # partial or broken run would replace good numbers with lesser ones.
    complete = not quick and sections == B.SECTIONS and not outcome.failed
    md_path = (Path(markdown) if markdown else root / RESULTS_MARKDOWN) if (markdown or complete) else None
    # The charts go with the Markdown that links them (docs/performance-results/ for the default page).
    charts_dir = Path(charts) if charts else (md_path.with_suffix("") if md_path else None)
    drawn = _draw_charts(outcome.doc, charts_dir) if charts_dir else {}
    if md_path is not None:
        md_path.parent.mkdir(parents=True, exist_ok=True)
        links = {section: os.path.relpath(path, md_path.parent) for section, path in drawn.items()}
        md_path.write_text(B.render_markdown(outcome.doc, outcome.figures, links), encoding="utf-8")
        _say(f"==> wrote {md_path}")
    else:
        _say(
            f"==> {RESULTS_MARKDOWN} left as it was (only a complete full run rewrites it; see --markdown, "
            "and --charts for the charts)"
        )

    missed = [f.spec.label for f in outcome.figures if f.verdict == B.NOT_MET]
    if missed:
        _say(f"==> {len(missed)} target(s) not met: {'; '.join(missed)}")
    if outcome.failed:
        raise KitError(
            f"bench: {len(outcome.failed)} section(s) could not be measured: {', '.join(outcome.failed)}",
            "see the errors above; the other figures were still written",
        )
    if outcome.cleanup_problems:
        raise KitError(
            f"bench: {len(outcome.cleanup_problems)} object(s) could not be removed",
            f"remove them with: docker rm -f $(docker ps -aq --filter label={B.LABEL}={outcome.doc['run_id']})",
        )
