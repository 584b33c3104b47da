"""What `inv bench` does around the measuring (ops/bench_run.py): write the results document, the table, the
Markdown page and its charts, and say which targets were missed.

The committed results page only ever shows a complete full run with every section measured; a quick,
partial or broken run would replace good numbers with lesser ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from atbb_kit.core.errors import KitError
from atbb_kit.infra import engine, signals
from atbb_kit.infra.console import console
from atbb_kit.ops.bench import LABEL, NOT_MET, SECTIONS, print_table, render_markdown
from atbb_kit.ops.bench_charts import ChartsUnavailable, write_charts
from atbb_kit.ops.bench_run import run_bench


def draw_charts(doc, folder: Path) -> dict:
    """The SVG charts of a run; without matplotlib the run is still complete, only chartless."""
    try:
        drawn = write_charts(doc, folder)
    except ChartsUnavailable as exc:
        console.say(f"==> charts skipped: {exc}")
        return {}
    for path in drawn.values():
        console.say(f"==> drew {path}")
    return drawn


def bench(
    k,
    *,
    quick: bool,
    sections,
    nginx_conf: str | None,
    json_path: Path,
    markdown: str | None,
    default_markdown: str,
    charts: str | None,
) -> None:
    """`inv bench`: measure, write `json_path`, print the table; the Markdown and charts of a complete run (or
    where --markdown/--charts say); a KitError when a section could not be measured or cleaned up."""
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
            say=console.say,
        )
    except KeyboardInterrupt as exc:
        err = KitError("bench: interrupted; cleanup ran (a warning above names anything left)", "rerun `inv bench`")
        # The shell's convention: 128 + the signal, 130 for Ctrl-C (SIGINT), 143 for SIGTERM.
        err.exit_code = 128 + signals.number(exc)
        raise err from None

    root = k.cfg.root()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(outcome.doc, indent=2) + "\n", encoding="utf-8")
    # The JSON keeps every figure (a stable shape for scripts); the table only what this run set out to measure.
    shown = [f for f in outcome.figures if f.spec.section in (*sections, "bench")]
    print_table(outcome.doc, shown)
    console.say(f"==> wrote {json_path}")

    complete = not quick and sections == SECTIONS and not outcome.failed
    md_path = (Path(markdown) if markdown else root / default_markdown) if (markdown or complete) else None
    # The charts go with the Markdown that links them (docs/performance-results/ for the default page).
    charts_dir = Path(charts) if charts else (md_path.with_suffix("") if md_path else None)
    drawn = draw_charts(outcome.doc, charts_dir) if charts_dir else {}
    if md_path is not None:
        md_path.parent.mkdir(parents=True, exist_ok=True)
        links = {section: os.path.relpath(path, md_path.parent) for section, path in drawn.items()}
        md_path.write_text(render_markdown(outcome.doc, outcome.figures, links), encoding="utf-8")
        console.say(f"==> wrote {md_path}")
    else:
        console.say(
            f"==> {default_markdown} left as it was (only a complete full run rewrites it; see --markdown, "
            "and --charts for the charts)"
        )

    missed = [f.spec.label for f in outcome.figures if f.verdict == NOT_MET]
    if missed:
        console.say(f"==> {len(missed)} target(s) not met: {'; '.join(missed)}")
    if outcome.failed:
        raise KitError(
            f"bench: {len(outcome.failed)} section(s) could not be measured: {', '.join(outcome.failed)}",
            "see the errors above; the other figures were still written",
        )
    if outcome.cleanup_problems:
        raise KitError(
            f"bench: {len(outcome.cleanup_problems)} object(s) could not be removed",
            f"remove them with: docker rm -f $(docker ps -aq --filter label={LABEL}={outcome.doc['run_id']})",
        )
