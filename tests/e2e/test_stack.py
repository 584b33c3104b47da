"""The throwaway stack (atbb_kit/ops/stack.py) on a real engine: two app containers on one database, and
cleanup that leaves nothing with the run's label — after a normal exit and after SIGTERM mid-start.

Other people use the same engine, so leftovers are judged only by this run's own label.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from atbb_kit.core.config import load_config
from atbb_kit.infra import http
from atbb_kit.ops.stack import Stack
from tests.conftest import ROOT

LABEL = "atbb.stack-e2e"
PREFIX = "atbb-stack-e2e"


def labelled(client, run_id: str) -> list[str]:
    sel = {"label": f"{LABEL}={run_id}"}
    return (
        [f"container {c.name}" for c in client.containers.list(all=True, filters=sel, ignore_removed=True)]
        + [f"network {n.name}" for n in client.networks.list(filters=sel)]
        + [f"volume {v.name}" for v in client.volumes.list(filters=sel)]
    )


def test_two_apps_share_one_database_and_nothing_is_left(docker_client, built_image, test_images):
    cfg = load_config(ROOT / "atbb.yaml", environ=test_images)
    said: list[str] = []
    stack = Stack(
        docker_client,
        LABEL,
        PREFIX,
        test_images["ATBB_COMPOSE_POSTGRES_IMAGE"],
        tuple(cfg.env.required),
        say=said.append,
    )
    with stack:
        db = stack.start_postgres()
        stack.migrate(built_image)
        first = stack.start_app(built_image, "app-1", stack.app_env("stack"))
        second = stack.start_app(built_image, "app-2", stack.app_env("stack"))
        answers = {}
        for app in (first, second):
            stack.wait_answering(app, cfg.health.path, accept=lambda resp: resp.status == cfg.health.status)
            answers[app.name] = http.get(app.url + cfg.health.path)
        # Two containers, two host ports, one network, one database.
        assert first.host_port and second.host_port and first.host_port != second.host_port
        assert first.ip != second.ip
        for app in (first, second):
            resp = answers[app.name]
            assert resp.status == cfg.health.status, resp.describe()
            assert cfg.health.body is None or cfg.health.body in resp.body.decode(), resp.describe()
            app.container.reload()
            assert set(app.container.attrs["NetworkSettings"]["Networks"]) == {stack.network.name}
            env = dict(item.split("=", 1) for item in app.container.attrs["Config"]["Env"])
            assert env["DATABASE_URL"].endswith(f"@{db.host}:5432/atbb")
        assert sorted(stack.apps) == ["app-1", "app-2"]
        assert len(labelled(docker_client, stack.run_id)) >= 4  # postgres, two apps, the network
    assert stack.interrupted is None and stack.problems == []
    assert labelled(docker_client, stack.run_id) == []
    assert f"==> removed everything run {stack.run_id} started" in said


# Run in a child process, so a real SIGTERM reaches a real main thread with the stack's guard installed.
CHILD = textwrap.dedent(
    """
    import sys
    import time

    from atbb_kit.core.config import load_config
    from atbb_kit.infra.engine import client
    from atbb_kit.ops.stack import Stack

    image, postgres, label, prefix = sys.argv[1:5]
    cfg = load_config()
    stack = Stack(client(), label, prefix, postgres, tuple(cfg.env.required), say=lambda line: print(line, flush=True))
    print(f"run {stack.run_id}", flush=True)
    with stack:
        stack.start_postgres()
        print("postgres ready", flush=True)
        stack.migrate(image)
        app = stack.start_app(image, "app", stack.app_env("stack"))
        print("app created", flush=True)
        stack.wait_answering(app, cfg.health.path)
        print("app answering", flush=True)
        time.sleep(600)
    error = stack.interruption("stack test")
    if error is not None:
        print(f"error: {error}", flush=True)
        sys.exit(error.exit_code)
    """
)


def _lines(proc: subprocess.Popen, out: queue.Queue) -> None:
    for line in proc.stdout:
        out.put(line.rstrip("\n"))
    out.put(None)


@pytest.mark.parametrize(
    "after", ["run", "postgres ready", "app created"], ids=["network-and-postgres", "migrating", "app-starting"]
)
def test_sigterm_mid_start_leaves_nothing(docker_client, built_image, test_images, after):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATBB_", "GITHUB_"))}
    env.update(test_images)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, built_image, test_images["ATBB_COMPOSE_POSTGRES_IMAGE"], LABEL, PREFIX],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc, out), daemon=True).start()
    seen: list[str] = []
    run_id = None
    try:
        while True:
            line = out.get(timeout=300)
            assert line is not None, "the child ended before the signal:\n" + "\n".join(seen)
            seen.append(line)
            if line.startswith("run "):
                run_id = line.split()[1]
            if line.startswith(after):
                break
        if after == "run":
            # Mid-creation: wait until the engine holds something of the run, then signal.
            deadline = time.monotonic() + 60
            while not labelled(docker_client, run_id) and time.monotonic() < deadline:
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while (line := out.get(timeout=10)) is not None:
        seen.append(line)
    output = "\n".join(seen)
    try:
        assert code == 128 + signal.SIGTERM, output
        assert "error: stack test: interrupted by SIGTERM — nothing was left behind" in output
        assert f"==> removed everything run {run_id} started" in output
        assert labelled(docker_client, run_id) == []
    finally:
        if run_id:  # never leave a failed test's objects behind
            Stack(docker_client, LABEL, PREFIX, "", run_id=run_id, say=lambda _: None).close()
