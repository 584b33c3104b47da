"""The operator's tasks: migrate, compose-up/down, logs, status, doctor, backup, restore, secret.

The decisions behind them are documented in atbb_kit/ops/deployment.py.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from atbb_kit.core import flags
from atbb_kit.ops import deployment as ops
from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task

ENV_HELP = "The env file with the app's variables (default .env; see .env.production.example)."
IMAGE_HELP = "Image reference to run (default: the image `inv image` builds for this checkout)."


@kit_task
def secret(c):
    """Print a fresh 64-hex-character SESSION_SECRET."""
    import secrets as _secrets

    print(_secrets.token_hex(32))


# --- migrate ------------------------------------------------------------------------------------------


@kit_task(
    help={
        "env_file": ENV_HELP,
        "image": IMAGE_HELP,
        "timeout": "Seconds the migration may take in all; then its container is stopped and removed "
        "(default: migrate.wait_timeout + 900).",
        "network": ops.NETWORK_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def migrate(c, env_file=".env", image=None, timeout=None, network=None, dry_run=False):
    """Run database migrations in a one-off container of the image (safe to repeat, even concurrently)."""
    from atbb_kit.commands.base import Command, argv
    from atbb_kit.core import image_spec
    from atbb_kit.core.errors import CommandFailed
    from atbb_kit.infra import engine
    from atbb_kit.ops import backup

    timeout = None if timeout is None else flags.whole_number("timeout", timeout, 960, 1, 86400)
    flags.network("network", network)
    flags.path("env-file", env_file)
    flags.image_ref("image", image)
    k = kit(c, dry_run=dry_run)
    _, report = ops.checked_env(k, env_file)
    target = ops.database(report)
    ref = image or ops.default_image(k.cfg)
    wait = k.cfg.migrate.wait_timeout
    joined = network or k.cfg.compose.network or None  # what a dry run shows
    docker = "docker"
    if not k.run.dry_run:
        engine.client()
        tag = shlex.join(["inv", "image", "--tag", ref])
        ops.require_image(ref, f"build it with `inv image` (`{tag}` for this name), or pull it")
        explicit = ops.explicit_network(k, network)
        joined = ops.db_network(k, target, explicit)
        docker = engine.cli_path()
        if joined and not explicit:
            ops.say(f"==> the Compose stack is up: running on its network {joined}")
    if joined:
        ops.say(f"==> the migrator joins the Docker network {joined}")
    # DB_WAIT_TIMEOUT comes from atbb.yaml (migrate.wait_timeout), not from the env file: the migrator
    # waits that long for the database, printing one progress line per attempt.
    values = ops.migrator_env(report.values)
    job = ops.one_off(docker, "migrate", "the migrator", ops.migrate_deadline(k.cfg, timeout), ops.MIGRATE_FIX)
    cmd = Command(
        argv(
            docker,
            "run",
            "--rm",
            backup.oneoff_flags(job.name),
            ("--network", joined) if joined else None,
            *[("--env", name) for name in values],
            ("--env", f"DB_WAIT_TIMEOUT={wait}"),
            ref,
            list(image_spec.MIGRATE_ARGS),
        ),
        env=values,
    )
    ops.say(f"==> migrating {target.where} (waiting up to {wait}s for the database, {job.deadline:g}s in all)")
    try:
        k.run.run(cmd, oneoff=job)
    except CommandFailed as exc:
        raise CommandFailed(
            f"migrations failed: the migrator exited with code {exc.exit_code}",
            "its reason is on the `migrate error:` line above (a host that cannot be resolved or reached on "
            "another Docker network needs --network NAME); the deployment guide's troubleshooting section "
            "explains each",
            returncode=exc.exit_code,
        ) from None


# --- compose-up / down, logs, status ------------------------------------------------------------------


@kit_task(
    help={
        "env_file": ENV_HELP,
        "image": IMAGE_HELP,
        "pull": "Pull the image from its registry first (to update it, or instead of building a missing one).",
        "build": "Build the image even when it exists.",
        "demo": "Create the env file with throwaway demo values if it does not exist (local trials only).",
        "timeout": "Seconds to wait for each service to turn healthy (default 180, at most 3600).",
        "dry_run": DRY_RUN_HELP,
    }
)
def compose_up(c, env_file=".env", image=None, pull=False, build=False, demo=False, timeout=None, dry_run=False):
    """Start PostgreSQL and atBB with Compose: validate env, build if missing, migrate, wait until healthy."""
    from atbb_kit.commands import compose
    from atbb_kit.core.errors import CommandFailed, EnvFileError, KitError
    from atbb_kit.infra import engine
    from atbb_kit.ops import doctor

    # None default: Invoke would int() a typed number itself, outside the error boundary.
    timeout = flags.whole_number("timeout", timeout, 180, 1, 3600)
    flags.path("env-file", env_file)
    flags.image_ref("image", image)
    k = kit(c, dry_run=dry_run)
    if pull and build:
        raise KitError("--pull and --build ask for opposite things", "use one: --pull fetches, --build builds")
    if demo and not Path(env_file).exists():
        ops.write_demo_env(Path(env_file), k.cfg.compose.host_port)
    path, report = ops.checked_env(k, env_file)
    placeholders = doctor.placeholder_problems(report.values, doctor.example_values(k.cfg), k.cfg.env.secret, path.name)
    if placeholders:
        raise EnvFileError("\n".join(placeholders), doctor.PLACEHOLDER_FIX)
    problems = doctor.compose_env_problems(report.values, path.name)
    if problems:
        raise EnvFileError("\n".join(problems), f"edit {path}: the POSTGRES_* values must match DATABASE_URL")
    ref = image or ops.default_image(k.cfg)
    project, port = k.cfg.compose.project, k.cfg.compose.host_port
    with ops.stack(k, path, ref) as stack:
        if not k.run.dry_run:
            engine.client()
            # Before anything starts: Compose would otherwise create PostgreSQL, migrate, and only then
            # fail on the port with a bare "port is already allocated".
            finding = doctor.port_finding(port, doctor.port_bindable(port), engine.containers_publishing(port), project)
            if finding.level is doctor.Level.FAIL:
                raise KitError(finding.detail, finding.fix)
            ops.ensure_image(c, k, ref, custom=image is not None, pull=pull, build=build)
        ops.say(f"==> starting PostgreSQL (project {project})")
        k.run.run(stack.up("postgres"))
        if not k.run.dry_run:
            ops.wait_healthy(k, stack, "postgres", timeout)
        ops.say("==> running migrations")
        try:
            ops.compose_migrate(k, stack, ops.migrate_deadline(k.cfg, None))
        except CommandFailed as exc:
            raise CommandFailed(
                f"migrations failed: the migrator exited with code {exc.exit_code}; atbb was not started",
                "its reason is on the `migrate error:` line above",
                returncode=exc.exit_code,
            ) from None
        ops.say("==> starting atBB")
        # edge: the front door publishing the host port (docker-compose.example.yml; inv upgrade switches it).
        k.run.run(stack.up("atbb", *(["edge"] if "edge" in compose.services(stack.file) else [])))
        if k.run.dry_run:
            return
        ops.wait_healthy(k, stack, "atbb", timeout)
        ops.confirm_healthy(k, port)
    print(f"atBB is up: http://localhost:{port}/")


@kit_task(
    help={
        "volumes": "Also delete the database volume (ALL forum data). Without it, data is kept.",
        "env_file": ENV_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def compose_down(c, volumes=False, env_file=".env", dry_run=False):
    """Stop the Compose stack; the database volume is kept unless --volumes."""
    from atbb_kit.infra import engine

    flags.path("env-file", env_file)
    k = kit(c, dry_run=dry_run)
    if not k.run.dry_run:
        engine.client()
    with ops.stack(k, Path(env_file), ops.default_image(k.cfg), need_env=False) as stack:
        k.run.run(stack.down(volumes))
    if k.run.dry_run:
        return
    ops.say(
        "stopped; the database volume was deleted"
        if volumes
        else "stopped; the database volume is kept (--volumes deletes it)"
    )


# `--service`/`-s` is a flag, not a positional argument: Invoke has no optional positionals
# (pyinvoke/invoke#159), and a required one would make plain `inv logs` an error.
@kit_task(
    help={
        "service": "Only this service of the Compose file: atbb or postgres (default: all).",
        "follow": "Keep printing new lines (Ctrl-C stops).",
        "tail": "Only the last N lines of each service (default 200; 0: all).",
        "env_file": ENV_HELP,
    },
)
def logs(c, service=None, follow=False, tail=None, env_file=".env"):
    """Show the Compose stack's logs (atbb logs are JSON lines): inv logs [-s SERVICE] [-f]."""
    from atbb_kit.commands import compose
    from atbb_kit.core.errors import KitError
    from atbb_kit.infra import engine

    tail = flags.whole_number("tail", tail, 200, 0, 1_000_000)
    flags.path("env-file", env_file)
    k = kit(c)
    known = compose.services(k.cfg.root() / k.cfg.compose.file)
    if service and service not in known:
        raise KitError(
            f"unknown service {service!r}: the Compose file defines {', '.join(known)}",
            "e.g. `inv logs -s atbb` or `inv logs -s postgres`",
        )
    engine.client()
    if not engine.compose_services(k.cfg.compose.project):
        ops.say(f"note: the stack {k.cfg.compose.project} has no containers (start it with `inv compose-up`)")
    with ops.stack(k, Path(env_file), ops.default_image(k.cfg), need_env=False) as stack:
        k.run.run(stack.logs(service, follow, tail or None), quiet=True)


@kit_task(help={"env_file": ENV_HELP})
def status(c, env_file=".env"):
    """Show the Compose stack's containers, their health and the URL."""
    from rich.console import Console
    from rich.table import Table

    from atbb_kit.infra import engine

    flags.path("env-file", env_file)
    k = kit(c)
    engine.client()
    project, port = k.cfg.compose.project, k.cfg.compose.host_port
    services = engine.compose_services(project)
    if not services:
        print(f"stack {project}: not running (start it with `inv compose-up`)")
        return
    table = Table(title=f"stack {project}", title_justify="left")
    for column in ("service", "container", "state", "health", "ports"):
        table.add_column(column)
    for s in services:
        table.add_row(s.service, s.container, s.state, s.health or "-", s.ports or "-")
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    app = next((s for s in services if s.service == "atbb"), None)
    if app and app.health == "healthy":
        print(f"atBB is up: http://localhost:{port}/")


# --- doctor -------------------------------------------------------------------------------------------


@kit_task(help={"env_file": ENV_HELP, "image": IMAGE_HELP, "network": ops.NETWORK_HELP})
def doctor(c, env_file=".env", image=None, network=None):
    """Check the engine, Compose, disk, env file, database, port and images: ok / warn / fail with fixes."""
    from invoke import Exit

    from atbb_kit.ops import doctor as checks

    flags.network("network", network)
    flags.path("env-file", env_file)
    flags.image_ref("image", image)
    k = kit(c)
    probe = checks.Probe(
        k.cfg, k.run, Path(env_file), image or ops.default_image(k.cfg), network_name=ops.explicit_network(k, network)
    )
    findings = checks.run_checks(probe)
    checks.render(findings)
    code = checks.exit_code(findings)
    if code:
        raise Exit(code=code)


# --- backup / restore ---------------------------------------------------------------------------------


@kit_task(
    help={
        "env_file": ENV_HELP,
        "output": "Folder for the dump (default backups/; created private, mode 700).",
        "network": ops.NETWORK_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def backup(c, env_file=".env", output="backups", network=None, dry_run=False):
    """Dump the forum database (pg_dump -Fc) to OUTPUT/atbb-YYYYmmdd-HHMMSS.dump (UTC, mode 600)."""
    import os
    import shutil
    import tempfile
    from datetime import UTC, datetime

    from atbb_kit.core.errors import KitError
    from atbb_kit.ops import backup as db

    flags.network("network", network)
    flags.path("env-file", env_file)
    out_dir = Path(flags.path("output", output))
    db.check_output_dir(out_dir)
    k = kit(c, dry_run=dry_run)
    _, report = ops.checked_env(k, env_file)
    docker, image, target, env, network = ops.db_access(k, report, network)
    name = db.backup_name(datetime.now(UTC))
    final = out_dir / name
    job = ops.one_off(docker, "backup", "pg_dump", ops.TRANSFER_SECONDS, ops.TRANSFER_FIX, remove_after=False)
    container = job.name
    if k.run.dry_run:
        k.run.run(db.probe(docker, image, env, network, name=ops.oneoff_name("probe")))
        k.run.run(db.create(docker, container, image, db.dump_args(), env, network))
        k.run.run(db.start_attached(docker, container))
        k.run.run(db.copy(docker, f"{container}:{db.CONTAINER_DUMP}", str(final)))
        k.run.run(db.remove(docker, container))
        return
    found = ops.probe(k, docker, image, target, env, network)
    ops.say(f"==> dumping {target.where} (PostgreSQL {found.server_major}, {found.public_tables} tables)")
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The dump arrives in a private folder next to its final place, gets mode 600 there, and only then
    # takes its name: at no moment is a readable dump, or a half-copied one, under the final name.
    scratch = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    try:
        k.run.run(db.create(docker, container, image, db.dump_args(), env, network), capture=True)
        result = k.run.run(db.start_attached(docker, container), check=False, capture=True, oneoff=job)
        if not result.ok:
            raise ops.tool_failure(
                "pg_dump", result, target, "nothing was written; check the database and DATABASE_URL"
            )
        partial = scratch / name
        k.run.run(db.copy(docker, f"{container}:{db.CONTAINER_DUMP}", str(partial)), capture=True)
        partial.chmod(0o600)
        with partial.open("rb") as fh:
            if not db.is_custom_dump(fh.read(len(db.DUMP_MAGIC))):
                raise KitError("pg_dump's output is not a custom-format archive", "report this: it is a kit bug")
        if final.exists():
            raise KitError(f"{final} already exists", "wait a second and run `inv backup` again")
        os.replace(partial, final)
    finally:
        k.run.run(db.remove(docker, container), check=False, capture=True, quiet=True)
        shutil.rmtree(scratch, ignore_errors=True)
    size = final.stat().st_size
    shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
    ops.say(f"backup written: {final} ({shown}, mode 600); restore it with `{db.restore_command(final)}`")
    print(final)


@kit_task(
    positional=["file"],
    help={
        "file": "A dump written by `inv backup` (pg_dump custom format).",
        "env_file": ENV_HELP,
        "force": "Replace the content of a database that already holds tables.",
        "network": ops.NETWORK_HELP,
        "dry_run": DRY_RUN_HELP,
    },
)
def restore(c, file, env_file=".env", force=False, network=None, dry_run=False):
    """Restore a dump from `inv backup` into the forum database (all or nothing; --force to replace data)."""
    from atbb_kit.core.errors import KitError
    from atbb_kit.ops import backup as db

    k = kit(c, dry_run=dry_run)
    if file in ("-h", "--help"):
        # Invoke hands a required positional anything that is not one of the task's flags, --help too.
        print(
            "usage: inv restore FILE [--force] [--env-file F] [--network N] [--dry-run]   "
            "(inv --help restore: every option)"
        )
        return
    dump = Path(file)
    db.check_dump_file(dump)
    flags.network("network", network)
    flags.path("env-file", env_file)
    _, report = ops.checked_env(k, env_file)
    docker, image, target, env, network = ops.db_access(k, report, network)
    job = ops.one_off(docker, "restore", "pg_restore", ops.TRANSFER_SECONDS, ops.TRANSFER_FIX, remove_after=False)
    container = job.name
    if not k.run.dry_run:
        found = ops.probe(k, docker, image, target, env, network)
        if found.public_tables and not force:
            raise KitError(
                f"the database {target.dbname} on {target.host} is not empty ({found.public_tables} tables in "
                "schema public); restoring would replace its content",
                "rerun with --force to replace it (take a backup of it first: inv backup)",
            )
        ops.say(
            f"==> restoring {dump} into {target.where}" + (" (replacing its content)" if found.public_tables else "")
        )
    try:
        k.run.run(db.create(docker, container, image, db.restore_args(target.dbname), env, network), capture=True)
        k.run.run(db.copy(docker, str(dump), f"{container}:{db.CONTAINER_DUMP}"), capture=True)
        result = k.run.run(db.start_attached(docker, container), check=False, capture=True, oneoff=job)
        if not result.ok:
            raise ops.tool_failure(
                "pg_restore", result, target, "the restore ran in one transaction, so the database is unchanged"
            )
    finally:
        k.run.run(db.remove(docker, container), check=False, capture=True, quiet=not k.run.dry_run)
    if not k.run.dry_run:
        ops.say(f"restored {dump} into {target.where}")
