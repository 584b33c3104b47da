"""`inv upgrade`, `inv rollback`, `inv releases`: change the running image behind the edge, with history.

How it works and why: atbb_kit/ops/upgrade.py and docs/decisions.md ("the upgrade edge").
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from pathlib import Path

from atbb_kit.core import flags
from atbb_kit.core.errors import CommandFailed, KitError
from atbb_kit.tasks import deployment as dtasks
from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task

ENV_HELP = "The env file with the app's variables (default .env)."
STATE_HELP = "Folder of the release history and the upgrade lock (default: the env file's folder)."
TIMEOUT_HELP = "Seconds the new container may take to pass its health check (default 120, at most 3600)."
DRAIN_HELP = "Seconds the old container keeps running after the switch, for requests in flight (default 5)."


def _state_dir(env_file: str, state_dir: str | None):

    if state_dir is not None:
        return Path(flags.path("state-dir", state_dir))
    return Path(env_file).resolve().parent


def _doctor_preflight(k, env_file: str) -> None:
    """The doctor's checks an upgrade depends on; any `fail` stops it before anything changes."""

    from atbb_kit.infra.console import console
    from atbb_kit.ops import deployment as dep
    from atbb_kit.ops import doctor

    keys = {"engine", "compose", "disk", "env", "permissions", "compose-settings", "database", "port"}
    probe = doctor.Probe(k.cfg, k.run, Path(env_file), dep.default_image(k.cfg))
    findings = doctor.run_checks(probe, [c for c in doctor.CHECKS if c.key in keys])
    for f in findings:
        if f.level is not doctor.Level.OK:
            console.say(f"    doctor {f.level.value}: {f.check}: {f.detail}")
    failed = [f for f in findings if f.level is doctor.Level.FAIL]
    if failed:
        raise KitError(
            "the doctor's checks failed: " + "; ".join(f"{f.check}: {f.detail}" for f in failed),
            failed[0].fix or "run `inv doctor` for the details",
        )
    console.say(f"    doctor: {len(findings)} checks, none failed")


def _ensure_image(k, ref: str):
    from atbb_kit.infra import engine
    from atbb_kit.infra.console import console
    from atbb_kit.ops import deployment as dep
    from atbb_kit.ops import upgrade as up

    found = up.image_facts(ref)
    if found is None:
        if not dep.names_a_registry(ref):
            raise KitError(
                f"image {ref} is not present locally and names no registry to pull it from",
                "build it (inv image --tag REF) or give a registry reference like ghcr.io/OWNER/atbb:1.2.3",
            )
        console.say(f"    pulling {ref}")
        try:
            k.run.run(up.cmds.pull(engine.cli_path(), ref))
        except CommandFailed:
            raise KitError(
                f"could not pull {ref} (docker's reason is above)", "check the reference and docker login"
            ) from None
        found = up.image_facts(ref)
        if found is None:
            raise KitError(f"{ref} was pulled but is not in the local engine", "pull it by hand: docker pull REF")
    return found


def _run(c, action, *, ref, to, env_file, state_dir, allow_downgrade, smoke, backup_dir, timeout, drain, dry_run):

    from atbb_kit.infra import engine
    from atbb_kit.infra.console import console
    from atbb_kit.infra.signals import raise_for_rest_of_process
    from atbb_kit.ops import deployment as dep
    from atbb_kit.ops import releases
    from atbb_kit.ops import upgrade as up

    timeout = flags.whole_number("timeout", timeout, 120, 1, 3600)
    drain = flags.whole_number("drain", drain, 5, 0, 600)
    flags.path("env-file", env_file)
    flags.path("backup-dir", backup_dir)
    k = kit(c, dry_run=dry_run)
    state = _state_dir(env_file, state_dir)
    history = releases.load_history(state)
    steps = up.plan(action, smoke=smoke)

    if action == "rollback":
        ref, warning = _rollback_target(history, to)
        if warning:
            console.warn(warning)

    if k.run.dry_run:
        with dep.stack(k, Path(env_file), ref) as stack:
            details = {
                "smoke": [f"inv smoke --image {shlex.quote(ref)}"],
                "backup": [f"inv backup --env-file {shlex.quote(env_file)} --output {shlex.quote(backup_dir)}"],
                "migrate": [f"inv migrate --env-file {shlex.quote(env_file)} --image {shlex.quote(ref)}"],
                "start": [
                    up.cmds.point_edge("docker", "EDGE", "OLD", "OLD-LABEL").display()
                    + "   # only when the edge does not point at OLD yet",
                    up.cmds.scale_up(stack, 2).display(),
                ],
                "switch": [up.cmds.point_edge("docker", "EDGE", "NEW", "NEW-LABEL").display()],
                "drain": [
                    f"sleep {drain}",
                    up.cmds.stop("docker", "OLD", up.STOP_GRACE).display(),
                    up.cmds.remove("docker", "OLD").display(),
                ],
                "record": [f"append to {releases.history_path(state)}"],
            }
        console.say(f"{action} to {ref} (dry run: nothing is changed)")
        for line in up.dry_run_lines(steps, details):
            console.result(line)
        return

    raise_for_rest_of_process()
    # The env file first: its folder is the default state folder, which the lock would otherwise create.
    dep.checked_env(k, env_file)
    engine.client()
    command = shlex.join(["inv", *sys.argv[1:]]) if sys.argv else f"inv {action}"
    with releases.Lock(state, command, warn=console.warn):
        sw = up.Switch(k, lambda image: dep.stack(k, Path(env_file), image), env_file, timeout=timeout, drain=drain)
        sw.docker = engine.cli_path()
        facts: dict[str, up.ImageFacts] = {}

        def preflight() -> None:
            _doctor_preflight(k, env_file)
            sw.find_stack()
            new = _ensure_image(k, ref)
            current = sw.current_facts()
            console.say(f"    running: {current.shown()}")
            console.say(f"    new:     {new.shown()}")
            if new.image_id and new.image_id == current.image_id:
                raise KitError(f"{ref} is the image that already runs", "nothing to do")
            if action == "upgrade":
                problem = releases.downgrade_problem(current.version, new.version, allow_downgrade)
                if problem:
                    raise problem
            if history.current is None or (history.current.image_id and history.current.image_id != current.image_id):
                releases.append(
                    history,
                    releases.Release(
                        image=current.ref,
                        image_id=current.image_id,
                        version=current.version,
                        revision=current.revision,
                        created=current.created,
                        at=releases.now_iso(),
                        by=f"{os.environ.get('USER', '?')}@{socket.gethostname()}",
                        action="found running",
                        container=sw.old.name,
                    ),
                )
            facts["new"] = new

        def run_smoke(image: str) -> None:
            from atbb_kit.ops.smoke import smoke as smoke_run

            smoke_run(engine.client(), k.cfg, image, timeout=float(timeout))

        def run_backup() -> str:
            out = Path(backup_dir)
            before = set(out.glob("atbb-*.dump")) if out.is_dir() else set()
            dtasks.backup.body(c, env_file=env_file, output=backup_dir)
            made = sorted(set(out.glob("atbb-*.dump")) - before)
            if not made:
                raise KitError(f"inv backup finished but wrote no dump into {out}", "run `inv backup` by hand")
            return str(made[-1])

        def run_migrate(image: str) -> None:
            dtasks.migrate.body(c, env_file=env_file, image=image)

        hooks = up.Hooks(smoke=run_smoke, backup=run_backup, migrate=run_migrate)
        outcome = up.execute(sw, steps, ref, lambda: facts["new"], hooks, history, action=action, preflight=preflight)
    console.result(f"{action}: {outcome.new.ref} serves ({outcome.new_container}); {outcome.old_container} was removed")


def _rollback_target(history, to: str | None) -> tuple[str, str]:
    """(image reference, warning or "") for `inv rollback [--to REF]`."""

    if to:
        found = history.find(to)
        index = found[0] if found else None
        ref = found[1].image if found else to
    else:
        target = history.previous()
        if target is None:
            raise KitError(
                f"the release history {history.path} has no previous release to return to",
                "give one with --to REF (see `inv releases`)",
            )
        index = history.releases.index(target)
        ref = target.image
    warning = ""
    if index is not None:
        migrated = history.migrated_since(index)
        if migrated:
            names = ", ".join(r.image for r in migrated)
            backup = next((r.backup for r in migrated if r.backup), "")
            warning = (
                f"the database was migrated since {ref} ran (by {names}); the older image may refuse it or "
                "misread it"
                + (
                    f". The backup taken before that: {backup} (restore it only if the rollback needs it)"
                    if backup
                    else ""
                )
            )
    return ref, warning


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

    flags.image_ref("image", image)
    k = kit(c)
    ref = up.resolve_ref(image, version, dep.default_image(k.cfg))
    flags.image_ref("image", ref)
    _run(
        c,
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
        dry_run=dry_run,
    )


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
    _run(
        c,
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
        dry_run=dry_run,
    )


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
