"""`inv smoke` against a real engine: it passes on the example image, names the failing line on images
broken on purpose, and leaves nothing behind — after success, failure, Ctrl-C, SIGTERM — unless --keep.

Other people use the same engine at the same time, so "nothing behind" is judged only on objects this
run can be tied to: its label, its `atbb-smoke-<run id>-` names, and the engine's own event log of what
was created, mounted and destroyed while the run was going.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from atbb_kit.core.config import load_config
from atbb_kit.ops import smoke
from atbb_kit.ops.stack import remove_run
from tests.conftest import INV, ROOT, run_inv

E2E_LABEL = {"atbb.smoke.e2e": "1"}
HEALTH = '/api/health answers 200 containing "status":"ok" from appview'
ROUTES = "each of the 3 routes reaches its service"
PAGE = "/ answers a page from web"


def titles(test_images) -> list[str]:
    # The size line names the budget, which test_images may override for stand-in bases.
    return [c.title for c in smoke.checklist(load_config(ROOT / "atbb.yaml", environ=test_images))]


def mine(client, run_id: str) -> list[str]:
    sel = {"label": f"{smoke.LABEL}={run_id}"}
    return (
        [f"container {c.name}" for c in client.containers.list(all=True, filters=sel, ignore_removed=True)]
        + [f"network {n.name}" for n in client.networks.list(filters=sel)]
        + [f"volume {v.name}" for v in client.volumes.list(filters=sel)]
    )


def snapshot(client) -> dict[str, set[str]]:
    return {
        "container": {c.name for c in client.containers.list(all=True, ignore_removed=True)},
        "network": {n.name for n in client.networks.list()},
        "volume": {v.name for v in client.volumes.list()},
    }


def ledger(client, prefix: str, since: float, until: float) -> dict[str, dict[str, set[str]]]:
    """What the engine says was created, destroyed and mounted for names starting with `prefix`."""
    out: dict[str, dict[str, set[str]]] = {
        a: {"container": set(), "network": set(), "volume": set()} for a in ("create", "destroy")
    }
    ours: set[str] = set()
    mounted: set[str] = set()
    events = list(client.events(since=int(since) - 1, until=int(until) + 2, decode=True))
    for e in events:
        kind, action, actor = e.get("Type"), e.get("Action"), e.get("Actor", {})
        name = actor.get("Attributes", {}).get("name") if kind != "volume" else actor.get("ID")
        if kind == "container" and action == "create" and (name or "").startswith(prefix):
            ours.add(actor["ID"])
        if kind in ("container", "network", "volume") and action in out and (name or "").startswith(prefix):
            out[action][kind].add(name)
    for e in events:
        actor = e.get("Actor", {})
        if e.get("Type") == "volume" and e.get("Action") == "mount" and actor["Attributes"].get("container") in ours:
            mounted.add(actor["ID"])
    out["mounted"] = {"volume": mounted}
    return out


def assert_nothing_left(client, run_id: str, before: dict[str, set[str]], since: float) -> dict:
    prefix = f"{smoke.NAME_PREFIX}-{run_id}-"
    assert mine(client, run_id) == []
    after = snapshot(client)
    for kind in after:
        new = {n for n in after[kind] - before[kind] if n.startswith(prefix)}
        assert new == set(), f"{kind}s left behind: {new}"
    book = ledger(client, prefix, since, time.time())
    for kind in ("container", "network", "volume"):
        assert book["create"][kind] == book["destroy"][kind], f"{kind}s created but not removed"
    # Every volume the run's containers mounted is one of its own, named ones: no anonymous volume.
    assert book["mounted"]["volume"] <= book["create"]["volume"], book["mounted"]
    return book


# --- the good image ---------------------------------------------------------------------------------------


def test_smoke_passes_on_the_example_image_and_leaves_nothing(docker_client, built_image, test_images):
    before, since = snapshot(docker_client), time.time()
    proc = run_inv("smoke", "--image", built_image, env=test_images, timeout=600)
    run_id = smoke.run_id_from(proc.stderr)
    assert run_id, proc.stderr
    assert proc.returncode == 0, proc.stderr[-4000:]
    for i, title in enumerate(titles(test_images), 1):
        assert re.search(rf"^\[\s*{i}/10\] ok\s+{re.escape(title)}", proc.stderr, re.M), f"line {i}: {title}"
    assert "smoke: all 10 checks passed" in proc.stderr
    assert "HEALTHCHECK turns healthy" in proc.stdout  # the table
    book = assert_nothing_left(docker_client, run_id, before, since)
    prefix = f"{smoke.NAME_PREFIX}-{run_id}-"
    assert book["create"]["container"] == {prefix + n for n in ("postgres", "migrate-1", "migrate-2", "app")}
    assert book["create"]["network"] == {prefix + "net"}
    pg_volumes = docker_client.images.get(test_images["ATBB_COMPOSE_POSTGRES_IMAGE"]).attrs["Config"].get("Volumes")
    if pg_volumes:  # the ledger saw PostgreSQL's data volume mounted: the no-anonymous-volume check has teeth
        assert book["mounted"]["volume"] == book["create"]["volume"] != set()
    # The secrets it generated never reach the output.
    assert "SESSION_SECRET=" not in proc.stdout + proc.stderr


def test_keep_leaves_the_run_for_inspection(docker_client, built_image, test_images):
    proc = run_inv("smoke", "--image", built_image, "--keep", env=test_images, timeout=600)
    run_id = smoke.run_id_from(proc.stderr)
    assert run_id, proc.stderr
    try:
        assert proc.returncode == 0, proc.stderr[-4000:]
        kept = mine(docker_client, run_id)
        prefix = f"{smoke.NAME_PREFIX}-{run_id}-"
        assert {f"container {prefix}{n}" for n in ("postgres", "migrate-1", "migrate-2", "app")} <= set(kept)
        assert f"network {prefix}net" in kept
        assert f"remove them with: docker rm -f $(docker ps -aq --filter label=atbb.smoke={run_id})" in proc.stderr
    finally:
        remove_run(docker_client, smoke.LABEL, run_id)
    assert mine(docker_client, run_id) == []


# --- images broken on purpose -----------------------------------------------------------------------------


def _image_env(client, image: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in client.images.get(image).attrs["Config"]["Env"])


def _without_api_route(client, image: str, folder: Path) -> str:
    """nginx.conf (wherever the image keeps it) minus the /api/ location: everything goes to web."""
    conf = _image_env(client, image).get("NGINX_CONF", "/etc/nginx/nginx.conf")
    original = client.containers.run(image, ["cat", conf], remove=True, labels=E2E_LABEL).decode()
    broken, count = re.subn(r"\n[ \t]*location /api/ \{[^}]*\}\n", "\n", original)
    assert count == 1, "the image's nginx.conf has no single `location /api/` block to remove"
    (folder / "nginx.conf").write_text(broken)
    return f"FROM {image}\nCOPY nginx.conf {conf}\n"


def _health_500(client, image: str, folder: Path) -> str:
    """The built appview's health route answers 500 (the patch must apply, or the build fails)."""
    env = _image_env(client, image)
    entry = load_config(ROOT / "atbb.yaml", environ={}).services["appview"].command[1]
    app_js = f"{env['APP_DIR']}/{Path(entry).parent}/app.js"
    # No character here is special in a sed basic regex ("." matches itself too), so no escaping.
    ok = "return c.json({ status: 'ok', database: 'up', version });"
    bad = "return c.json({ status: 'broken' }, 500);"
    return f'FROM {image}\nUSER 0\nRUN sed -i "s/{ok}/{bad}/" {app_js} && grep -qF "{bad}" {app_js}\nUSER 10001:10001\n'


BROKEN = {
    "no-api-route": (_without_api_route, [HEALTH, ROUTES]),
    "health-500": (_health_500, [HEALTH]),
}


@pytest.fixture(params=sorted(BROKEN))
def broken_image(request, docker_client, built_image, tmp_path):
    make, failing = BROKEN[request.param]
    (tmp_path / "Dockerfile").write_text(make(docker_client, built_image, tmp_path))
    tag = f"atbb-smoke-e2e-broken:{request.param}-{uuid.uuid4().hex[:6]}"
    docker_client.images.build(path=str(tmp_path), tag=tag, rm=True, forcerm=True, labels=E2E_LABEL)
    yield tag, failing
    docker_client.images.remove(tag, force=True)


def test_a_broken_image_fails_on_the_right_line_and_cleans_up(docker_client, broken_image, test_images):
    image, failing = broken_image
    before, since = snapshot(docker_client), time.time()
    proc = run_inv("smoke", "--image", image, env=test_images, timeout=600)
    run_id = smoke.run_id_from(proc.stderr)
    assert run_id, proc.stderr
    assert proc.returncode == 1, proc.stderr[-4000:]
    error = next(line for line in proc.stderr.splitlines() if line.startswith("error: smoke:"))
    assert error.startswith(f"error: smoke: {len(failing)} of 10 checks failed, 1 skipped: ")
    assert error.endswith("— see the reason above")
    for title in failing:
        assert title in error
        assert re.search(rf"^\[\s*\d+/10\] FAIL\s+{re.escape(title)} — ", proc.stderr, re.M)
    # The reason is shown: the status and the start of what answered instead.
    assert re.search(r"^ {8}HTTP [45]\d\d \(", proc.stderr, re.M)
    # The HEALTHCHECK would only repeat the health line's verdict ~40 s later: skipped, not waited for.
    assert re.search(r"^\[ 9/10\] skipped HEALTHCHECK turns healthy", proc.stderr, re.M)
    # Independent lines still ran.
    assert re.search(rf"^\[ 7/10\] ok\s+{re.escape(PAGE)}", proc.stderr, re.M)
    assert re.search(r"^\[10/10\] ok\s+docker stop exits 0", proc.stderr, re.M)
    assert_nothing_left(docker_client, run_id, before, since)


# --- interrupted runs -------------------------------------------------------------------------------------


def _stream(proc: subprocess.Popen, lines: queue.Queue) -> None:
    for line in proc.stderr:
        lines.put(line)
    lines.put(None)


@pytest.mark.parametrize(
    ("sig", "after"),
    [
        (signal.SIGINT, PAGE),  # the app is up, the HEALTHCHECK wait has begun
        (signal.SIGTERM, "migration runs (exit 0)"),  # database up, second migration starting
    ],
    ids=["ctrl-c-with-the-app-running", "sigterm-between-migrations"],
)
def test_an_interrupted_run_removes_everything(docker_client, built_image, test_images, sig, after):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATBB_", "GITHUB_"))}
    env.update(test_images)
    before, since = snapshot(docker_client), time.time()
    proc = subprocess.Popen(
        [*INV, "smoke", "--image", built_image],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_stream, args=(proc, lines), daemon=True).start()
    seen: list[str] = []
    run_id = None
    try:
        deadline = time.monotonic() + 300
        while not any(re.search(rf"\] ok\s+{re.escape(after)}", s) for s in seen):
            line = lines.get(timeout=max(1, deadline - time.monotonic()))
            assert line is not None, "smoke ended before the interrupt point:\n" + "".join(seen)
            seen.append(line)
        run_id = smoke.run_id_from("".join(seen))
        assert run_id
        # Mid-run, every object is tied to the run, and PostgreSQL keeps its data in a labelled volume.
        live = docker_client.containers.list(all=True, filters={"label": f"{smoke.LABEL}={run_id}"})
        assert live
        for container in live:
            for mount in container.attrs["Mounts"]:
                if mount["Type"] == "volume":
                    assert mount["Name"].startswith(f"{smoke.NAME_PREFIX}-{run_id}-"), mount
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        # If the test failed before its own signal, stop the run the way a user would, so it cleans up.
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if run_id and proc.returncode != 128 + sig:
            remove_run(docker_client, smoke.LABEL, run_id)
    while (line := lines.get(timeout=10)) is not None:
        seen.append(line)
    output = "".join(seen)
    assert code == 128 + sig, output
    assert f"error: smoke: interrupted by {signal.Signals(sig).name}" in output
    assert "nothing was left behind" in output
    assert_nothing_left(docker_client, run_id, before, since)
