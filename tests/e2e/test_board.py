"""The second example (examples/board) from the same kit files as the forum, differing only in atbb.yaml:
a Hono API on API_PORT with a plain-text 404, a React Router app started by its CLI from its own folder,
a worker with no port, drizzle-kit migrations from a devDependency, data files outside dist/.

Each test proves one thing issue 13 found broken when the kit was tried on a monorepo nobody here wrote.
"""

from __future__ import annotations

import re
import socket
import time
import uuid

import pytest

from tests.conftest import run_inv
from tests.e2e.conftest import board_images
from tests.e2e.stack import cleanup, http_get, run_migration, start_app, start_postgres, wait_for

HEALTH = "/api/boards"


@pytest.fixture(scope="module")
def board(docker_client, board_image, test_images):
    name = f"atbb-e2e-board-{uuid.uuid4().hex[:6]}"
    pg = start_postgres(docker_client, test_images["ATBB_COMPOSE_POSTGRES_IMAGE"], name)
    try:
        code, logs = run_migration(docker_client, board_image, pg)
        assert code == 0, logs
        env = {"DATABASE_URL": pg.url, "WORKER_INTERVAL_MS": "300"}
        app = start_app(docker_client, board_image, pg, name, env=env, health=HEALTH)
        yield app, pg, logs
    finally:
        cleanup(docker_client, name)


def test_smoke_passes_on_the_board_image(board_image, test_images):
    proc = run_inv("smoke", "--image", board_image, env=board_images(test_images), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "smoke: all 10 checks passed" in proc.stderr + proc.stdout
    # Its health expectation came from examples/board/atbb.yaml, not from the forum's JSON health.
    assert f"{HEALTH} answers 200 from api" in proc.stderr


def test_the_devdependency_migrator_ran_from_the_deployed_package(board):
    _app, _pg, logs = board
    assert "migrations applied successfully" in logs


def test_the_framework_cli_serves_its_page_with_inline_hydration_and_its_assets(board):
    app, _pg, _logs = board
    page = http_get(app.url + "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    inline = re.findall(rb"<script(?![^>]*\bsrc=)[^>]*>", page.body)
    assert inline, "no inline hydration script in the page"
    # The kit's default CSP must let those scripts run.
    assert "script-src 'self' 'unsafe-inline'" in page.headers["content-security-policy"]
    assets = sorted(set(re.findall(rb"(/assets/[A-Za-z0-9._-]+\.(?:js|css))", page.body)))
    assert assets, "the page links no built assets"
    for asset in assets:
        resp = http_get(app.url + asset.decode())
        assert resp.status == 200, asset
        kind = "javascript" if asset.endswith(b".js") else "css"
        assert kind in resp.headers["content-type"], (asset, resp.headers["content-type"])
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert resp.headers["x-content-type-options"] == "nosniff"
    board_page = http_get(app.url + "/b/general")
    assert board_page.status == 200 and b"General" in board_page.body


def test_the_api_reads_its_data_files_and_keeps_its_own_404(board):
    app, _pg, _logs = board
    categories = http_get(app.url + "/api/categories")
    assert categories.status == 200 and len(categories.json()) >= 1
    missing = http_get(app.url + "/api/nope")
    assert missing.status == 404
    assert missing.headers["content-type"].startswith("text/plain")


def test_the_worker_without_a_route_writes_to_the_database(board):
    _app, pg, _logs = board

    def heartbeats() -> int:
        code, out = pg.container.exec_run(
            ["psql", "-U", "atbb", "-d", "atbb", "-tAc", "select count(*) from worker_heartbeats"]
        )
        assert code == 0, out
        return int(out.decode().strip())

    first = heartbeats()
    wait_for(lambda: heartbeats() >= first + 2, 15, 0.3, "the worker to write two more heartbeats")


def test_service_ports_are_not_reachable_from_outside(board):
    app, _pg, _logs = board
    ip = app.ip()
    for port in (4000, 4001):
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((ip, port)) != 0, f"{ip}:{port} answers from outside the container"


def test_docker_stop_ends_all_three_services_cleanly(docker_client, board_image, test_images):
    name = f"atbb-e2e-board-stop-{uuid.uuid4().hex[:6]}"
    pg = start_postgres(docker_client, test_images["ATBB_COMPOSE_POSTGRES_IMAGE"], name)
    try:
        code, logs = run_migration(docker_client, board_image, pg)
        assert code == 0, logs
        app = start_app(docker_client, board_image, pg, name, env={"DATABASE_URL": pg.url}, health=HEALTH)
        began = time.monotonic()
        app.container.stop(timeout=30)
        app.container.reload()
        assert app.container.attrs["State"]["ExitCode"] == 0
        assert time.monotonic() - began < 15
        logs = app.container.logs().decode()
        stopped = re.findall(r'"msg":"child stopped","child":"(\w+)"', logs)
        assert stopped == ["nginx", "worker", "web", "api"]
    finally:
        cleanup(docker_client, name)


def test_a_container_started_for_another_mode_is_not_probed_as_a_server(docker_client, board_image, board):
    # Every container of the image inherits the HEALTHCHECK; a one-off (migrate, check, a shell) serves
    # nothing and must not turn "unhealthy" while it runs.
    app, _pg, _logs = board
    oneoff = docker_client.containers.run(
        board_image, ["sh", "-c", "sleep 30"], detach=True, labels={"atbb.test": "1"}, auto_remove=False
    )
    try:
        code, out = oneoff.exec_run(["/usr/local/bin/atbb-entrypoint", "health"])
        assert code == 0 and b"not serving (started as: sh)" in out, out
    finally:
        oneoff.remove(force=True)
    # The serving container still probes for real.
    code, out = app.container.exec_run(["/usr/local/bin/atbb-entrypoint", "health"])
    assert code == 0 and b"not serving" not in out, out
