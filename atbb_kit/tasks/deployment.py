"""The operator's tasks: migrate, compose-up/down, logs, status, doctor, backup, restore, secret.

The decisions behind them are documented in atbb_kit/ops/deployment.py.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from invoke import Exit

from atbb_kit.core import flags
from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task

ENV_HELP = "The env file with the app's variables (default .env; see .env.production.example)."
IMAGE_HELP = "Image reference to run (default: the image `inv image` builds for this checkout)."
NETWORK_HELP = (
    "Docker network the one-off container joins to reach the database (default: compose.network in atbb.yaml, "
    "else the Compose stack's when DATABASE_URL names `postgres`)."
)


@kit_task
def secret(c):
    """Print a fresh 64-hex-character SESSION_SECRET."""
    from atbb_kit.infra.console import console

    console.result(secrets.token_hex(32))


# --- migrate ------------------------------------------------------------------------------------------


@kit_task(
    help={
        "env_file": ENV_HELP,
        "image": IMAGE_HELP,
        "timeout": "Seconds the migration may take in all; then its container is stopped and removed "
        "(default: migrate.wait_timeout + 900).",
        "network": NETWORK_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def migrate(c, env_file=".env", image=None, timeout=None, network=None, dry_run=False):
    """Run database migrations in a one-off container of the image (safe to repeat, even concurrently)."""
    from atbb_kit.ops import deployment as ops

    timeout = None if timeout is None else flags.whole_number("timeout", timeout, 960, 1, 86400)
    flags.network("network", network)
    flags.path("env-file", env_file)
    flags.image_ref("image", image)
    ops.migrate(kit(c, dry_run=dry_run), env_file, image, timeout, network)


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
    from atbb_kit.ops import deployment as ops

    # None default: Invoke would int() a typed number itself, outside the error boundary.
    timeout = flags.whole_number("timeout", timeout, 180, 1, 3600)
    flags.path("env-file", env_file)
    flags.image_ref("image", image)
    k = kit(c, dry_run=dry_run)
    ops.compose_up(k, env_file, image, pull=pull, build=build, demo=demo, timeout=timeout)


@kit_task(
    help={
        "volumes": "Also delete the database volume (ALL forum data). Without it, data is kept.",
        "env_file": ENV_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def compose_down(c, volumes=False, env_file=".env", dry_run=False):
    """Stop the Compose stack; the database volume is kept unless --volumes."""
    from atbb_kit.ops import deployment as ops

    flags.path("env-file", env_file)
    ops.compose_down(kit(c, dry_run=dry_run), env_file, volumes)


# `--service`/`-s` is a flag, not a positional argument: Invoke has no optional positionals
# (pyinvoke/invoke#159), and a required one would make plain `inv logs` an error.
@kit_task(
    help={
        "service": "Only this service of the Compose file: atbb, edge or postgres (default: all).",
        "follow": "Keep printing new lines (Ctrl-C stops).",
        "tail": "Only the last N lines of each service (default 200; 0: all).",
        "env_file": ENV_HELP,
    },
)
def logs(c, service=None, follow=False, tail=None, env_file=".env"):
    """Show the Compose stack's logs (atbb logs are JSON lines): inv logs [-s SERVICE] [-f]."""
    from atbb_kit.ops import deployment as ops

    tail = flags.whole_number("tail", tail, 200, 0, 1_000_000)
    flags.path("env-file", env_file)
    ops.logs(kit(c), env_file, service, follow, tail or None)


@kit_task(help={"env_file": ENV_HELP})
def status(c, env_file=".env"):
    """Show the Compose stack's containers, their health and the URL."""
    from atbb_kit.ops import deployment as ops

    flags.path("env-file", env_file)
    ops.status(kit(c))


# --- doctor -------------------------------------------------------------------------------------------


@kit_task(help={"env_file": ENV_HELP, "image": IMAGE_HELP, "network": NETWORK_HELP})
def doctor(c, env_file=".env", image=None, network=None):
    """Check the engine, Compose, disk, env file, database, port and images: ok / warn / fail with fixes."""
    from atbb_kit.ops import deployment as ops

    flags.network("network", network)
    flags.path("env-file", env_file)
    flags.image_ref("image", image)
    code = ops.doctor_checks(kit(c), env_file, image, network)
    if code:
        raise Exit(code=code)


# --- backup / restore ---------------------------------------------------------------------------------


@kit_task(
    help={
        "env_file": ENV_HELP,
        "output": "Folder for the dump (default backups/; created private, mode 700).",
        "network": NETWORK_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def backup(c, env_file=".env", output="backups", network=None, dry_run=False):
    """Dump the forum database (pg_dump -Fc) to OUTPUT/atbb-YYYYmmdd-HHMMSS.dump (UTC, mode 600)."""
    from atbb_kit.ops import backup as db
    from atbb_kit.ops import deployment as ops

    flags.network("network", network)
    flags.path("env-file", env_file)
    out_dir = Path(flags.path("output", output))
    db.check_output_dir(out_dir)
    ops.backup(kit(c, dry_run=dry_run), env_file, out_dir, network)


@kit_task(
    positional=["file"],
    help={
        "file": "A dump written by `inv backup` (pg_dump custom format).",
        "env_file": ENV_HELP,
        "force": "Replace the content of a database that already holds tables.",
        "network": NETWORK_HELP,
        "dry_run": DRY_RUN_HELP,
    },
)
def restore(c, file, env_file=".env", force=False, network=None, dry_run=False):
    """Restore a dump from `inv backup` into the forum database (all or nothing; --force to replace data)."""
    from atbb_kit.infra.console import console
    from atbb_kit.ops import backup as db
    from atbb_kit.ops import deployment as ops

    k = kit(c, dry_run=dry_run)
    if file in ("-h", "--help"):
        # Invoke hands a required positional anything that is not one of the task's flags, --help too.
        console.result(
            "usage: inv restore FILE [--force] [--env-file F] [--network N] [--dry-run]   "
            "(inv --help restore: every option)"
        )
        return
    dump = Path(file)
    db.check_dump_file(dump)
    flags.network("network", network)
    flags.path("env-file", env_file)
    ops.restore(k, dump, env_file, force, network)
