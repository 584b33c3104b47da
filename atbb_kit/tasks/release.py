"""`inv platforms`, `inv release`, `inv sbom` and `inv verify`: thin tasks over atbb_kit.ops.multiarch (the rules
of multi-platform publishing), ops.sbom and ops.verify. The `--by-digest` half of `inv push` is
ops.multiarch.push_by_digest, called from tasks/publish.py."""

from __future__ import annotations

from atbb_kit.tasks._base import kit, kit_task


@kit_task(help={"json": 'Print the GitHub Actions matrix ({"include": [{platform, runner, slug}]}) as one line.'})
def platforms(c, json=False):
    """Print image.platforms, one a line, or as the publish workflow's matrix of native runners (--json)."""
    from atbb_kit.ops import multiarch

    multiarch.print_platforms(kit(c).cfg, json)


@kit_task(
    help={
        "image": "Local image to describe (default: the plan's first reference, as tagged by `inv image`).",
        "output": "Write the CycloneDX JSON here (default: build/sbom/<platform>.cdx.json).",
    }
)
def sbom(c, image=None, output=None):
    """Write the image's SBOM (CycloneDX: OS packages and the Node packages in it) and print its counts."""
    from atbb_kit.ops import sbom as sboms

    sboms.write_sbom(kit(c), image, output)


@kit_task(
    iterable=["digest"],
    help={
        "digest": "A per-platform image digest from `inv push --by-digest` (repeat it, once per platform).",
        "digests_from": "A folder of files holding one digest each (what `--digest-file FOLDER/` wrote).",
        "only": "immutable: create the index and give it the tags that never move (1.2.3, main-<sha>); "
        "floating: only point 1.2, 1 and latest at the highest builds the registry holds. Default: both.",
    },
)
def release(c, digest=None, digests_from=None, only=None):
    """Create the multi-platform image index from per-platform digests and tag it (immutable first, latest last)."""
    from atbb_kit.ops import multiarch, publish

    publish.check_stage(only)
    multiarch.release(kit(c), digest or [], digests_from, only)


@kit_task(
    help={
        "repo": "The GitHub repository (owner/name) whose publish workflow must have built it (default: the "
        "image's org.opencontainers.image.source label).",
        "require_provenance": "Fail when the provenance attestation cannot be checked (no gh or cosign).",
    }
)
def verify(c, ref, repo=None, require_provenance=False):
    """Show a published image's digest, platforms, labels, SBOM and whether its provenance checks out."""
    from atbb_kit.ops.verify import verify_ref

    verify_ref(ref, repo, require_provenance)
