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

    from atbb_kit.config import effective_items

    k = kit(c)
    if check:
        print(f"ok: {k.cfg.root() / 'atbb.yaml'} is valid")
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


@kit_task(help={"check": "Only report whether nginx/nginx.conf matches atbb.yaml (non-zero when it drifted)."})
def nginx_conf(c, check=False):
    """Render nginx/nginx.conf from atbb.yaml (routes, ports, static path); commit the result."""
    from atbb_kit import nginx_conf as render
    from atbb_kit.errors import KitError

    k = kit(c)
    path = k.cfg.root() / "nginx" / "nginx.conf"
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
