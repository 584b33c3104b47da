"""What `inv upgrade` and `inv rollback` do around the switch in ops/upgrade.py: the doctor's preflight,
the image present or pulled, the release to roll back to, the lock and the history, and the hooks that run
smoke, backup and migrate through the same operations their own tasks use.

The tasks only check flags and call `run`.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from atbb_kit.core.errors import CommandFailed, KitError
from atbb_kit.infra import engine
from atbb_kit.infra.console import console
from atbb_kit.infra.signals import raise_for_rest_of_process
from atbb_kit.ops import backup, deployment, doctor, releases
from atbb_kit.ops import upgrade as up
from atbb_kit.ops.smoke import smoke as smoke_run

# The doctor's checks an upgrade depends on; any `fail` stops it before anything changes.
PREFLIGHT_CHECKS = frozenset(
    {"engine", "compose", "disk", "env", "permissions", "compose-settings", "database", "port"}
)


@dataclass(frozen=True)
class Request:
    """One `inv upgrade` or `inv rollback`, its flags already checked."""

    action: str  # "upgrade" or "rollback"
    ref: str | None  # the image (upgrade); None for a rollback, which finds it in the history
    to: str | None  # rollback --to
    env_file: str
    state_dir: Path
    allow_downgrade: bool
    smoke: bool
    backup_dir: str
    timeout: int
    drain: int


def doctor_preflight(k, env_file: str) -> None:
    probe = doctor.Probe(k.cfg, k.run, Path(env_file), deployment.default_image(k.cfg))
    findings = doctor.run_checks(probe, [c for c in doctor.CHECKS if c.key in PREFLIGHT_CHECKS])
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


def ensure_image(k, ref: str) -> up.ImageFacts:
    """The image's facts, pulled first when it is not local and names a registry."""
    found = up.image_facts(ref)
    if found is not None:
        return found
    if not deployment.names_a_registry(ref):
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


def dry_run(k, req: Request, ref: str, steps: list[up.Step]) -> None:
    env_file, q = req.env_file, shlex.quote
    with deployment.stack(k, Path(env_file), ref) as stack:
        details = {
            "smoke": [f"inv smoke --image {q(ref)}"],
            "backup": [f"inv backup --env-file {q(env_file)} --output {q(req.backup_dir)}"],
            "migrate": [f"inv migrate --env-file {q(env_file)} --image {q(ref)}"],
            "start": [
                up.cmds.point_edge("docker", "EDGE", "OLD", "OLD-LABEL").display()
                + "   # only when the edge does not point at OLD yet",
                up.cmds.scale_up(stack, 2).display(),
            ],
            "switch": [up.cmds.point_edge("docker", "EDGE", "NEW", "NEW-LABEL").display()],
            "drain": [
                f"sleep {req.drain}",
                up.cmds.stop("docker", "OLD", up.STOP_GRACE).display(),
                up.cmds.remove("docker", "OLD").display(),
            ],
            "record": [f"append to {releases.history_path(req.state_dir)}"],
        }
    console.say(f"{req.action} to {ref} (dry run: nothing is changed)")
    for line in up.dry_run_lines(steps, details):
        console.result(line)


def run(k, req: Request) -> None:
    """`inv upgrade` / `inv rollback`: plan, preflight, then ops/upgrade.execute under the lock."""
    history = releases.load_history(req.state_dir)
    steps = up.plan(req.action, smoke=req.smoke)
    ref = req.ref
    if req.action == "rollback":
        ref, warning = releases.rollback_target(history, req.to)
        if warning:
            console.warn(warning)
    assert ref is not None
    if k.run.dry_run:
        dry_run(k, req, ref, steps)
        return

    raise_for_rest_of_process()
    # The env file first: its folder is the default state folder, which the lock would otherwise create.
    deployment.checked_env(k, req.env_file)
    engine.client()
    command = shlex.join(["inv", *sys.argv[1:]]) if sys.argv else f"inv {req.action}"
    env_path = Path(req.env_file)
    with releases.Lock(req.state_dir, command, warn=console.warn):
        sw = up.Switch(
            k, lambda image: deployment.stack(k, env_path, image), req.env_file, timeout=req.timeout, drain=req.drain
        )
        sw.docker = engine.cli_path()
        facts: dict[str, up.ImageFacts] = {}

        def preflight() -> None:
            doctor_preflight(k, req.env_file)
            sw.find_stack()
            new = ensure_image(k, ref)
            current = sw.current_facts()
            sw.old_facts = current
            console.say(f"    running: {current.shown()}")
            console.say(f"    new:     {new.shown()}")
            if new.image_id and new.image_id == current.image_id:
                raise KitError(f"{ref} is the image that already runs", "nothing to do")
            if req.action == "upgrade":
                problem = releases.downgrade_problem(current.version, new.version, req.allow_downgrade)
                if problem:
                    raise problem
            known = history.current
            if known is None or (known.image_id and known.image_id != current.image_id):
                releases.append(history, up.release_of(current, "found running", container=sw.old.name))
            facts["new"] = new

        def run_smoke(image: str) -> None:
            smoke_run(engine.client(), k.cfg, image, timeout=float(req.timeout))

        def run_backup() -> str:
            out = Path(req.backup_dir)
            backup.check_output_dir(out)
            before = set(out.glob("atbb-*.dump")) if out.is_dir() else set()
            deployment.backup(k, req.env_file, out, None)
            made = sorted(set(out.glob("atbb-*.dump")) - before)
            if not made:
                raise KitError(f"inv backup finished but wrote no dump into {out}", "run `inv backup` by hand")
            return str(made[-1])

        def run_migrate(image: str) -> None:
            deployment.migrate(k, req.env_file, image, None, None)

        hooks = up.Hooks(smoke=run_smoke, backup=run_backup, migrate=run_migrate)
        outcome = up.execute(
            sw, steps, ref, lambda: facts["new"], hooks, history, action=req.action, preflight=preflight
        )
    console.result(
        f"{req.action}: {outcome.new.ref} serves ({outcome.new_container}); {outcome.old_container} was removed"
    )
