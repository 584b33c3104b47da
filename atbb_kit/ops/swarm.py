"""`inv swarm-deploy` and `inv swarm-migrate`: docker-stack.example.yml on a Docker Swarm.

Decisions (docs/decisions.md, issue 20):
- Swarm's own rolling update is the health-gated switch: `order: start-first` starts the new task, Swarm
  counts it as running only once its HEALTHCHECK passes, then stops the old one; a new task that fails or
  turns unhealthy within `monitor` rolls the service back (`failure_action: rollback`). The kit adds no
  orchestration of its own; it waits on the service's UpdateStatus and reports it.
- Migrations run before the update, as a one-off task of the stack's `migrate` service (replicas 0,
  restart_policy none) with the new image: scaled to 1, waited for, scaled back to 0. A failed migration
  stops the deploy before the app is touched. The first deploy creates the stack with 0 app replicas,
  migrates, then scales up, so the app never starts against an empty database.
- Traffic enters through the stack's `edge` nginx (deploy/swarm/edge-nginx.conf), not Swarm's routing
  mesh: the mesh needs IPVS in the host kernel (absent on our CI machines: a published ingress port
  never answers there) and can drop connections while a task is replaced. The edge re-resolves the
  healthy tasks by DNS every second and retries on the next one; measured: 0 failed requests in a
  rolling update and in a rollback under load (tests/e2e/test_swarm.py).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from atbb_kit.commands import swarm as cmds
from atbb_kit.core import safe_yaml
from atbb_kit.core.errors import CommandFailed, ConfigError, KitError
from atbb_kit.infra import envfile, polling
from atbb_kit.infra.console import console
from atbb_kit.infra.polling import Waiting

STACK_FILE = "docker-stack.example.yml"
EDGE_CONF = "deploy/swarm/edge-nginx.conf"
# Variables the stack hands to the app as files (VAR_FILE): the env file must not set them as well.
FILE_VARIABLES = ("DATABASE_URL", "SESSION_SECRET")
UPDATE_DONE = {"completed"}
UPDATE_ROLLED_BACK = {"rollback_completed"}
UPDATE_STUCK = {"paused", "rollback_paused"}
STICKY_HINT = (
    "atBB keeps sessions and the firehose consumer per process; more than one replica needs sticky sessions "
    "and a single indexer, which this stack does not set up (deploy/helm/atbb/README.md)"
)


@dataclass(frozen=True)
class StackFile:
    path: Path
    secrets: tuple[str, ...]  # external secrets the stack needs, by name
    services: tuple[str, ...]


def read_stack(path: Path) -> StackFile:
    """The parts of the stack file the kit checks before deploying."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the stack file {path}: {exc.strerror}", "pass --file with its path") from None
    try:
        safe_yaml.check(text, path.name)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML ({str(exc).splitlines()[0]})", "fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ConfigError(f"{path.name}: no services: mapping", f"start from the kit's {STACK_FILE}")
    secrets = data.get("secrets") or {}
    external = tuple(
        str(spec.get("name") or name)
        for name, spec in secrets.items()
        if isinstance(spec, dict) and spec.get("external")
    )
    services = tuple(data["services"])
    for needed in ("atbb", "migrate"):
        if needed not in services:
            raise ConfigError(f"{path.name}: no `{needed}` service", f"start from the kit's {STACK_FILE}")
    return StackFile(path, external, services)


def stack_env(cfg, *, image: str, replicas: int, env_file: Path, edge_conf: Path) -> dict[str, str]:
    """The variables docker-stack.example.yml reads, from atbb.yaml and the task's flags."""
    return {
        "ATBB_IMAGE": image,
        "ATBB_REPLICAS": str(replicas),
        "ATBB_HOST_PORT": str(cfg.compose.host_port),
        "ATBB_ENV_FILE": str(env_file.resolve()),
        "POSTGRES_IMAGE": cfg.compose.postgres_image,
        "ATBB_EDGE_CONF_HASH": conf_hash(edge_conf),
    }


def conf_hash(path: Path) -> str:
    """Swarm configs are immutable: the edge config's name carries its content hash, so a changed file is a
    new config instead of an update Swarm refuses."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return "missing"


def check_env_file(path: Path, required: tuple[str, ...]) -> None:
    """The env file the stack hands to the app: present, without the values the stack gives as secrets,
    with every other required variable."""
    if not path.is_file():
        raise KitError(
            f"no env file at {path}",
            "create it with the app's non-secret variables (FORUM_DID, PDS_URL, OAUTH_PUBLIC_URL, ...), or pass "
            "--env-file",
        )
    values = envfile.read(path)
    clash = [name for name in FILE_VARIABLES if values.get(name)]
    if clash:
        raise KitError(
            f"{path.name} sets {', '.join(clash)}, which the stack gives the app as Swarm secrets",
            f"remove {' and '.join(clash)} from {path.name} (they live in `docker secret create` now)",
        )
    missing = [name for name in required if name not in FILE_VARIABLES and not values.get(name)]
    if missing:
        raise KitError(f"{path.name} lacks {', '.join(missing)}", "add them (see .env.production.example)")


def check_replicas(replicas: int) -> None:
    if replicas > 1:
        raise ConfigError(f"--replicas {replicas}: more than one app task", STICKY_HINT)


# ---------------------------------------------------------------------------------------------------------
# Waiting on Swarm: read-only queries run even in a dry run (they change nothing).


def _query(k, cmd) -> tuple[int, str]:
    (result,) = k.run.probe_all([cmd])
    return result.returncode, result.stdout.strip()


def require_manager(k, docker: str) -> None:
    code, out = _query(k, cmds.swarm_state(docker))
    if code != 0:
        raise KitError("the Docker engine did not answer `docker info`", cmds.SWARM_HINT)
    state, _, manager = out.partition(" ")
    if state != "active":
        raise KitError(
            f"this Docker engine is not in a swarm (state {state or 'unknown'})",
            "run `docker swarm init` (one node) or join a swarm as a manager first",
        )
    if manager != "true":
        raise KitError("this node is a swarm worker; stacks are deployed from a manager", "run this on a manager")


def require_secrets(k, docker: str, names: tuple[str, ...]) -> None:
    missing = [name for name in names if _query(k, cmds.secret_exists(docker, name))[0] != 0]
    if missing:
        first = missing[0]
        raise KitError(
            f"Swarm secret(s) missing: {', '.join(missing)}",
            f"create each with e.g. `printf '%s' VALUE | docker secret create {first} -` (see the top of {STACK_FILE})",
        )


def service_exists(k, docker: str, name: str) -> bool:
    return _query(k, cmds.service_inspect(docker, name, "{{.ID}}"))[0] == 0


def task_lines(k, docker: str, name: str) -> list[list[str]]:
    code, out = _query(k, cmds.tasks(docker, name))
    if code != 0:
        return []
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def running_tasks(k, docker: str, name: str) -> int:
    lines = task_lines(k, docker, name)
    return sum(1 for t in lines if len(t) > 2 and t[1] == "Running" and t[2].startswith("Running"))


def wait_running(k, docker: str, name: str, count: int, timeout: float, what: str) -> None:
    """Until `count` tasks of `name` run (Swarm says Running only after a HEALTHCHECK passed)."""

    def probe() -> bool | Waiting:
        running = running_tasks(k, docker, name)
        return True if running >= count else Waiting(f"{running} running")

    try:
        polling.until(probe, seconds=timeout, interval=1)
    except polling.TimedOut:
        raise KitError(
            f"{what} did not have {count} running task(s) within {int(timeout)} s",
            f"see `docker service ps --no-trunc {name}` and `docker service logs {name}`",
        ) from None


@dataclass(frozen=True)
class UpdateOutcome:
    state: str
    message: str
    image: str


def update_status(k, docker: str, name: str) -> UpdateOutcome:
    code, out = _query(k, cmds.update_state(docker, name))
    if code != 0:
        raise KitError(f"service {name} is gone", f"see `docker service ls` and `docker stack ps {name}`")
    state, message, image = ([*out.split("\t"), "", ""])[:3]
    return UpdateOutcome(state, message, image)


def wait_update(k, docker: str, name: str, timeout: float, *, before: UpdateOutcome, image: str) -> UpdateOutcome:
    """Until the rolling update of `name` ends: completed, rolled back, or paused. `before` is what the service
    said before the deploy, so a finished earlier update is not mistaken for this one's end; a deploy that
    changed nothing (the same image again) starts no update and ends after a few seconds."""
    quiet_until = time.monotonic() + 10
    seen = before.state
    started = False
    finished = UPDATE_DONE | UPDATE_ROLLED_BACK | UPDATE_STUCK

    def probe() -> UpdateOutcome | Waiting:
        nonlocal seen, started
        outcome = update_status(k, docker, name)
        if not started and outcome.state == before.state and before.image == image and time.monotonic() > quiet_until:
            return UpdateOutcome("unchanged", "the service already ran this image", image)
        if outcome.state != seen:
            console.say(f"==> {name}: update {outcome.state or 'pending'}")
            seen = outcome.state
        started = started or outcome.state in ("updating", "rollback_started")
        if outcome.state in finished and (started or before.state not in finished):
            return outcome
        return Waiting(outcome.state)

    try:
        return polling.until(probe, seconds=timeout, interval=1)
    except polling.TimedOut as exc:
        raise KitError(
            f"the rolling update of {name} did not finish within {int(timeout)} s (state {exc.reason})",
            f"watch `docker service ps {name}`; it goes on without the kit",
        ) from None


# ---------------------------------------------------------------------------------------------------------
# The two flows.


def migrate(k, docker: str, stack: str, image: str, timeout: float) -> None:
    """One migration task with `image`; its logs are shown; a failure raises before anything else changes."""
    name = cmds.service_name(stack, "migrate")
    if not k.run.dry_run and not service_exists(k, docker, name):
        raise KitError(f"the stack {stack} has no migrate service ({name})", "deploy it first: inv swarm-deploy")
    before = {t[0] for t in task_lines(k, docker, name)}
    env = {"DB_WAIT_TIMEOUT": str(k.cfg.migrate.wait_timeout)}
    k.run.run(cmds.run_once(docker, name, image, env))
    if k.run.dry_run:
        k.run.run(cmds.scale_to_zero(docker, name))
        return

    def probe() -> tuple[str, str, str] | Waiting:
        """(task, state, error) of the migration task once it ended."""
        fresh = [t for t in task_lines(k, docker, name) if t[0] not in before]
        if not fresh:
            return Waiting("no task yet")
        task, _desired, current = fresh[0][:3]
        state = current.split(" ", 1)[0]
        if state not in ("Complete", "Failed", "Rejected", "Orphaned"):
            return Waiting(state)
        return task, state, fresh[0][3] if len(fresh[0]) > 3 else ""

    with console.status(f"migrating with {image}"):
        try:
            task, state, error = polling.until(probe, seconds=timeout, interval=1)
        except polling.TimedOut:
            k.run.run(cmds.scale_to_zero(docker, name), check=False)
            raise KitError(
                f"the migration did not finish within {int(timeout)} s",
                f"see `docker service logs {name}`; the migration task was stopped",
            ) from None
    logs = k.run.run(cmds.task_logs(docker, task), capture=True, check=False, quiet=True)
    for line in ((logs.stdout or "") + (logs.stderr or "")).splitlines():
        console.say(f"    {line}")
    k.run.run(cmds.scale_to_zero(docker, name))
    if state != "Complete":
        raise CommandFailed(
            f"the migration failed ({state}{': ' + error if error else ''})",
            f"fix what its output above says; the app still runs its previous image (`docker service logs {name}`)",
        )
    console.say("==> migrations applied")


def deploy(k, docker: str, stack: str, file: StackFile, env: dict[str, str], *, replicas: int, timeout: float) -> str:
    """Create or update the stack: migrate with the new image first, then let Swarm roll the app over.
    Returns what happened, for the task's last line; raises when Swarm rolled the update back."""
    app = cmds.service_name(stack, "atbb")
    image = env["ATBB_IMAGE"]
    exists = service_exists(k, docker, app)  # a query: a dry run shows the path it would take
    if not exists:
        console.say(f"==> creating the stack {stack} with no app task yet (migrations come first)")
        k.run.run(cmds.stack_deploy(docker, file.path, stack, {**env, "ATBB_REPLICAS": "0"}))
        if "postgres" in file.services and not k.run.dry_run:
            wait_running(k, docker, cmds.service_name(stack, "postgres"), 1, timeout, "PostgreSQL")
    migrate(k, docker, stack, image, timeout)
    before = UpdateOutcome("", "", "") if k.run.dry_run else update_status(k, docker, app)
    k.run.run(cmds.stack_deploy(docker, file.path, stack, env))
    if k.run.dry_run:
        return f"would deploy {image} to the stack {stack}"
    if not exists:
        wait_running(k, docker, app, replicas, timeout, "the app")
        return f"stack {stack} created: {replicas} task(s) of {image}, healthy"
    outcome = wait_update(k, docker, app, timeout, before=before, image=image)
    if outcome.state == "unchanged":
        return f"{app} already runs {image}; nothing to update"
    if outcome.state in UPDATE_ROLLED_BACK:
        raise KitError(
            f"Swarm rolled the update back: the new task did not stay healthy ({outcome.message}); "
            f"{outcome.image} still serves",
            f"see `docker service ps --no-trunc {app}` and the new image's logs; migrations already ran",
        )
    if outcome.state in UPDATE_STUCK:
        raise KitError(
            f"the update of {app} is paused ({outcome.message})",
            f"see `docker service ps --no-trunc {app}`; `docker service rollback {app}` returns to the last spec",
        )
    if outcome.state == "" and running_tasks(k, docker, app) < replicas:
        wait_running(k, docker, app, replicas, timeout, "the app")
    return f"{app} now runs {outcome.image or image}"
