"""What atbb.yaml tells the image: the supervisor's service table, the baked-in migration, and what the
build keeps. Pure: (Config) -> strings and mappings; the Dockerfile receives them as build arguments.

Decisions:
- The service table reaches the image as one build argument holding POSIX sh assignments, written to
  /etc/atbb/services.sh and sourced by docker/entrypoint.sh. Values are quoted with shlex.quote, whose
  single-quote form every POSIX shell (BusyBox ash, dash) reads back verbatim, so an argument list
  survives with its spaces and quotes and is never re-split by a shell. Commands run without a shell:
  the supervisor `exec`s the quoted words.
- Each service with a port gets HOST=127.0.0.1 and PORT=<port>: only nginx may listen outside the
  container, and most Node servers read those two names. Its own `env:` comes after, so an app that
  reads another name (API_PORT) says so with a placeholder, and an explicit PORT wins.
- Every child also gets ATBB_SERVICE=<name>, so logs and error reports can say which process spoke.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

from atbb_kit.core.config import PLACEHOLDER

LOOPBACK = "127.0.0.1"
# What `docker run IMAGE ...` takes to run migrate.command, which the build baked into the image: the
# same words for `inv migrate`, `inv compose-up`, smoke, bench and the Compose example's migrate service.
MIGRATE_ARGS = ("migrate",)
# Where `migrate.package` is deployed inside the image (pnpm deploy output).
MIGRATE_DIR = "/migrate"


def url(cfg: Any, service: str) -> str:
    return f"http://{LOOPBACK}:{cfg.services[service].port}"


def expand(cfg: Any, service: str, value: str) -> str:
    """Replace {port}, {host}, {NAME.port} and {NAME.url}; {{ and }} become literal braces. Config
    validation has already refused unknown placeholders."""
    svc = cfg.services[service]

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name == "port":
            return str(svc.port)
        if name == "host":
            return LOOPBACK
        other, _, attr = name.partition(".")
        return str(cfg.services[other].port) if attr == "port" else url(cfg, other)

    return PLACEHOLDER.sub(one, value)


def service_env(cfg: Any, service: str) -> dict[str, str]:
    svc = cfg.services[service]
    env: dict[str, str] = {"ATBB_SERVICE": service}
    if svc.port is not None:
        env.update(HOST=LOOPBACK, PORT=str(svc.port))
    env.update({name: expand(cfg, service, value) for name, value in svc.env.items()})
    return env


def _assign(name: str, value: str) -> str:
    return f"{name}={shlex.quote(value)}"


def _words(items: Any) -> str:
    return shlex.join(list(items))


def supervisor_spec(cfg: Any) -> str:
    """One line of sh assignments: the service names in start order, and per service its cwd, port (empty
    for workers), grace, environment (quoted NAME=value words) and argument list (quoted words)."""
    parts = [_assign("ATBB_SERVICES", " ".join(cfg.services))]
    for name, svc in cfg.services.items():
        env = service_env(cfg, name)
        parts += [
            _assign(f"svc_{name}_cwd", svc.cwd),
            _assign(f"svc_{name}_port", "" if svc.port is None else str(svc.port)),
            _assign(f"svc_{name}_grace", str(svc.grace)),
            _assign(f"svc_{name}_env", _words(f"{k}={v}" for k, v in env.items())),
            _assign(f"svc_{name}_argv", _words(svc.command)),
        ]
    return "; ".join(parts)


def migrate_spec(cfg: Any) -> str:
    m = cfg.migrate
    return "; ".join(
        [
            # Empty: the app directory (APP_DIR in the image).
            _assign("migrate_dir", MIGRATE_DIR if m.package else ""),
            _assign("migrate_cwd", m.cwd),
            _assign("migrate_argv", _words(m.command)),
        ]
    )


def kit_paths_inside(monorepo: Path, paths: list[Path]) -> list[str]:
    """Kit files that sit inside the monorepo (monorepo: "." or a config file beside the app), relative
    to it: the build stage drops them, so editing the kit never rebuilds the app."""
    out = []
    for path in paths:
        try:
            rel = path.resolve().relative_to(monorepo.resolve())
        except ValueError:
            continue
        if rel.parts:
            out.append(PurePosixPath(*rel.parts).as_posix())
    return sorted(set(out))


def health_spec(cfg: Any) -> str:
    h = cfg.health
    return "; ".join(
        [_assign("health_path", h.path), _assign("health_status", str(h.status)), _assign("health_body", h.body or "")]
    )
