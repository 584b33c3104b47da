"""Docker Swarm argv: `docker stack deploy` of docker-stack.example.yml, and the service queries and updates
`inv swarm-deploy` / `inv swarm-migrate` make. Pure builders returning `Command`s; nothing here runs anything.

Every command works with the Docker 20.10 client (no `docker stack deploy --detach=false`, which came in
26.0): the kit polls the service's UpdateStatus itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from atbb_kit.commands.base import Command, argv

SWARM_HINT = "install Docker 20.10 or later (scripts/ensure-docker.sh on Debian); Swarm is part of the engine"
# One line per task, newest first for each slot: what `inv swarm-migrate` waits on.
TASK_FORMAT = "{{.ID}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}"


def service_name(stack: str, service: str) -> str:
    """docker stack deploy names each service <stack>_<service>."""
    return f"{stack}_{service}"


def _docker(docker: str, *parts, hint: str | None = None, env: Mapping[str, str] | None = None, cwd=None) -> Command:
    return Command(argv(docker, *parts), env=dict(env or {}), cwd=cwd, install_hint=SWARM_HINT, failure_hint=hint)


def swarm_state(docker: str) -> Command:
    """`active true` on a manager node; `inactive false` outside any swarm."""
    return _docker(docker, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")


def secret_exists(docker: str, name: str) -> Command:
    return _docker(docker, "secret", "inspect", "--format", "{{.Spec.Name}}", name)


def stack_deploy(docker: str, file: Path, stack: str, env: Mapping[str, str]) -> Command:
    # --with-registry-auth: the nodes pull a private image with the credentials of this client.
    return _docker(
        docker,
        "stack",
        "deploy",
        "--with-registry-auth",
        "-c",
        str(file),
        stack,
        env=env,
        cwd=file.parent,
        hint="see the message above; `docker stack ps STACK --no-trunc` shows each task's error",
    )


def service_inspect(docker: str, name: str, template: str) -> Command:
    return _docker(docker, "service", "inspect", "--format", template, name)


def update_state(docker: str, name: str) -> Command:
    """The rolling update's state (updating, completed, rollback_started, rollback_completed, paused, ...),
    its message and the image the service now runs."""
    return service_inspect(
        docker,
        name,
        "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}\t{{if .UpdateStatus}}{{.UpdateStatus.Message}}{{end}}"
        "\t{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    )


def tasks(docker: str, name: str) -> Command:
    return _docker(docker, "service", "ps", "--no-trunc", "--format", TASK_FORMAT, name)


def run_once(docker: str, name: str, image: str, env: Mapping[str, str]) -> Command:
    """Start one new task of a `replicas: 0, restart_policy: none` service with `image`: it runs to its end and
    is never restarted. --force makes a new task even when nothing else changed (a second migration)."""
    env_flags = [item for key, value in env.items() for item in ("--env-add", f"{key}={value}")]
    return _docker(
        docker, "service", "update", "--detach", "--force", "--replicas", "1", "--image", image, env_flags, name
    )


def scale_to_zero(docker: str, name: str) -> Command:
    return _docker(docker, "service", "update", "--detach", "--replicas", "0", name)


def task_logs(docker: str, task_id: str, tail: int = 40) -> Command:
    return _docker(docker, "service", "logs", "--raw", "--no-task-ids", "--tail", str(tail), task_id)
