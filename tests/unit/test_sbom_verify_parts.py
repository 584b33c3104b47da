"""The pure parts of the SBOM (package databases, CycloneDX output, counts, the referrers fallback) and of
`inv verify` (its provenance commands and how their answers are reported), without a registry."""

from __future__ import annotations

import io
import json
import tarfile

from atbb_kit.commands.provenance import provenance_argv
from atbb_kit.ops import sbom, verify
from tests.unit.test_multiarch import MemoryRegistry

DPKG = """Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u9

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""
APK = "C:Q1abc=\nP:musl\nV:1.2.5-r1\nA:aarch64\n\nP:busybox\nV:1.37.0-r12\nA:aarch64\n"


def test_package_databases() -> None:
    assert sbom.parse_dpkg_status(DPKG) == [("libc6", "2.36-9+deb12u9", "amd64")]
    assert sbom.parse_apk_installed(APK) == [("musl", "1.2.5-r1", "aarch64"), ("busybox", "1.37.0-r12", "aarch64")]


def export(files: dict[str, bytes], links: dict[str, str] | None = None) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    buf.seek(0)
    return buf


def test_scan_finds_installed_packages_once_and_skips_links_and_nested_manifests() -> None:
    pkg = lambda n, v: json.dumps({"name": n, "version": v}).encode()  # noqa: E731
    stream = export(
        {
            "etc/os-release": b'ID=alpine\nVERSION_ID="3.21.0"\n',
            "lib/apk/db/installed": APK.encode(),
            "app/node_modules/.pnpm/hono@4.1.0/node_modules/hono/package.json": pkg("hono", "4.1.0"),
            "app/node_modules/.pnpm/hono@4.1.0/node_modules/hono/dist/cjs/package.json": b'{"type":"commonjs"}',
            "app/node_modules/.pnpm/@hono+node-server@2.1.9/node_modules/@hono/node-server/package.json": pkg(
                "@hono/node-server", "2.1.9"
            ),
            "app/apps/web/package.json": pkg("@atbb/web", "0.1.0"),
            "usr/local/include/node/node_version.h": b"#define NODE_MAJOR_VERSION 22\n#define NODE_MINOR_VERSION 12\n"
            b"#define NODE_PATCH_VERSION 0\n",
        },
        links={"app/apps/web/node_modules/hono": "../../../node_modules/.pnpm/hono@4.1.0/node_modules/hono"},
    )
    inv = sbom.scan(stream)
    assert (inv.distro, inv.distro_version, inv.os_kind, inv.node) == ("alpine", "3.21.0", "apk", "22.12.0")
    assert sorted(inv.npm) == [("@atbb/web", "0.1.0"), ("@hono/node-server", "2.1.9"), ("hono", "4.1.0")]
    document = sbom.to_cyclonedx(inv, "ghcr.io/acme/atbb:1.2.3", {"org.opencontainers.image.title": "atBB"})
    data = json.loads(document)
    purls = sorted(c["purl"] for c in data["components"])
    assert purls == [
        "pkg:apk/alpine/busybox@1.37.0-r12?arch=aarch64&distro=alpine-3.21.0",
        "pkg:apk/alpine/musl@1.2.5-r1?arch=aarch64&distro=alpine-3.21.0",
        "pkg:generic/node@22.12.0",
        "pkg:npm/%40atbb/web@0.1.0",
        "pkg:npm/%40hono/node-server@2.1.9",
        "pkg:npm/hono@4.1.0",
    ]
    assert data["metadata"]["component"]["name"] == "atBB"
    counts = sbom.summarize(document)
    assert sbom.describe_counts(counts) == "6 components (2 Alpine packages, 1 other, 3 npm packages)"


def test_referrers_fallback_tag_keeps_every_referrer() -> None:
    class Store(MemoryRegistry):
        def put_manifest_answer(self, reference, media_type, body):
            return self.put_manifest(reference, media_type, body), {}

        def referrers(self, digest):
            return None

    store = Store()
    subject = {"mediaType": sbom.OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 10}
    first, how = sbom.attach(store, subject, sbom.SBOM_TYPE, b'{"components":[]}', {"k": "1"})
    assert how == f"tag sha256-{'a' * 64} (the registry has no referrers API)"
    second, _ = sbom.attach(store, subject, "application/x-other", b"other", {})
    found, _ = sbom.find_referrers(store, subject["digest"])
    assert [d["digest"] for d in found] == [first, second]
    assert sbom.sbom_of(store, subject["digest"], store.blob)[0] == b'{"components":[]}'


def test_provenance_reporting() -> None:
    report = verify.Report("r", "sha256:" + "b" * 64, "index")
    verify.check_provenance(report, "ghcr.io/acme/atbb@x", "acme/forum", which=lambda _: None)
    assert report.provenance_ok is None and "neither gh (GitHub CLI) nor cosign is installed" in report.provenance
    verify.check_provenance(
        report, "ghcr.io/acme/atbb@x", "acme/forum", which=lambda t: t if t == "cosign" else None,
        run=lambda argv: (0, ""),
    )  # fmt: skip
    assert report.provenance_ok is True and report.provenance.startswith("verified with cosign")
    argv = provenance_argv("ghcr.io/acme/atbb@x", "acme/forum", verify.WORKFLOW)["cosign"]
    assert argv[argv.index("--certificate-identity-regexp") + 1] == (
        r"^https://github\.com/acme/forum/\.github/workflows/publish\.yml@"
    )
    assert verify.source_repo({"org.opencontainers.image.source": "https://github.com/acme/forum"}) == "acme/forum"
    assert verify.source_repo({}) is None
