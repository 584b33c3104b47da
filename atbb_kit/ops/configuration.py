"""What `inv config`, `inv nginx-conf`, `inv routes` and `inv init` show and write.

Results (the tables, the JSON, the drafted atbb.yaml) go to stdout; notes to stderr, so `inv init >
atbb.yaml` leaves a clean file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from atbb_kit.core import nginx_conf, routing
from atbb_kit.core.config import effective_items
from atbb_kit.core.errors import ConfigError, KitError
from atbb_kit.infra.console import Column, console
from atbb_kit.ops import scaffold

# Credentials are read from the environment only, and only their presence is ever shown.
CREDENTIAL_VARIABLES = ("ATBB_REGISTRY_USER", "ATBB_REGISTRY_TOKEN", "GITHUB_TOKEN")


def show_config(k, check: bool, as_json: bool) -> None:
    """`inv config`: the effective values with their sources; `check`: only validate, in one line."""
    if check:
        # The rendered nginx.conf is part of what atbb.yaml means: a stale one would ship the old routes.
        drift = nginx_conf.check_drift(k.cfg, k.cfg.nginx_conf_path())
        if drift:
            raise ConfigError(drift)
        console.result(f"ok: {k.cfg.file()} is valid and {k.cfg.nginx_conf_path().name} matches it")
        return
    if as_json:
        console.result(json.dumps(k.cfg.model_dump(mode="json"), indent=2))
        return
    rows = []
    for path, value, source in effective_items(k.cfg):
        shown = ", ".join(map(str, value)) if isinstance(value, tuple) else ("" if value is None else str(value))
        rows.append((path, shown, source))
    for var in CREDENTIAL_VARIABLES:
        if var in os.environ:
            rows.append((f"({var})", "***" if "TOKEN" in var else os.environ[var], "env"))
    columns = [Column("key", style="bold"), Column("value"), Column("from", style="dim")]
    console.table("atBB kit: effective config", columns, rows)


def render_nginx_conf(k, check: bool) -> None:
    """`inv nginx-conf`: write nginx.conf from atbb.yaml when it differs; `check`: only say whether it does."""
    path = k.cfg.nginx_conf_path()
    drift = nginx_conf.check_drift(k.cfg, path)
    if check:
        if drift:
            raise KitError(drift)
        console.result(f"ok: {path} matches atbb.yaml")
        return
    if drift is None:
        console.result(f"{path} already matches atbb.yaml")
        return
    nginx_conf.write(k.cfg, path)
    console.result(f"wrote {path}; rebuild the image (inv image) and commit the file")


def show_routes(k, check: str | None, host: str | None) -> None:
    """`inv routes`: a table per server in nginx's order of precedence; `check`: the route one path takes."""
    if check is not None:
        if not check.startswith("/"):
            raise KitError(f"--check {check!r} is not a URL path", "give a path starting with '/', e.g. --check /api/")
        route = routing.resolve(k.cfg.routes, check, host)
        port = k.cfg.services[route.service].port
        where = f" (host {route.host})" if route.host else ""
        console.result(f"{check} -> {route.service} on 127.0.0.1:{port} via {route.match} route {route.path}{where}")
        return
    for server in routing.servers(k.cfg.routes):
        title = f"host {server.host}" if server.host else "any host"
        rows = [
            (str(i), r.match, r.path, r.service, str(k.cfg.services[r.service].port), r.cache or "")
            for i, r in enumerate(server.routes, 1)
        ]
        console.table(f"routes: {title}", ("#", "match", "path", "service", "port", "cache"), rows)
    unrouted = [name for name, svc in k.cfg.services.items() if svc.port is None]
    if unrouted:
        console.result(f"no route (no port): {', '.join(unrouted)}")
    console.result("precedence: an exact route for the path, else the longest matching prefix (first row that matches)")


def draft_config(monorepo: str | None, write: bool) -> None:
    """`inv init`: the proposed atbb.yaml (or its diff to the existing one) on stdout, what could not be
    inferred on stderr; with `write`, the file and the missing ignore lines are written."""
    folder = Path(monorepo) if monorepo else Path.cwd()
    if not folder.is_dir():
        raise KitError(
            f"--monorepo {monorepo}: not a folder", "give the app's root folder (where pnpm-workspace.yaml is)"
        )
    proposal = scaffold.propose(folder)
    target = folder / scaffold.CONFIG_NAME
    existing = target.read_text(encoding="utf-8") if target.is_file() else None
    if existing is None:
        console.out.write(proposal.text)
    elif existing == proposal.text:
        console.result(f"{target} already is what inv init proposes")
    else:
        console.out.write(scaffold.unified_diff(existing, proposal.text))
    console.out.flush()
    checks = [*proposal.notes, *(f"does not validate yet: {p}" for p in proposal.problems)]
    if checks:
        console.say("could not infer (check these; they are also `# check:` comments in the file):")
        for note in checks:
            console.say(f"  - {note}")
    plans = [p for p in (proposal.dockerignore, proposal.gitignore) if p.added]
    if not write:
        for plan in plans:
            verb = "would be created with" if plan.created else "would get"
            console.say(f"with --write, {plan.name} {verb}: {', '.join(plan.added)}")
        what = f"{target.name} exists and is unchanged" if existing is not None else "nothing was written"
        console.say(f"{what}; rerun with --write to write {target.name} and the ignore lines")
        return
    if existing != proposal.text:
        if existing is not None:
            console.say(f"overwriting {target} with the proposal (the diff above)")
        target.write_text(proposal.text, encoding="utf-8")
        console.say(f"wrote {target}")
    for plan in plans:
        (folder / plan.name).write_text(plan.text, encoding="utf-8")
        verb = "created" if plan.created else "added to"
        console.say(f"{verb} {folder / plan.name}: {', '.join(plan.added)}")
    console.say("next: edit the `# check:` lines, then `inv nginx-conf` and `inv config --check` (docs/adopting.md)")
