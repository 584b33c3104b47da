"""`inv upgrade`, `inv rollback`, `inv releases`: change the running image behind the edge, with history.

How it works and why: atbb_kit/ops/upgrade.py and docs/decisions.md ("the upgrade edge").
"""

from __future__ import annotations

from pathlib import Path

from atbb_kit.core import flags
from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task

ENV_HELP = "The env file with the app's variables (default .env)."
STATE_HELP = "Folder of the release history and the upgrade lock (default: the env file's folder)."
TIMEOUT_HELP = "Seconds the new container may take to pass its health check (default 120, at most 3600)."
DRAIN_HELP = "Seconds the old container keeps running after the switch, for requests in flight (default 5)."


def _state_dir(env_file: str, state_dir: str | None) -> Path:
    if state_dir is not None:
        return Path(flags.path("state-dir", state_dir))
    return Path(env_file).resolve().parent


def _request(action, *, ref, to, env_file, state_dir, allow_downgrade, smoke, backup_dir, timeout, drain):
    """The flags checked, as ops/upgrade_run's Request."""
    from atbb_kit.ops.upgrade_run import Request

    flags.path("env-file", env_file)
    flags.path("backup-dir", backup_dir)
    return Request(
        action=action,
        ref=ref,
        to=to,
        env_file=env_file,
        state_dir=_state_dir(env_file, state_dir),
        allow_downgrade=allow_downgrade,
        smoke=smoke,
        backup_dir=backup_dir,
        timeout=flags.whole_number("timeout", timeout, 120, 1, 3600),
        drain=flags.whole_number("drain", drain, 5, 0, 600),
    )


@kit_task(
    help={
        "image": "The image to run (a reference; pulled when it is not local and names a registry).",
        "version": "Or a version X.Y.Z of the configured image repository (image.registry/owner/name).",
        "env_file": ENV_HELP,
        "state_dir": STATE_HELP,
        "allow_downgrade": "Allow an image whose version label is older than the running one's.",
        "smoke": "Smoke-test the new image first (default; --no-smoke skips it).",
        "backup_dir": "Folder for the backup taken before migrating (default backups/).",
        "timeout": TIMEOUT_HELP,
        "drain": DRAIN_HELP,
        "dry_run": "Print every step and its commands; change nothing.",
    }
)
def upgrade(
    c,
    image=None,
    version=None,
    env_file=".env",
    state_dir=None,
    allow_downgrade=False,
    smoke=True,
    backup_dir="backups",
    timeout=None,
    drain=None,
    dry_run=False,
):
    """Upgrade with no failed request: smoke, backup, migrate, start next to the old, health-gated switch."""
    from atbb_kit.ops import deployment as dep
    from atbb_kit.ops import upgrade as up
    from atbb_kit.ops import upgrade_run

    flags.image_ref("image", image)
    k = kit(c, dry_run=dry_run)
    ref = up.resolve_ref(image, version, dep.default_image(k.cfg))
    flags.image_ref("image", ref)
    request = _request(
        "upgrade",
        ref=ref,
        to=None,
        env_file=env_file,
        state_dir=state_dir,
        allow_downgrade=allow_downgrade,
        smoke=smoke,
        backup_dir=backup_dir,
        timeout=timeout,
        drain=drain,
    )
    upgrade_run.run(k, request)


@kit_task(
    help={
        "to": "The release to return to: an image reference, id prefix or version from `inv releases` "
        "(default: the previous one).",
        "env_file": ENV_HELP,
        "state_dir": STATE_HELP,
        "timeout": TIMEOUT_HELP,
        "drain": DRAIN_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def rollback(c, to=None, env_file=".env", state_dir=None, timeout=None, drain=None, dry_run=False):
    """Return to the previous release (or --to one) with the same health-gated switch; warns about migrations."""
    from atbb_kit.ops import upgrade_run

    request = _request(
        "rollback",
        ref=None,
        to=to,
        env_file=env_file,
        state_dir=state_dir,
        allow_downgrade=True,
        smoke=False,
        backup_dir="backups",
        timeout=timeout,
        drain=drain,
    )
    upgrade_run.run(kit(c, dry_run=dry_run), request)


@kit_task(help={"env_file": ENV_HELP, "state_dir": STATE_HELP})
def releases(c, env_file=".env", state_dir=None):
    """Show the release history: which image ran when, who changed it, the backup taken, migrations."""
    from atbb_kit.infra.console import Column, console
    from atbb_kit.ops import releases as rel

    flags.path("env-file", env_file)
    history = rel.load_history(_state_dir(env_file, state_dir))
    if not history.releases:
        console.result(f"no releases recorded yet in {history.path} (inv upgrade writes them)")
        return
    columns = ["", "at (UTC)", "action", "image", "version", "revision", "by", "migrated", "backup"]
    console.table(
        f"releases ({history.path})",
        [Column(h) for h in columns],
        rel.table_rows(history.releases),
        caption="* serves now; newest first",
    )
