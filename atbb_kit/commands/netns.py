"""Commands run from the host inside a container's network namespace (`nsenter --net`).

nsenter joins only the network namespace: a host binary (wrk, HAProxy, Caddy, the interpreter) reaches the
container's 127.0.0.1 as the container's own processes do, with nothing added to the image and no port
published. It needs root (CAP_SYS_ADMIN) and a Linux engine whose container PIDs the host can see.

Pure builders returning `Command`s; nothing here runs anything.
"""

from __future__ import annotations

import sys

from atbb_kit.commands.base import Command

NSENTER_HINT = "install util-linux (nsenter), or run scripts/bootstrap.sh"


def in_netns(pid: int, *program: str, install_hint: str = NSENTER_HINT) -> Command:
    """`program` run in the network namespace of the process `pid` (a container's init)."""
    return Command(("nsenter", f"--target={pid}", "--net", "--", *program), install_hint=install_hint)


def netns_probe(pid: int) -> Command:
    """Succeeds when the kit may enter that namespace at all (root, a Linux engine, the PID visible)."""
    return in_netns(pid, "true")


def netns_python(pid: int, script: str, *args: str) -> Command:
    """This interpreter running `script` (python -c) with `args`, inside the namespace."""
    return in_netns(pid, sys.executable, "-c", script, *args)
