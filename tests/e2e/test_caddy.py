"""The deployment guide against the real image: Caddy, configured from docs/Caddyfile.example, in front of
a running container; and the messages the guide quotes from the image and PostgreSQL, produced for real.

Caddy runs as a process on free loopback ports with its state (its local CA included) in a temporary
folder; the example changes only in its ports and upstream, and in global options that keep a test run
off port 2019, ports 80/443 and the system trust store. Containers are named `atbb-docs-<run>-*`,
labelled `atbb.test=1`, and removed at the end, as is the Caddy process (by its pid).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.stack import TEST_LABEL, cleanup, http_get, run_migration, start_app, start_postgres, wait_for
from tests.unit.test_docs import FOREIGN, check_json_line, quoted_lines

DOMAIN = "forum.example.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def adapt_caddyfile(text: str, https_port: int, http_port: int, upstream_port: int) -> str:
    """The example with the test's ports. Global options: no admin endpoint (other runs share this host),
    HTTP and HTTPS on the given ports, and the local CA kept out of the system trust store."""
    options = f"\tadmin off\n\thttp_port {http_port}\n\thttps_port {https_port}\n\tskip_install_trust\n"
    assert text.count("\n{\n") == 1, "the example has one global options block"
    text = text.replace("\n{\n", "\n{\n" + options, 1)
    assert f"{DOMAIN} {{" in text and "reverse_proxy localhost:8080" in text
    text = text.replace(f"{DOMAIN} {{", f"{DOMAIN}:{https_port} {{")
    return text.replace("reverse_proxy localhost:8080", f"reverse_proxy 127.0.0.1:{upstream_port}")


@pytest.fixture(scope="module")
def run_name(docker_client):
    name = f"atbb-docs-{secrets.token_hex(3)}"
    yield name
    cleanup(docker_client, name)


@pytest.fixture(scope="module")
def app(docker_client, built_image, test_images, run_name):
    pg = start_postgres(docker_client, test_images["ATBB_COMPOSE_POSTGRES_IMAGE"], run_name)
    code, output = run_migration(docker_client, built_image, pg)
    assert code == 0, output
    return start_app(docker_client, built_image, pg, run_name)


@pytest.fixture(scope="module")
def caddy(app, tmp_path_factory):
    binary = shutil.which("caddy")
    if not binary:
        pytest.fail("caddy is not installed (scripts/bootstrap.sh installs it)", pytrace=False)
    home = tmp_path_factory.mktemp("caddy")
    https_port, http_port = _free_port(), _free_port()
    config = home / "Caddyfile"
    config.write_text(
        adapt_caddyfile((ROOT / "docs" / "Caddyfile.example").read_text(), https_port, http_port, app.port)
    )
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "cfg")}
    log = home / "caddy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "run", "--config", str(config), "--adapter", "caddyfile"], env=env, stdout=out, stderr=out
        )
    root_ca = home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    try:

        def serving():
            if proc.poll() is not None:
                raise AssertionError(f"caddy exited: {log.read_text()[-2000:]}")
            return root_ca.is_file() and _get(https_port, "/api/health", root_ca)[0] == 200

        wait_for(serving, 30, 0.2, "caddy to serve the forum over TLS")
        yield {"https": https_port, "http": http_port, "ca": root_ca, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with DOMAIN as the server name, as a browser whose DNS points DOMAIN here."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _get(port: int, path: str, ca: Path) -> tuple[int, dict[str, str], bytes]:
    conn = _Pinned(DOMAIN, port, context=ssl.create_default_context(cafile=str(ca)), timeout=5)
    try:
        conn.request("GET", path, headers={"Host": f"{DOMAIN}:{port}"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_forum_page_through_caddy(caddy, app):
    status, headers, body = _get(caddy["https"], "/", caddy["ca"])
    assert status == 200, body[:500]
    assert headers["content-type"].startswith("text/html")
    assert b"<html" in body.lower()
    # Caddy adds HSTS; the security headers come from the nginx inside the image, untouched.
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_health_through_caddy(caddy):
    status, headers, body = _get(caddy["https"], "/api/health", caddy["ca"])
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["status"] == "ok"


def test_caddy_forwards_the_client_address(caddy, app):
    _get(caddy["https"], "/api/ping", caddy["ca"])

    def logged():
        for line in app.container.logs(stdout=True, stderr=False).decode().splitlines():
            if '"source":"nginx"' in line and '"/api/ping"' in line:
                return json.loads(line)
        return None

    entry = wait_for(logged, 10, 0.2, "nginx's access line for /api/ping")
    assert entry["x_forwarded_for"] == "127.0.0.1"
    assert entry["status"] == 200


def test_http_redirects_to_https(caddy):
    conn = http.client.HTTPConnection("127.0.0.1", caddy["http"], timeout=5)
    try:
        conn.request("GET", "/some/page", headers={"Host": DOMAIN})
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    assert resp.status == 308
    assert resp.getheader("Location", "").startswith(f"https://{DOMAIN}")


def test_every_json_line_the_container_wrote_passes_the_guide_check(caddy, app):
    """The rules test_docs uses for the guide's log excerpts hold for a real container's log."""
    http_get(app.url + "/api/nope")
    lines = [ln for ln in app.container.logs().decode().splitlines() if ln.startswith("{")]
    assert any('"source":"nginx"' in ln for ln in lines) and any('"service":"web"' in ln for ln in lines)
    for line in lines:
        assert check_json_line(line) is None, line


# ---------------------------------------------------------------------------------------------------------
# The image's and PostgreSQL's own words, as the guide quotes them


def guide_line(prefix: str) -> str:
    found = [line for line, _ in quoted_lines() if line.startswith(prefix)]
    assert found, f"the guide quotes no line starting with {prefix!r}"
    return found[0]


def _numbers_as_wildcards(line: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\d+", r"\\d+", re.escape(line)))


@pytest.fixture(scope="module")
def other_db(docker_client, test_images, run_name, app):
    """A second PostgreSQL whose user is `atbb` but which has no database `atbb`, and a role without
    rights on its schema: the setups behind the guide's database entries."""
    network = docker_client.networks.get(f"{run_name}-net")
    password = secrets.token_hex(8)
    container = docker_client.containers.run(
        test_images["ATBB_COMPOSE_POSTGRES_IMAGE"],
        name=f"{run_name}-pg2",
        detach=True,
        network=network.name,
        labels=TEST_LABEL,
        environment={"POSTGRES_USER": "atbb", "POSTGRES_PASSWORD": password, "POSTGRES_DB": "other"},
    )

    def ready():
        code, _ = container.exec_run(["pg_isready", "-U", "atbb", "-d", "other", "-h", "127.0.0.1"])
        return code == 0

    wait_for(ready, 90, 0.5, "the second postgres")
    code, out = container.exec_run(
        [
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "atbb",
            "-d",
            "other",
            "-c",
            "CREATE ROLE atbb_app LOGIN PASSWORD 'app-password'",
        ]
    )
    assert code == 0, out
    return {"host": f"{run_name}-pg2", "password": password, "network": network.name}


def migrate_output(docker_client, image: str, network: str, env: dict[str, str]) -> list[str]:
    container = docker_client.containers.run(
        image, ["migrate"], detach=True, network=network, labels=TEST_LABEL, environment=env
    )
    try:
        code = container.wait(timeout=120)["StatusCode"]
        assert code == 1
        return container.logs().decode().splitlines()
    finally:
        container.remove(force=True)


def test_wrong_password(docker_client, built_image, other_db):
    url = f"postgres://atbb:not-the-password@{other_db['host']}:5432/other"
    lines = migrate_output(docker_client, built_image, other_db["network"], {"DATABASE_URL": url})
    assert guide_line("migrate error: cannot use the database: password") in lines
    assert 'password authentication failed for user "atbb"' in FOREIGN


def test_missing_database(docker_client, built_image, other_db):
    url = f"postgres://atbb:{other_db['password']}@{other_db['host']}:5432/atbb"
    lines = migrate_output(docker_client, built_image, other_db["network"], {"DATABASE_URL": url})
    assert guide_line("migrate error: cannot use the database: database") in lines


def test_role_without_create_rights(docker_client, built_image, other_db):
    url = f"postgres://atbb_app:app-password@{other_db['host']}:5432/other"
    lines = migrate_output(docker_client, built_image, other_db["network"], {"DATABASE_URL": url})
    assert guide_line("migrate error: permission denied") in lines


def test_name_that_does_not_resolve(docker_client, built_image, other_db):
    env = {"DATABASE_URL": "postgres://atbb:pw@postgres:5432/atbb", "DB_WAIT_TIMEOUT": "3"}
    lines = migrate_output(docker_client, built_image, other_db["network"], env)
    waiting = _numbers_as_wildcards(guide_line("waiting for database ("))
    gave_up = _numbers_as_wildcards(guide_line("migrate error: database unreachable after"))
    assert any(waiting.fullmatch(line) for line in lines), lines
    assert any(gave_up.fullmatch(line) for line in lines), lines


def test_localhost_is_the_container_itself(docker_client, built_image, other_db):
    env = {"DATABASE_URL": "postgres://atbb:pw@127.0.0.1:5432/atbb"}
    lines = migrate_output(docker_client, built_image, other_db["network"], env)
    assert guide_line("migrate error: database unreachable: connect") in lines


def test_bad_forum_did_stops_the_container(docker_client, built_image, app, run_name):
    env = {**app.env, "FORUM_DID": "forum.example.com"}
    container = docker_client.containers.run(
        built_image,
        name=f"{run_name}-baddid",
        detach=True,
        labels=TEST_LABEL,
        environment=env,
        read_only=True,
        tmpfs={"/tmp": ""},
        cap_drop=["ALL"],
    )
    try:
        assert container.wait(timeout=60)["StatusCode"] == 1
        lines = container.logs().decode().splitlines()
    finally:
        container.remove(force=True)
    assert guide_line("config error: FORUM_DID") in lines
    exited = [json.loads(ln) for ln in lines if '"child exited; stopping the others"' in ln]
    assert exited and exited[0]["child"] == "appview" and exited[0]["code"] == 1
    quoted = json.loads(guide_line('{"time":"2026-11-27T13:02:27Z","level":"error","source":"supervisor"'))
    assert {k: v for k, v in quoted.items() if k != "time"} == {k: v for k, v in exited[0].items() if k != "time"}


def test_extra_arguments_are_refused(docker_client, built_image):
    container = docker_client.containers.run(built_image, ["serve", "extra"], detach=True, labels=TEST_LABEL)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 64
        line = container.logs().decode().strip()
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    quoted = json.loads(guide_line('{"time":"2026-11-27T13:04:45Z","level":"error","source":"supervisor","msg":"serve'))
    assert {k: v for k, v in json.loads(line).items() if k != "time"} == {
        k: v for k, v in quoted.items() if k != "time"
    }
