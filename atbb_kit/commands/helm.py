"""Chart rendering argv for `inv helm`: `helm template` where Helm is installed, else the kit's own
chart-render (deploy/helm/tools/render.go, built with Debian's Go and Sprig packages).

Pure builders returning `Command`s; ops/helm.py decides which renderer there is and hands them to the Runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from atbb_kit.commands.base import Command, argv


def helm_template(helm: str, chart: Path, release: str, namespace: str, values_files: Sequence[Path]) -> Command:
    """`helm template RELEASE CHART --namespace NS -f VALUES...`: the manifests, printed, no cluster."""
    files = [part for f in values_files for part in ("-f", str(f))]
    return Command(argv(helm, "template", release, str(chart), "--namespace", namespace, files))


def chart_render(binary: str, chart: Path, release: str, namespace: str, values_files: Sequence[Path]) -> Command:
    """chart-render's positional form: CHART RELEASE NAMESPACE VALUES..."""
    return Command(argv(binary, str(chart), release, namespace, [str(f) for f in values_files]))


def go_build(go: str, binary: Path, source: Path, *, gopath: str, cache: Path, install_hint: str) -> Command:
    """Build chart-render in GOPATH mode (Debian installs the Go libraries under their import paths)."""
    return Command(
        (go, "build", "-o", str(binary), str(source)),
        env={"GO111MODULE": "off", "GOPATH": gopath, "GOCACHE": str(cache), "GOFLAGS": ""},
        install_hint=install_hint,
    )
