"""`inv tags` and `inv push`: thin tasks over atbb_kit.ops.publish (the rules and their reasons live there)."""

from __future__ import annotations

from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task


@kit_task(
    help={
        "json": "Print one JSON object (tags, version, labels, publishable, ...) instead of one reference a line.",
    }
)
def tags(c, json=False):
    """Print the image references this checkout would be published as, one a line (stdout only)."""
    from atbb_kit.ops import publish

    publish.print_tags(kit(c).cfg, json)


@kit_task(
    help={
        "image": "Local image to publish (default: the plan's first reference, as tagged by `inv image`).",
        "only": "immutable: push only the tags that never move (1.2.3, main-<sha>); floating: only point 1.2, 1 "
        "and latest at the highest builds the registry holds (no local image needed). Default: both, in order.",
        "dry_run": DRY_RUN_HELP,
        "by_digest": "Push this platform's image without any tag (registry API), print its digest for "
        "`inv release`, which creates the multi-platform index and tags it.",
        "digest_file": "With --by-digest: also write the digest to this file (a folder ending in / gets a file "
        "named after the platform, e.g. linux-arm64).",
        "sbom": "With --by-digest: generate the image's CycloneDX SBOM and attach it to the pushed image "
        "(default; --no-sbom skips it).",
    }
)
def push(c, dry_run=False, image=None, only=None, by_digest=False, digest_file=None, sbom=True):
    """Push the immutable tags, then point the floating ones (latest last) at the highest published builds."""
    from atbb_kit.ops import multiarch, publish

    publish.check_push_flags(image, only, by_digest, digest_file)
    k = kit(c, dry_run=dry_run)
    if by_digest:
        multiarch.push_by_digest(k, publish.plan_for_push(k.cfg), image, digest_file, sbom=sbom)
    else:
        publish.push(k, image, only)
