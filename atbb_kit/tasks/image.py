"""`inv image`: build the one image operators deploy, with computed tags and OCI labels."""

from __future__ import annotations

from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task


@kit_task(
    iterable=["tag"],
    help={
        "base": "Base image for build and runtime stages (default: image.base in atbb.yaml).",
        "platform": "Comma-separated target platforms, e.g. linux/amd64,linux/arm64 (several need buildx).",
        "tag": "Extra local tag(s) to add, e.g. --tag atbb:dev (repeatable).",
        "builder": "Force a builder: buildx or buildkit (default: the best the client offers; classic is refused).",
        "no_cache": "Build every layer from scratch.",
        "cache": "buildx cache backend to read and fill, e.g. gha (GitHub Actions' cache); needs buildx.",
        "dry_run": DRY_RUN_HELP,
    },
)
def image(c, base=None, platform=None, tag=None, builder=None, no_cache=False, cache=None, dry_run=False):
    """Build the Docker image (the services of atbb.yaml behind nginx) with release tags; fail over budget."""
    from atbb_kit.ops import image as images

    # Flags first, each named as a flag (not as the atbb.yaml line it overrides), before anything runs.
    platforms = images.check_flags(base, platform, tag, builder, cache)
    k = kit(c, dry_run=dry_run, overrides={"image.base": base, "image.platforms": platforms})
    images.build(k, extra_tags=tag, builder=builder, no_cache=no_cache, cache=cache)
