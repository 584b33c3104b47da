"""`inv config`: the effective configuration and where each value came from."""

from __future__ import annotations

import json

from atbb_kit.tasks._base import kit, kit_task


@kit_task(
    help={
        "check": "Only validate atbb.yaml and ATBB_* variables: one line, non-zero exit if invalid.",
        "json": "Print the effective values as JSON (no sources) for scripts.",
    }
)
def config(c, check=False, json_=False):
    """Show the effective config, each value with its source (file line, env variable or default)."""
    import os

    from atbb_kit.core import nginx_conf as render
    from atbb_kit.core.config import effective_items
    from atbb_kit.core.errors import ConfigError

    k = kit(c)
    if check:
        # The rendered nginx.conf is part of what atbb.yaml means: a stale one would ship the old routes.
        drift = render.check_drift(k.cfg, k.cfg.nginx_conf_path())
        if drift:
            raise ConfigError(drift)
        print(f"ok: {k.cfg.file()} is valid and {k.cfg.nginx_conf_path().name} matches it")
        return
    if json_:
        print(json.dumps(k.cfg.model_dump(mode="json"), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="atBB kit: effective config", show_lines=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    table.add_column("from", style="dim")
    for path, value, source in effective_items(k.cfg):
        shown = ", ".join(map(str, value)) if isinstance(value, tuple) else ("" if value is None else str(value))
        table.add_row(path, shown, source)
    # Credentials are read from the environment only, and only their presence is ever shown.
    for var in ("ATBB_REGISTRY_USER", "ATBB_REGISTRY_TOKEN", "GITHUB_TOKEN"):
        if var in os.environ:
            table.add_row(f"({var})", "***" if "TOKEN" in var else os.environ[var], "env")
    Console(width=max(100, Console().width)).print(table)


@kit_task(help={"check": "Only report whether nginx.conf (nginx.conf in atbb.yaml) matches atbb.yaml."})
def nginx_conf(c, check=False):
    """Render nginx.conf from atbb.yaml (routes, ports, headers, limits); commit the result."""
    from atbb_kit.core import nginx_conf as render
    from atbb_kit.core.errors import KitError

    k = kit(c)
    path = k.cfg.nginx_conf_path()
    drift = render.check_drift(k.cfg, path)
    if check:
        if drift:
            raise KitError(drift)
        print(f"ok: {path} matches atbb.yaml")
        return
    if drift is None:
        print(f"{path} already matches atbb.yaml")
        return
    render.write(k.cfg, path)
    print(f"wrote {path}; rebuild the image (inv image) and commit the file")


@kit_task(
    help={
        "check": "Answer for one path: which route and service get it (e.g. --check /api/health).",
        "host": "The Host the request carries, for routes with host: (default: any other host).",
    }
)
def routes(c, check=None, host=None):
    """Show which service each path goes to, in nginx's order of precedence (exact, then longest prefix)."""
    from atbb_kit.core import routing
    from atbb_kit.core.errors import KitError

    k = kit(c)
    if check is not None:
        if not check.startswith("/"):
            raise KitError(f"--check {check!r} is not a URL path", "give a path starting with '/', e.g. --check /api/")
        route = routing.resolve(k.cfg.routes, check, host)
        port = k.cfg.services[route.service].port
        where = f" (host {route.host})" if route.host else ""
        print(f"{check} -> {route.service} on 127.0.0.1:{port} via {route.match} route {route.path}{where}")
        return
    from rich.console import Console
    from rich.table import Table

    for server in routing.servers(k.cfg.routes):
        title = f"host {server.host}" if server.host else "any host"
        table = Table(title=f"routes: {title}", title_justify="left")
        for column in ("#", "match", "path", "service", "port", "cache"):
            table.add_column(column)
        for i, route in enumerate(server.routes, 1):
            port = k.cfg.services[route.service].port
            table.add_row(str(i), route.match, route.path, route.service, str(port), route.cache or "")
        Console(width=max(100, Console().width)).print(table)
    unrouted = [name for name, svc in k.cfg.services.items() if svc.port is None]
    if unrouted:
        print(f"no route (no port): {', '.join(unrouted)}")
    print("precedence: an exact route for the path, else the longest matching prefix (first row that matches)")


@kit_task(
    help={
        "monorepo": "The app's root folder, where pnpm-workspace.yaml is (default: the current folder).",
        "write": "Write atbb.yaml (overwriting one that exists) and add the missing .dockerignore/.gitignore lines.",
    }
)
def init(c, monorepo=None, write=False):
    """Draft atbb.yaml for an existing pnpm workspace and say what it could not infer (writes only with --write)."""
    import sys
    from pathlib import Path

    from atbb_kit.core.errors import KitError
    from atbb_kit.ops import scaffold

    folder = Path(monorepo) if monorepo else Path.cwd()
    if not folder.is_dir():
        raise KitError(
            f"--monorepo {monorepo}: not a folder", "give the app's root folder (where pnpm-workspace.yaml is)"
        )
    proposal = scaffold.propose(folder)
    target = folder / scaffold.CONFIG_NAME
    existing = target.read_text(encoding="utf-8") if target.is_file() else None
    if existing is None:
        print(proposal.text, end="")
    elif existing == proposal.text:
        print(f"{target} already is what inv init proposes")
    else:
        print(scaffold.unified_diff(existing, proposal.text), end="")
    sys.stdout.flush()
    # Notes go to stderr, so `inv init > atbb.yaml` leaves a clean file.
    checks = [*proposal.notes, *(f"does not validate yet: {p}" for p in proposal.problems)]
    if checks:
        print("could not infer (check these; they are also `# check:` comments in the file):", file=sys.stderr)
        for note in checks:
            print(f"  - {note}", file=sys.stderr)
    plans = [p for p in (proposal.dockerignore, proposal.gitignore) if p.added]
    if not write:
        for plan in plans:
            verb = "would be created with" if plan.created else "would get"
            print(f"with --write, {plan.name} {verb}: {', '.join(plan.added)}", file=sys.stderr)
        what = f"{target.name} exists and is unchanged" if existing is not None else "nothing was written"
        print(f"{what}; rerun with --write to write {target.name} and the ignore lines", file=sys.stderr)
        return
    if existing != proposal.text:
        if existing is not None:
            print(f"overwriting {target} with the proposal (the diff above)", file=sys.stderr)
        target.write_text(proposal.text, encoding="utf-8")
        print(f"wrote {target}", file=sys.stderr)
    for plan in plans:
        (folder / plan.name).write_text(plan.text, encoding="utf-8")
        verb = "created" if plan.created else "added to"
        print(f"{verb} {folder / plan.name}: {', '.join(plan.added)}", file=sys.stderr)
    print(
        "next: edit the `# check:` lines, then `inv nginx-conf` and `inv config --check` (docs/adopting.md)",
        file=sys.stderr,
    )
