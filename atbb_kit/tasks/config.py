"""`inv config`, `inv nginx-conf`, `inv routes`, `inv init`: thin tasks over atbb_kit.ops.configuration."""

from __future__ import annotations

from atbb_kit.tasks._base import kit, kit_task


@kit_task(
    help={
        "check": "Only validate atbb.yaml and ATBB_* variables: one line, non-zero exit if invalid.",
        "json": "Print the effective values as JSON (no sources) for scripts.",
    }
)
def config(c, check=False, json_=False):
    """Show the effective config, each value with its source (file line, env variable or default)."""
    from atbb_kit.ops import configuration

    configuration.show_config(kit(c), check, json_)


@kit_task(help={"check": "Only report whether nginx.conf (nginx.conf in atbb.yaml) matches atbb.yaml."})
def nginx_conf(c, check=False):
    """Render nginx.conf from atbb.yaml (routes, ports, headers, limits); commit the result."""
    from atbb_kit.ops import configuration

    configuration.render_nginx_conf(kit(c), check)


@kit_task(
    help={
        "check": "Answer for one path: which route and service get it (e.g. --check /api/health).",
        "host": "The Host the request carries, for routes with host: (default: any other host).",
    }
)
def routes(c, check=None, host=None):
    """Show which service each path goes to, in nginx's order of precedence (exact, then longest prefix)."""
    from atbb_kit.ops import configuration

    configuration.show_routes(kit(c), check, host)


@kit_task(
    help={
        "monorepo": "The app's root folder, where pnpm-workspace.yaml is (default: the current folder).",
        "write": "Write atbb.yaml (overwriting one that exists) and add the missing .dockerignore/.gitignore lines.",
    }
)
def init(c, monorepo=None, write=False):
    """Draft atbb.yaml for an existing pnpm workspace and say what it could not infer (writes only with --write)."""
    from atbb_kit.ops import configuration

    configuration.draft_config(monorepo, write)
