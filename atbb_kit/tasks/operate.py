"""The operator's tasks: migrate, compose-up/down, logs, status, secret."""

from __future__ import annotations

import sys
from pathlib import Path

from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task

ENV_HELP = "The env file with the app's variables (default .env; see .env.production.example)."
IMAGE_HELP = "Image reference to run (default: the image `inv image` builds for this checkout)."


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _default_image(cfg) -> str:
    from atbb_kit.release import plan_for

    return plan_for(cfg).refs[0]


def _stack(k, env_file: Path, image: str):
    from atbb_kit import compose

    file = k.cfg.root() / k.cfg.compose.file
    env = compose.compose_env(image, k.cfg.compose.host_port, env_file, k.cfg.compose.postgres_image)
    base = compose.detect(k.run) if not k.run.dry_run else ("docker", "compose")
    return compose.Compose(base, file, k.cfg.compose.project, env)


def _checked_env(k, env_file: str):
    from atbb_kit.envfile import load_env_file

    path = Path(env_file)
    report = load_env_file(path, k.cfg.env.required)
    for warning in report.warnings:
        _say(f"warning: {warning}")
    return path


@kit_task
def secret(c):
    """Print a fresh 64-hex-character SESSION_SECRET."""
    import secrets as _secrets

    print(_secrets.token_hex(32))


@kit_task(help={"env_file": ENV_HELP, "image": IMAGE_HELP, "dry_run": DRY_RUN_HELP})
def migrate(c, env_file=".env", image=None, dry_run=False):
    """Run database migrations in a one-off container of the image (safe to repeat)."""
    from atbb_kit import engine
    from atbb_kit.runner import Command, argv

    k = kit(c, dry_run=dry_run)
    path = _checked_env(k, env_file)
    ref = image or _default_image(k.cfg)
    network = None if k.run.dry_run else engine.compose_network(k.cfg.compose.project)
    cli = engine.detect_cli(k.run) if not k.run.dry_run else engine.DockerCli("docker", "classic")
    if network:
        _say(f"==> the Compose stack is up: running on its network {network}")
    cmd = Command(
        argv(
            cli.path,
            "run",
            "--rm",
            ("--network", network) if network else None,
            "--env-file",
            str(path),
            # The migrator waits for the database itself, printing one progress line per attempt.
            ("--env", f"DB_WAIT_TIMEOUT={k.cfg.migrate.wait_timeout}"),
            ref,
            list(k.cfg.migrate.command),
        ),
        failure_hint="read the migrator's last line above; the guide's troubleshooting section lists the usual causes",
    )
    k.run.run(cmd)


@kit_task(
    help={
        "env_file": ENV_HELP,
        "image": IMAGE_HELP,
        "pull": "Pull the image from its registry instead of building it when it is missing.",
        "build": "Build the image even when it exists.",
        "demo": "Create the env file with throwaway demo values if it does not exist (local trials only).",
        "timeout": "Seconds to wait for the app to turn healthy.",
        "dry_run": DRY_RUN_HELP,
    }
)
def compose_up(c, env_file=".env", image=None, pull=False, build=False, demo=False, timeout=180, dry_run=False):
    """Start PostgreSQL and atBB with Compose: validate env, build if missing, migrate, wait until healthy."""
    import time

    from atbb_kit import engine
    from atbb_kit.errors import KitError

    k = kit(c, dry_run=dry_run)
    if demo and not Path(env_file).exists():
        _write_demo_env(Path(env_file), k.cfg.compose.host_port)
    path = _checked_env(k, env_file)
    ref = image or _default_image(k.cfg)
    stack = _stack(k, path, ref)
    if not k.run.dry_run:
        present = engine.image_size(ref) is not None
        if pull and not present:
            cli = engine.detect_cli(k.run)
            from atbb_kit.runner import Command

            k.run.run(
                Command((cli.path, "pull", ref), failure_hint="check the image reference and your registry login")
            )
        elif build or not present:
            _say(f"==> {ref} is {'being rebuilt' if present else 'missing'}: building it")
            from atbb_kit.tasks.image import image as build_image

            build_image.body(c, tag=[ref] if image else None)
    _say("==> starting PostgreSQL")
    k.run.run(stack.up("postgres"))
    _say("==> running migrations")
    k.run.run(stack.run_once("migrate"))
    _say("==> starting atBB")
    k.run.run(stack.up("atbb"))
    if k.run.dry_run:
        return
    url = f"http://localhost:{k.cfg.compose.host_port}"
    started = time.monotonic()
    state = ""
    while time.monotonic() - started < timeout:
        state = engine.compose_health(k.cfg.compose.project, "atbb")
        print(
            f"\r    waiting for atbb to turn healthy: {state or 'starting'} ({time.monotonic() - started:.0f}s)",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if state == "healthy":
            break
        if state in ("exited", "dead"):
            break
        time.sleep(1)
    print(file=sys.stderr)
    if state != "healthy":
        raise KitError(
            f"atbb did not turn healthy within {timeout}s (last state: {state or 'unknown'})",
            "run `inv logs atbb` to see why",
        )
    print(f"atBB is up: {url}")


@kit_task(
    help={
        "volumes": "Also delete the database volume (ALL forum data). Without it, data is kept.",
        "env_file": ENV_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def compose_down(c, volumes=False, env_file=".env", dry_run=False):
    """Stop the Compose stack; the database volume is kept unless --volumes."""
    k = kit(c, dry_run=dry_run)
    stack = _stack(k, Path(env_file), _default_image(k.cfg))
    k.run.run(stack.down(volumes))
    _say("stopped; data removed" if volumes else "stopped; the database volume is kept (--volumes deletes it)")


@kit_task(
    help={
        "service": "atbb or postgres (default: both).",
        "follow": "Keep printing new lines.",
        "tail": "Only the last N lines of each service.",
        "env_file": ENV_HELP,
    }
)
def logs(c, service=None, follow=False, tail=200, env_file=".env"):
    """Show the Compose stack's logs (atbb logs are JSON lines)."""
    k = kit(c)
    stack = _stack(k, Path(env_file), _default_image(k.cfg))
    k.run.run(stack.logs(service, follow, tail), check=False)


@kit_task(help={"env_file": ENV_HELP})
def status(c, env_file=".env"):
    """Show the Compose stack's containers and their health."""
    k = kit(c)
    stack = _stack(k, Path(env_file), _default_image(k.cfg))
    k.run.run(stack.ps())


def _write_demo_env(path: Path, host_port: int) -> None:
    import secrets as _secrets

    password = _secrets.token_hex(16)
    path.write_text(
        "\n".join(
            [
                "# Demo values written by `inv compose-up --demo`: for trying atBB locally, not for production.",
                f"DATABASE_URL=postgres://atbb:{password}@postgres:5432/atbb",
                "FORUM_DID=did:plc:demodemodemodemodemodemo",
                "PDS_URL=https://pds.example.com",
                f"OAUTH_PUBLIC_URL=http://localhost:{host_port}",
                f"SESSION_SECRET={_secrets.token_hex(32)}",
                "POSTGRES_USER=atbb",
                f"POSTGRES_PASSWORD={password}",
                "POSTGRES_DB=atbb",
                "",
            ]
        )
    )
    path.chmod(0o600)
    _say(f"==> wrote demo settings to {path} (mode 600)")
