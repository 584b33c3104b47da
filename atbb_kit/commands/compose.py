"""Compose: which implementation to call (v2 plugin or v1 binary) and pure argv builders for it.

Operators and GitHub runners have `docker compose` (v2); some hosts (Debian's package, these test
machines) only have `docker-compose` 1.29. The file and the flags the kit uses work on both.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from atbb_kit.commands.base import Command, argv
from atbb_kit.commands.docker import ONEOFF_LABEL
from atbb_kit.core.errors import KitError

COMPOSE_HINT = "install the Compose plugin (docker compose) or docker-compose, e.g. apt-get install docker-compose"


@dataclass(frozen=True)
class Compose:
    base: tuple[str, ...]  # ("docker", "compose") or ("docker-compose",)
    file: Path
    project: str
    env: Mapping[str, str]  # interpolation variables for the Compose file (ATBB_IMAGE, ...)

    def cmd(self, *args: str | Sequence[str] | None, hint: str | None = None) -> Command:
        return Command(
            argv(self.base, "-f", str(self.file), "-p", self.project, *args),
            env=dict(self.env),
            cwd=self.file.parent,
            install_hint=COMPOSE_HINT,
            failure_hint=hint,
        )

    def up(self, *services: str) -> Command:
        return self.cmd("up", "-d", "--no-build", list(services), hint="see `inv logs` for what the services said")

    def down(self, volumes: bool = False) -> Command:
        return self.cmd("down", "--remove-orphans", "--volumes" if volumes else None)

    def run_oneoff(self, service: str, name: str, settings: Mapping[str, str]) -> Command:
        """`run --rm` of `service` as a named, labelled one-off. -T: no pseudo-terminal, so output streams line
        by line into logs and CI (and v1 does not fail for want of a TTY). `settings` become `-e K=V`: for
        non-secret values only, argv is printed."""
        return self.cmd(
            "run",
            "--rm",
            "-T",
            ("--name", name, "--label", ONEOFF_LABEL),
            *[("-e", f"{k}={v}") for k, v in settings.items()],
            service,
        )

    def ps(self) -> Command:
        return self.cmd("ps")

    def logs(self, service: str | None, follow: bool, tail: int | None) -> Command:
        return self.cmd(
            "logs", "--no-color", "-f" if follow else None, ("--tail", str(tail)) if tail else None, service
        )


# What the Compose example's PostgreSQL reads; the file substitutes them into that service alone.
POSTGRES_VARIABLES = ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")


def compose_variables(
    image: str, host_port: int, env_file: Path, postgres_image: str, postgres: Mapping[str, str]
) -> dict[str, str]:
    """The variables docker-compose.example.yml reads: from atbb.yaml and the task's flags, and `postgres`, the
    env file's POSTGRES_* values (Secrets: printed ***; ops/deployment.compose_env reads them), wherever the
    env file lies: Compose itself would only look in the `.env` next to the Compose file."""
    return {
        "ATBB_IMAGE": image,
        "ATBB_HOST_PORT": str(host_port),
        "ATBB_ENV_FILE": str(env_file.resolve()),
        "POSTGRES_IMAGE": postgres_image,
        **postgres,
    }


def services(file: Path) -> tuple[str, ...]:
    """The service names a Compose file defines (profiled ones included), to check names before calling
    Compose: v1 answers an unknown one with a bare "No such service"."""
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KitError(f"cannot read the Compose file {file}: {exc}", "check compose.file in atbb.yaml") from None
    found = data.get("services") if isinstance(data, dict) else None
    return tuple(found) if isinstance(found, dict) else ()


class Prober(Protocol):
    """Whatever runs read-only queries: infra.runner.Runner (commands never run anything themselves)."""

    def probe(self, cmd: Command) -> Any: ...


def version(run: Prober, base: Sequence[str]) -> str | None:
    """The implementation's version, e.g. "1.29.2" or "2.29.7", or None when it does not answer."""
    res = run.probe(Command((*base, "version", "--short")))
    text = res.stdout.strip().lstrip("v") if res.ok else ""
    return text.splitlines()[0] if text else None


def detect(run: Prober) -> tuple[str, ...]:
    """`docker compose` when the plugin answers, else `docker-compose`, else a clear error."""
    docker = shutil.which("docker")
    if docker and run.probe(Command((docker, "compose", "version"))).ok:
        return (docker, "compose")
    legacy = shutil.which("docker-compose")
    if legacy:
        return (legacy,)
    raise KitError("neither `docker compose` nor `docker-compose` is available", COMPOSE_HINT)
