"""Load-test argv for `inv bench`: wrk and the peer proxies (HAProxy, Caddy) run inside the app container's
network namespace, `inv` itself for the CLI timings, and the bench's additions to a `docker build` command.

Pure builders returning `Command`s; ops/bench_run.py hands them to the Runner.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from atbb_kit.commands.base import Command
from atbb_kit.commands.netns import in_netns


def peer_command(kind: str, pid: int, config: Path) -> Command:
    """A peer run in the foreground inside the app container's network namespace (as wrk is)."""
    if kind == "haproxy":
        return in_netns(
            pid,
            *("haproxy", "-db", "-f", str(config)),
            install_hint="install HAProxy (apt-get install haproxy), or run scripts/bootstrap.sh",
        )
    return in_netns(
        pid,
        *("caddy", "run", "--config", str(config), "--adapter", "caddyfile"),
        install_hint="install Caddy (apt-get install caddy), or run scripts/bootstrap.sh",
    )


def wrk_command(pid: int, url: str, *, connections: int, seconds: int, threads: int) -> Command:
    """wrk run from the host inside the app container's network namespace (commands/netns.py): it reaches
    127.0.0.1:80 (nginx) and the services' loopback ports alike, over the container's own loopback."""
    return in_netns(
        pid,
        "wrk",
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        "--timeout=5s",
        "--latency",
        url,
        install_hint="install wrk (apt-get install wrk) and util-linux (nsenter), or run scripts/bootstrap.sh",
    )


def invoke_command(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> Command:
    """`inv ARGS` in `cwd` with this interpreter (`python -m invoke`), as the CLI timings and the upgrade
    benchmark run the kit: the same interpreter for the kit and a bare baseline, so startup costs cancel out."""
    return Command((sys.executable, "-m", "invoke", *args), env=dict(env or {}), cwd=cwd)


def with_label(cmd: Command, key: str, value: str) -> Command:
    """A `docker build` Command with `--label key=value` added before its final argument (the context)."""
    return with_args(cmd, "--label", f"{key}={value}")


def with_args(cmd: Command, *args: str) -> Command:
    """A `docker build` Command with `args` added before its final argument (the context)."""
    return replace(cmd, argv=(*cmd.argv[:-1], *args, cmd.argv[-1]))
