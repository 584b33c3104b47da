"""docker-stack.example.yml on a real single-node Swarm, driven by `inv swarm-deploy` as an operator would.

The module puts the engine in a swarm when it is not in one (`docker swarm init`) and leaves it afterwards,
so the engine ends as it was found. It deploys the e2e image with PostgreSQL, checks that the migrations ran
once and that the forum answers through the published port, then rolls to a second build under a bounded
loopback load, counting every failed request, and tries an image that never turns healthy, which Swarm
must roll back by itself, again under load.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import run_inv
from tests.e2e.conftest import _CHECKOUT
from tests.e2e.registry import free_port
from tests.e2e.stack import wait_for

DOCKER = "docker"
STACK = f"atbbe2e{_CHECKOUT[:6]}"
SECRETS = ("atbb_postgres_password", "atbb_database_url", "atbb_session_secret")
V2 = f"atbb-swarm-e2e:v2-{_CHECKOUT}"
BAD = f"atbb-swarm-e2e:never-healthy-{_CHECKOUT}"
PG = f"atbb-swarm-e2e-pg:{_CHECKOUT}"
DEPLOY_TIMEOUT = 600


def docker(*args: str, check: bool = True, stdin: str | None = None) -> str:
    proc = subprocess.run([DOCKER, *args], input=stdin, capture_output=True, text=True, timeout=300, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def build(tag: str, dockerfile: str, context: Path, files: dict[str, str] | None = None) -> str:
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (context / name).write_text(text)
        (context / name).chmod(0o755)
    docker("build", "-q", "-t", tag, str(context))
    return tag


@pytest.fixture(scope="module")
def swarm_node(docker_client):
    """A swarm manager for this module; a node that was not in a swarm leaves it again afterwards."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
    networks_before = set(docker("network", "ls", "--format", "{{.Name}}").split())
    joined = False
    if state.startswith("inactive"):
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        joined = True
    elif state != "active true":
        pytest.fail(f"the engine is in a swarm but not as a manager ({state}); run on a manager or leave it")
    try:
        yield
    finally:
        if joined:
            docker("swarm", "leave", "--force", check=False)
            # `swarm init` also made the bridge that connects swarm containers to the host; leaving keeps it.
            if "docker_gwbridge" not in networks_before:
                docker("network", "rm", "docker_gwbridge", check=False)


@pytest.fixture(scope="module")
def images(built_image, test_images, tmp_path_factory):
    """The e2e image, a second build of it (another label), one whose health probe never passes, and the
    PostgreSQL image with POSTGRES_PASSWORD_FILE (the official image reads it; the stand-in does not, so it
    is wrapped here)."""
    base = tmp_path_factory.mktemp("swarm-images")
    v2 = build(V2, f"FROM {built_image}\nLABEL atbb.test=1 atbb.swarm-build=2\n", base / "v2")
    # The app runs and answers, but the health spec expects 299: the HEALTHCHECK never passes.
    bad = build(
        BAD,
        f"FROM {built_image}\nUSER root\n"
        'RUN sed -i "s/health_status=200/health_status=299/" /etc/atbb/services.sh '
        "&& grep -q health_status=299 /etc/atbb/services.sh\n"
        "USER 10001:10001\nLABEL atbb.test=1 atbb.swarm-build=never-healthy\n",
        base / "bad",
    )
    shim = (
        "#!/bin/sh\n"
        'if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then\n'
        '    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE") || exit 1\n'
        "    export POSTGRES_PASSWORD\n"
        "    unset POSTGRES_PASSWORD_FILE\n"
        "fi\n"
        'exec docker-entrypoint.sh "$@"\n'
    )
    pg = build(
        PG,
        f"FROM {test_images['ATBB_COMPOSE_POSTGRES_IMAGE']}\nCOPY file-env.sh /usr/local/bin/file-env.sh\n"
        'ENTRYPOINT ["/usr/local/bin/file-env.sh"]\nCMD ["postgres"]\nLABEL atbb.test=1\n',
        base / "pg",
        {"file-env.sh": shim},
    )
    yield {"v1": built_image, "v2": v2, "bad": bad, "pg": pg}
    docker("rmi", v2, bad, pg, check=False)


@dataclass
class Deployment:
    port: int
    env: dict[str, str]
    env_file: Path
    first: subprocess.CompletedProcess = field(repr=False)

    def deploy(self, image: str) -> subprocess.CompletedProcess:
        return run_inv(
            "swarm-deploy", "--image", image, "--stack", STACK, "--env-file", str(self.env_file),
            env=self.env, timeout=DEPLOY_TIMEOUT + 120,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _remove_stack() -> None:
    docker("stack", "rm", STACK, check=False)
    wait_for(lambda: not docker("service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}"),
             60, what="the stack's services to go")  # fmt: skip
    # Networks and containers go a little after the services.
    wait_for(
        lambda: not docker("network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}"),
        60,
        what="the stack's network to go",
    )
    for _ in range(30):
        if docker("volume", "rm", f"{STACK}_pgdata", check=False) or not docker(
            "volume", "ls", "-q", "--filter", f"name={STACK}_pgdata"
        ):
            break
        time.sleep(1)


@pytest.fixture(scope="module")
def deployment(swarm_node, images, tmp_path_factory):
    work = tmp_path_factory.mktemp("swarm")
    password = secrets.token_hex(12)
    values = {
        "atbb_postgres_password": password,
        "atbb_database_url": f"postgres://atbb:{password}@postgres:5432/atbb",
        "atbb_session_secret": secrets.token_hex(32),
    }
    existing = set(docker("secret", "ls", "--format", "{{.Name}}").split())
    clash = existing & set(SECRETS)
    if clash:
        pytest.fail(f"this swarm already has the secrets {sorted(clash)}; run the test on a swarm without atBB")
    for name in SECRETS:
        docker("secret", "create", "--label", "atbb.test=1", name, "-", stdin=values[name])
    env_file = work / "atbb.env"
    env_file.write_text(
        "FORUM_DID=did:plc:e2etestforumaaaaaaaaaaaa\nPDS_URL=https://pds.example.test\n"
        "OAUTH_PUBLIC_URL=http://localhost:8080\n"
    )
    port = free_port()
    env = {
        "ATBB_COMPOSE_POSTGRES_IMAGE": images["pg"],
        "ATBB_COMPOSE_HOST_PORT": str(port),
        # The edge proxy: the official nginx image in production; the e2e image's own nginx here.
        "EDGE_IMAGE": images["v1"],
    }
    dep = Deployment(port, env, env_file, first=None)  # type: ignore[arg-type]
    try:
        dep.first = dep.deploy(images["v1"])
        yield dep
    finally:
        _remove_stack()
        for name in SECRETS:
            docker("secret", "rm", name, check=False)
        for config in docker("config", "ls", "--format", "{{.Name}}").split():
            if config.startswith("atbb_edge_nginx_"):
                docker("config", "rm", config, check=False)


def health(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/health", timeout=5) as resp:  # noqa: S310 (loopback)
        assert resp.status == 200
        return json.loads(resp.read())


class Load:
    """A bounded loopback load: THREADS clients, each one request then a 20 ms pause (about 150 req/s in
    all), a new connection per request. Every failure is counted with its reason."""

    THREADS = 4

    def __init__(self, url: str) -> None:
        self.url = f"{url}/api/health"
        self.total = 0
        self.failures: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.THREADS)]

    def _run(self) -> None:
        while not self._stop.is_set():
            reason = None
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:  # noqa: S310 (loopback)
                    body = resp.read()
                    if resp.status != 200 or b'"status":"ok"' not in body:
                        reason = f"status {resp.status}"
            except Exception as exc:  # every kind of failure counts, with its reason
                reason = f"{type(exc).__name__}: {str(exc)[:100]}"
            with self._lock:
                self.total += 1
                if reason:
                    self.failures[reason] += 1
            time.sleep(0.02)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def report(self, what: str) -> str:
        failed = sum(self.failures.values())
        return f"{what}: {failed} failed of {self.total} requests {dict(self.failures)}"


def service_image(name: str) -> str:
    return docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", name)


def test_first_deploy_migrates_once_and_answers_through_the_published_port(deployment):
    first = deployment.first
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"stack {STACK} created" in first.stdout
    # The migration task's output, relayed by the kit: both migrations applied by that one task.
    assert "applied 0001_init.sql" in first.stderr and "(2 applied, 0 already applied)" in first.stderr
    # One migration task ran, once: one summary line, and the service is back to no task.
    assert first.stderr.count("migrate: done") == 1
    assert docker("service", "inspect", "--format", "{{.Spec.Mode.Replicated.Replicas}}", f"{STACK}_migrate") == "0"
    answer = wait_for(lambda: health(deployment.url), 60, what="the forum through the published port")
    assert answer["status"] == "ok" and answer["database"] == "up"
    # The app got its secrets as files and nothing else: its env has no DATABASE_URL value.
    spec = docker("service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}", f"{STACK}_atbb")
    assert "DATABASE_URL_FILE=/run/secrets/atbb_database_url" in spec and "postgres://" not in spec


def test_rolling_update_to_a_second_build_under_load_fails_no_request(deployment, images):
    wait_for(lambda: health(deployment.url), 60, what="the forum before the update")
    with Load(deployment.url) as load:
        time.sleep(2)
        proc = deployment.deploy(images["v2"])
        time.sleep(2)
    print(load.report("rolling update v1 -> v2"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"now runs {images['v2']}" in proc.stdout
    assert service_image(f"{STACK}_atbb").split("@")[0] == images["v2"]
    # The migration ran again (a no-op) before the update, as one more one-off task.
    assert "(0 applied, 2 already applied)" in proc.stderr
    assert load.total > 1000, load.report("too little load to judge")
    assert sum(load.failures.values()) == 0, load.report("rolling update v1 -> v2")


def test_an_image_that_never_turns_healthy_is_rolled_back_by_swarm(deployment, images):
    wait_for(lambda: health(deployment.url), 60, what="the forum before the bad update")
    with Load(deployment.url) as load:
        proc = deployment.deploy(images["bad"])
        time.sleep(2)
    print(load.report("update to a never-healthy image, rolled back"))
    assert proc.returncode != 0
    assert "error: Swarm rolled the update back" in proc.stderr, proc.stderr[-3000:]
    assert service_image(f"{STACK}_atbb").split("@")[0] == images["v2"]
    state = docker("service", "inspect", "--format", "{{.UpdateStatus.State}}", f"{STACK}_atbb")
    assert state == "rollback_completed"
    assert health(deployment.url)["status"] == "ok"
    assert sum(load.failures.values()) == 0, load.report("update to a never-healthy image")
