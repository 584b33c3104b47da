"""docker-stack.example.yml's promises, the Swarm argv builders and the checks before a deploy (no engine)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from atbb_kit.commands import swarm as cmds
from atbb_kit.core.config import load_config
from atbb_kit.core.errors import ConfigError, KitError
from atbb_kit.ops import helm, swarm
from tests.clock import on_fake_clock
from tests.conftest import ROOT

STACK = yaml.safe_load((ROOT / "docker-stack.example.yml").read_text())
CFG = load_config(ROOT / "atbb.yaml", environ={})


def seconds(text: str) -> float:
    m = re.fullmatch(r"([0-9]+)(ms|s|m)", text)
    assert m, text
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def test_app_updates_start_first_and_roll_back_by_themselves():
    deploy = STACK["services"]["atbb"]["deploy"]
    update, rollback = deploy["update_config"], deploy["rollback_config"]
    assert (update["order"], update["failure_action"], update["parallelism"]) == ("start-first", "rollback", 1)
    # The monitor window must outlast the time a never-healthy task needs to be declared unhealthy.
    health = STACK["services"]["atbb"]["healthcheck"]
    unhealthy_after = seconds(health["start_period"]) + seconds(health["interval"]) * health["retries"]
    assert seconds(update["monitor"]) >= unhealthy_after
    assert rollback["order"] == "start-first"
    assert "test" not in health, "the image's own probe is inherited; only its timing is set here"


def test_stop_grace_covers_the_supervisors_worst_case():
    grace = seconds(STACK["services"]["atbb"]["stop_grace_period"])
    assert grace >= helm.stop_grace_seconds(CFG)


def test_migrations_are_a_one_off_service_never_restarted():
    migrate = STACK["services"]["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["deploy"]["replicas"] == 0
    assert migrate["deploy"]["restart_policy"]["condition"] == "none"
    assert migrate["healthcheck"] == {"disable": True}


def test_secrets_are_external_swarm_secrets_handed_over_as_files():
    app = STACK["services"]["atbb"]
    assert all(spec == {"external": True} for spec in STACK["secrets"].values())
    for var in swarm.FILE_VARIABLES:
        secret = app["environment"][f"{var}_FILE"].removeprefix("/run/secrets/")
        assert secret in app["secrets"]
        assert var not in app["environment"]
    assert "POSTGRES_PASSWORD" not in STACK["services"]["postgres"]["environment"]


def test_the_app_is_locked_down_and_reached_only_through_the_edge():
    app = STACK["services"]["atbb"]
    assert app["read_only"] is True and app["cap_drop"] == ["ALL"]
    assert {"type": "tmpfs", "target": "/tmp"} in app["volumes"]
    assert "ports" not in app
    assert app["deploy"]["endpoint_mode"] == "dnsrr"
    (port,) = STACK["services"]["edge"]["ports"]
    assert (port["target"], port["mode"]) == (8080, "host")
    conf = (ROOT / swarm.EDGE_CONF).read_text()
    assert "resolver 127.0.0.11" in conf and "tasks.atbb" in conf and "proxy_next_upstream error" in conf


def test_read_stack_lists_external_secrets_and_services():
    stack = swarm.read_stack(ROOT / "docker-stack.example.yml")
    assert stack.secrets == ("atbb_postgres_password", "atbb_database_url", "atbb_session_secret")
    assert {"atbb", "migrate", "postgres", "edge"} <= set(stack.services)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services: []\n", "no services: mapping"),
        ("services:\n  atbb: {image: x}\n", "no `migrate` service"),
        ("services: [\n", "not valid YAML"),
    ],
)
def test_read_stack_rejects_files_the_kit_cannot_drive(tmp_path, text, message):
    path = tmp_path / "stack.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        swarm.read_stack(path)


def test_stack_env_comes_from_atbb_yaml_and_the_flags(tmp_path):
    conf = tmp_path / "edge.conf"
    conf.write_text("a")
    env = swarm.stack_env(CFG, image="r.example/atbb:2", replicas=1, env_file=tmp_path / "x.env", edge_conf=conf)
    assert env["ATBB_IMAGE"] == "r.example/atbb:2"
    assert env["ATBB_HOST_PORT"] == str(CFG.compose.host_port)
    assert env["POSTGRES_IMAGE"] == CFG.compose.postgres_image
    assert env["ATBB_ENV_FILE"] == str((tmp_path / "x.env").resolve())
    before = env["ATBB_EDGE_CONF_HASH"]
    conf.write_text("b")
    assert swarm.conf_hash(conf) != before, "a changed edge config needs a new Swarm config name"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "no env file"),
        ("FORUM_DID=did:plc:x\nDATABASE_URL=postgres://a\n", "sets DATABASE_URL"),
        ("FORUM_DID=did:plc:x\nPDS_URL=https://p\nOAUTH_PUBLIC_URL=https://f\nSESSION_SECRET=s\n", "sets SESSION"),
        ("FORUM_DID=did:plc:x\n", "lacks PDS_URL, OAUTH_PUBLIC_URL"),
        ("FORUM_DID=did:plc:x\nPDS_URL=https://p\nOAUTH_PUBLIC_URL=https://f\n", None),
    ],
)
def test_env_file_checks(tmp_path: Path, content, error):
    path = tmp_path / "atbb.env"
    if content is not None:
        path.write_text(content)
    if error is None:
        swarm.check_env_file(path, CFG.env.required)
    else:
        with pytest.raises(KitError, match=re.escape(error)):
            swarm.check_env_file(path, CFG.env.required)


@pytest.mark.parametrize(("replicas", "ok"), [(0, True), (1, True), (2, False)])
def test_more_than_one_replica_needs_the_sticky_session_setup(replicas, ok):
    if ok:
        swarm.check_replicas(replicas)
    else:
        with pytest.raises(ConfigError, match="sticky sessions"):
            swarm.check_replicas(replicas)


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (cmds.swarm_state("docker"), ("docker", "info", "--format")),
        (cmds.secret_exists("docker", "s"), ("docker", "secret", "inspect", "--format", "{{.Spec.Name}}", "s")),
        (
            cmds.run_once("docker", "atbb_migrate", "img:2", {"DB_WAIT_TIMEOUT": "60"}),
            (
                *("docker", "service", "update", "--detach", "--force", "--replicas", "1", "--image", "img:2"),
                *("--env-add", "DB_WAIT_TIMEOUT=60", "atbb_migrate"),
            ),
        ),
        (cmds.scale_to_zero("docker", "m"), ("docker", "service", "update", "--detach", "--replicas", "0", "m")),
        (
            cmds.task_logs("docker", "t1", 5),
            ("docker", "service", "logs", "--raw", "--no-task-ids", "--tail", "5", "t1"),
        ),
    ],
)
def test_argv_builders(cmd, expected):
    assert cmd.argv[: len(expected)] == expected


def test_stack_deploy_passes_the_variables_and_runs_next_to_the_file(tmp_path):
    file = tmp_path / "stack.yml"
    cmd = cmds.stack_deploy("docker", file, "atbb", {"ATBB_IMAGE": "x"})
    assert cmd.argv == ("docker", "stack", "deploy", "--with-registry-auth", "-c", str(file), "atbb")
    assert cmd.env == {"ATBB_IMAGE": "x"}
    assert cmd.cwd == tmp_path  # the edge config's `file:` is relative to the stack file
    assert cmds.service_name("atbb", "migrate") == "atbb_migrate"


# --- the waits, on a fake clock (polling.until with a clock and a sleep of the test's) ----------------------


@pytest.fixture
def clock(monkeypatch):
    fake = on_fake_clock(monkeypatch, swarm)
    monkeypatch.setattr(swarm, "time", SimpleNamespace(monotonic=fake))  # wait_update's 10 quiet seconds
    return fake


def scripted(monkeypatch, name: str, answers: list):
    """swarm.<name> answers `answers` in turn (the last one again once they run out)."""
    asked = []

    def answer(*_args):
        asked.append(1)
        return answers[min(len(asked), len(answers)) - 1]

    monkeypatch.setattr(swarm, name, answer)
    return asked


U = swarm.UpdateOutcome
OLD = U("completed", "update completed", "img:1")


@pytest.mark.parametrize(
    ("before", "image", "states", "expected", "polls"),
    [
        # The earlier update's "completed" is not this one's end: it must start first.
        (OLD, "img:2", ["completed", "updating", "updating", "completed"], "completed", 4),
        (OLD, "img:2", ["completed", "updating", "rollback_started", "rollback_completed"], "rollback_completed", 4),
        (OLD, "img:2", ["updating", "paused"], "paused", 2),
        # The same image again starts no update: after 10 quiet seconds it is "unchanged".
        (OLD, "img:1", ["completed"], "unchanged", 12),
        # A service never updated before says nothing, then its first update's end.
        (U("", "", ""), "img:2", ["", "", "completed"], "completed", 3),
        (OLD, "img:2", ["completed", "updating"], "did not finish within 30 s (state updating)", 32),
    ],
)
def test_wait_update(monkeypatch, clock, capsys, before, image, states, expected, polls):
    asked = scripted(monkeypatch, "update_status", [U(s, f"msg {s}", "img:x") for s in states])
    if expected.startswith("did not"):
        with pytest.raises(KitError, match=re.escape(expected)):
            swarm.wait_update(None, "docker", "atbb_atbb", 30, before=before, image=image)
    else:
        assert swarm.wait_update(None, "docker", "atbb_atbb", 30, before=before, image=image).state == expected
    assert len(asked) == polls
    # One progress line per change of state, none for the state it started in.
    changes = [s for i, s in enumerate(states[: len(asked)]) if s != ([before.state, *states][i])]
    assert capsys.readouterr().err.count(": update ") == len(changes)


@pytest.mark.parametrize(
    ("running", "expected", "polls"),
    [([0, 0, 1], None, 3), ([2], None, 1), ([0], "PostgreSQL did not have 1 running task(s) within 5 s", 7)],
)
def test_wait_running(monkeypatch, clock, running, expected, polls):
    asked = scripted(monkeypatch, "running_tasks", running)
    if expected:
        with pytest.raises(KitError, match=re.escape(expected)):
            swarm.wait_running(None, "docker", "atbb_postgres", 1, 5, "PostgreSQL")
    else:
        swarm.wait_running(None, "docker", "atbb_postgres", 1, 5, "PostgreSQL")
    assert len(asked) == polls
