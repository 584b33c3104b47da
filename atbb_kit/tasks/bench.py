"""`inv bench`: measure the image, the builds, start-up, the proxy and the CLI against their targets; draw them."""

from __future__ import annotations

from pathlib import Path

from atbb_kit.core import flags
from atbb_kit.core.errors import KitError
from atbb_kit.tasks._base import kit, kit_task

RESULTS_JSON = "bench/results.json"
RESULTS_MARKDOWN = "docs/performance-results.md"


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
    from atbb_kit.ops import benchmark
    from atbb_kit.ops.bench import parse_only

    flags.image_ref("base", base)
    for flag, value in (("json", json_), ("markdown", markdown), ("nginx-conf", nginx_conf), ("charts", charts)):
        if value is not None:
            flags.path(flag, value)
    try:
        sections = parse_only(only)
    except ValueError as exc:
        raise KitError(f"--only: {exc}", "e.g. --only build,image") from None
    k = kit(c, overrides={"image.base": base})
    benchmark.bench(
        k,
        quick=quick,
        sections=sections,
        nginx_conf=nginx_conf,
        json_path=Path(json_) if json_ else k.cfg.root() / RESULTS_JSON,
        markdown=markdown,
        default_markdown=RESULTS_MARKDOWN,
        charts=charts,
    )
