"""image.size_budget_mb is measured the same way on every engine: the uncompressed size of the platform's layers.

The inputs are `docker image inspect` answers for one image in each shape an engine gives:
- overlay2: recorded from this project's Docker 20.10.24 engine (atbb-standin/node:22); `Size` is the
  sum of the unpacked layers (`docker history --human=false` adds up to the same 313,966,061 bytes).
- the containerd image store (Docker 29's default): the same image as an OCI index with a provenance
  attestation and a second platform not present locally, in the shape of the engine API's image inspect
  with `manifests=1` (moby api/types/image ImageManifestSummary, and the answer quoted in moby#53398).
  Its top-level `Size` is compressed content only (29.0) or compressed plus unpacked (after moby#53426):
  neither is the layers' size, so neither may decide the budget.
"""

from __future__ import annotations

import copy

import pytest

from atbb_kit.infra.engine import layers_size

UNPACKED = 313_966_061  # the overlay2 figure: sum of the uncompressed layers
PACKED = 117_204_518  # the same layers gzip-compressed, as pushed
# The containerd store measures unpacked snapshots by disk usage: a little above the tar content.
SNAPSHOT_USAGE = 314_920_960

OVERLAY2 = {
    "Id": "sha256:b472130186cd08cae519d3b38f7c106ba7d1f69ab90e096fd5f590fa64c6cbf8",
    "RepoTags": ["atbb-standin/node:22"],
    "Architecture": "amd64",
    "Os": "linux",
    "Size": UNPACKED,
    "VirtualSize": UNPACKED,
    "RootFS": {
        "Type": "layers",
        "Layers": [
            "sha256:e40066c28a6b52684c38625794bb2c51f5711ebfa5a861d87b2dc915090ade2a",
            "sha256:d0761257b865ff99d44659bd36b6e2e5aa6c10c4a86aa81b7ef6e6e981d3303e",
            "sha256:95237ccfddfc388a7b3a4b2a9ab83d5dfc07c48b574df31b27bd3b0cb9a26e99",
            "sha256:c4dcf63ce8160feddf802c17df151fd85fade62bb0053c7113b0992e8eca7f4c",
        ],
    },
    "GraphDriver": {"Name": "overlay2"},
}

AMD64 = "sha256:6e9804c90d7268e4be7a65a7c1ed57a5bfc84b91ba7faa47e7377c264e3abd8f"
CONTAINERD_29_0 = {
    "Id": "sha256:4ee27b5410573a3bdeb43b322fd96dcb254211b16ad5d13bbfb24ec1d5c0ea97",
    "RepoTags": ["ghcr.io/acme/atbb:1.2.3"],
    "Architecture": "amd64",
    "Os": "linux",
    # Docker 29.0: the selected manifest's packed descriptors only.
    "Size": PACKED,
    "Descriptor": {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": "sha256:4ee27b5410573a3bdeb43b322fd96dcb254211b16ad5d13bbfb24ec1d5c0ea97",
        "size": 856,
    },
    "GraphDriver": {"Name": "overlayfs"},
    "Manifests": [
        {
            "ID": "sha256:0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
            "Descriptor": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
                "size": 1120,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
            "Available": False,
            "Size": {"Content": 0, "Total": 0},
            "Kind": "image",
            "ImageData": {
                "Platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                "Containers": 0,
                "Size": {"Unpacked": 0},
            },
        },
        {
            "ID": AMD64,
            "Descriptor": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": AMD64,
                "size": 2290,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            "Available": True,
            "Size": {"Content": PACKED, "Total": PACKED + SNAPSHOT_USAGE},
            "Kind": "image",
            "ImageData": {
                "Platform": {"architecture": "amd64", "os": "linux"},
                "Containers": 1,
                "Size": {"Unpacked": SNAPSHOT_USAGE},
            },
        },
        {
            "ID": "sha256:fdfff3ab63275a0664e432849f814442a4e0b07947447d01bbc18c33ef7e2f22",
            "Descriptor": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:fdfff3ab63275a0664e432849f814442a4e0b07947447d01bbc18c33ef7e2f22",
                "size": 841,
                "annotations": {
                    "vnd.docker.reference.digest": AMD64,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            },
            "Available": True,
            "Size": {"Content": 23_410, "Total": 23_410},
            "Kind": "attestation",
            "AttestationData": {"For": AMD64},
        },
    ],
}

# After moby#53426: inspect `Size` is the manifest summary total (packed + unpacked snapshot usage).
CONTAINERD_FIXED = {**copy.deepcopy(CONTAINERD_29_0), "Size": PACKED + SNAPSHOT_USAGE}

# The first engines that listed manifests (API 1.47): UnpackedSize and ContentSize instead of Size objects.
CONTAINERD_EARLY = copy.deepcopy(CONTAINERD_29_0)
for _m in CONTAINERD_EARLY["Manifests"]:
    _m["ContentSize"] = _m.pop("Size")["Content"]
    if "ImageData" in _m:
        _m["ImageData"]["UnpackedSize"] = _m["ImageData"].pop("Size")["Unpacked"]


@pytest.mark.parametrize(
    "attrs",
    [OVERLAY2, CONTAINERD_29_0, CONTAINERD_FIXED, CONTAINERD_EARLY],
    ids=["overlay2", "containerd-29.0", "containerd-after-53426", "containerd-early-api"],
)
def test_every_shape_gives_the_uncompressed_size_of_the_platforms_layers(attrs: dict) -> None:
    measured = layers_size(attrs)
    assert abs(measured - UNPACKED) / UNPACKED < 0.01, (measured, UNPACKED)


def test_the_containerd_store_size_field_is_not_the_budget_figure() -> None:
    # What a naive reading of `Size` would have reported on each containerd version: 37% and 138%.
    assert CONTAINERD_29_0["Size"] / UNPACKED < 0.4
    assert CONTAINERD_FIXED["Size"] / UNPACKED > 1.3
    assert layers_size(CONTAINERD_29_0) == layers_size(CONTAINERD_FIXED) == SNAPSHOT_USAGE


def test_the_platform_of_the_inspected_image_is_chosen() -> None:
    arm = copy.deepcopy(CONTAINERD_29_0)
    arm["Architecture"], arm["Variant"] = "arm64", "v8"
    arm["Manifests"][0]["Available"] = True
    arm["Manifests"][0]["ImageData"]["Size"]["Unpacked"] = 301_000_000
    assert layers_size(arm) == 301_000_000
    assert layers_size(CONTAINERD_29_0) == SNAPSHOT_USAGE


def test_an_index_of_attestations_only_falls_back_to_size() -> None:
    only_attestation = {**CONTAINERD_29_0, "Manifests": [CONTAINERD_29_0["Manifests"][2]]}
    assert layers_size(only_attestation) == PACKED
    assert layers_size({"Size": 5}) == 5
    assert layers_size({}) == 0
