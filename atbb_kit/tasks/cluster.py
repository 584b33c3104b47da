"""Beyond one host: Docker Swarm (swarm-deploy, swarm-migrate) and the Helm chart (helm).

The decisions behind them are documented in atbb_kit/ops/swarm.py and atbb_kit/ops/helm.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from atbb_kit.core import flags
from atbb_kit.core.errors import ConfigError
from atbb_kit.tasks._base import DRY_RUN_HELP, kit, kit_task

STACK_HELP = "The stack file (default docker-stack.example.yml next to atbb.yaml)."
STACK_NAME_HELP = "Swarm stack name: services are <stack>_atbb, <stack>_migrate, ... (default compose.project)."
IMAGE_HELP = "Image reference to deploy (default: the image `inv image` builds for this checkout)."
TIMEOUT_HELP = "Seconds to wait for the migration and for the rolling update each (default 600)."


def _common(k, stack_file, stack, image, timeout):
    from atbb_kit.infra import engine
    from atbb_kit.ops import deployment
    from atbb_kit.ops import swarm as ops

    path = Path(stack_file) if stack_file else k.cfg.root() / ops.STACK_FILE
    flags.path("file", str(path))
    flags.image_ref("image", image)
    name = stack or k.cfg.compose.project
    _check_stack_name(name)
    wait = flags.whole_number("timeout", timeout, 600, 10, 86400)
    ref = image or deployment.default_image(k.cfg)
    docker = "docker" if k.run.dry_run else engine.cli_path()
    return ops, path, name, ref, wait, docker


def _check_stack_name(name: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", name):
        raise ConfigError(f"--stack {name!r}: expected lower-case letters, digits, _ and -", "pick a plain name")


@kit_task(
    help={
        "file": STACK_HELP,
        "stack": STACK_NAME_HELP,
        "image": IMAGE_HELP,
        "env_file": "The app's non-secret variables (default atbb.env); DATABASE_URL and SESSION_SECRET are "
        "Swarm secrets.",
        "replicas": "App tasks (default 1; more need sticky sessions and a single indexer, not set up here).",
        "timeout": TIMEOUT_HELP,
        "dry_run": DRY_RUN_HELP,
    }
)
def swarm_deploy(c, file=None, stack=None, image=None, env_file="atbb.env", replicas=1, timeout=None, dry_run=False):
    """Deploy or update the Swarm stack: migrate with the new image, then a health-gated rolling update."""
    from atbb_kit.infra.console import console

    k = kit(c, dry_run=dry_run)
    ops, path, name, ref, wait, docker = _common(k, file, stack, image, timeout)
    count = flags.whole_number("replicas", replicas, 1, 0, 100)
    ops.check_replicas(count)
    flags.path("env-file", env_file)
    stack_file = ops.read_stack(path)
    env_path = Path(env_file)
    ops.check_env_file(env_path, k.cfg.env.required)
    env = ops.stack_env(k.cfg, image=ref, replicas=count, env_file=env_path, edge_conf=path.parent / ops.EDGE_CONF)
    if not k.run.dry_run:
        ops.require_manager(k, docker)
        ops.require_secrets(k, docker, stack_file.secrets)
    console.result(ops.deploy(k, docker, name, stack_file, env, replicas=count, timeout=wait))


@kit_task(
    help={
        "stack": STACK_NAME_HELP,
        "image": IMAGE_HELP,
        "timeout": "Seconds the migration may take (default 600).",
        "dry_run": DRY_RUN_HELP,
    }
)
def swarm_migrate(c, stack=None, image=None, timeout=None, dry_run=False):
    """Run the migrations once on the Swarm stack (its migrate service), with IMAGE, and show their output."""
    k = kit(c, dry_run=dry_run)
    ops, _path, name, ref, wait, docker = _common(k, None, stack, image, timeout)
    if not k.run.dry_run:
        ops.require_manager(k, docker)
    ops.migrate(k, docker, name, ref, wait)


@kit_task(
    help={
        "check": "Write nothing: fail when values.yaml or values.schema.json differ from atbb.yaml, then render "
        "the chart and validate it (what `inv lint` runs).",
        "values": "An operator's values file to check, render and validate (repeatable, later files win).",
        "output": "Write the rendered manifests to this file.",
    },
    iterable=["values"],
)
def helm(c, check=False, values=None, output=None):
    """Generate the Helm chart's values from atbb.yaml; check, render and schema-validate the chart offline."""
    from atbb_kit.infra.console import console
    from atbb_kit.ops import helm as ops

    k = kit(c)
    cfg = k.cfg
    files = [Path(v) for v in values or []]
    for f in files:
        flags.path("values", str(f))
    if check:
        ops.check_drift(cfg)
    else:
        for path, text in ops.generated_files(cfg).items():
            path.write_text(text, encoding="utf-8")
            console.say(f"==> wrote {path.relative_to(cfg.root())}")
    merged = ops.effective_values(cfg, [ops.load_values(f) for f in files])
    ops.check_values(cfg, merged)
    renderer = ops.find_renderer(k.run, cfg.root(), cfg.root() / "build")
    text = ops.render(k.run, renderer, cfg.root() / ops.CHART, files)
    docs = ops.manifests(text)
    problems = ops.validate_manifests(docs)
    if problems:
        raise ConfigError(
            f"the rendered chart fails the Kubernetes {ops.KUBERNETES_VERSION} schemas: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            "fix the template or the value named",
        )
    if output:
        Path(output).write_text(text, encoding="utf-8")
        console.say(f"==> wrote {output}")
    kinds = ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    console.result(
        f"chart OK: rendered by {renderer.what}; {len(docs)} manifests valid against the Kubernetes "
        f"{ops.KUBERNETES_VERSION} schemas (kubernetes-validate): {kinds}"
    )
