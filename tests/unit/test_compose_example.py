"""docker-compose.example.yml: least privilege between its containers (issue 14, finding 10).

The operator keeps one env file; the Compose file decides what each container gets of it. Checked on the
file as written and as Compose v1 resolves it (docker-compose config), the way an operator's Compose reads
it; tests/e2e/test_oneoff_deadlines.py inspects the real containers.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

SERVICES = yaml.safe_load((ROOT / "docker-compose.example.yml").read_text(encoding="utf-8"))["services"]


def test_postgres_gets_its_three_values_and_nothing_of_the_env_file():
    pg = SERVICES["postgres"]
    assert "env_file" not in pg, "the app's secrets must not reach PostgreSQL"
    assert pg["environment"] == {
        "POSTGRES_USER": "${POSTGRES_USER:-}",
        "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-}",
        "POSTGRES_DB": "${POSTGRES_DB:-}",
    }


@pytest.mark.parametrize("service", ["atbb", "migrate"])
def test_the_app_containers_see_postgres_password_blanked(service):
    assert SERVICES[service]["env_file"] == "${ATBB_ENV_FILE:-.env}"
    assert SERVICES[service]["environment"] == {"POSTGRES_PASSWORD": ""}


def test_the_migrate_one_off_runs_without_the_image_healthcheck():
    assert SERVICES["migrate"]["healthcheck"] == {"disable": True}
    assert "healthcheck" in SERVICES["atbb"] and "disable" not in SERVICES["atbb"]["healthcheck"]


def test_compose_resolves_each_container_environment(tmp_path):
    """With an env file holding everything, as .env.production.example does."""
    compose = shutil.which("docker-compose")
    if compose is None:
        # Like the e2e suite: never a silent pass in CI, where scripts/bootstrap.sh installs it.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("docker-compose is not installed (CI=true: run scripts/bootstrap.sh)")
        pytest.skip("docker-compose (v1) is not installed; the YAML checks above still ran")
    shutil.copy(ROOT / "docker-compose.example.yml", tmp_path / "docker-compose.example.yml")
    (tmp_path / ".env").write_text(
        "DATABASE_URL=postgres://atbb:pg-secret-1@postgres:5432/atbb\n"
        "SESSION_SECRET=session-secret-0123456789abcdef0123456789\n"
        "POSTGRES_USER=atbb\nPOSTGRES_PASSWORD=pg-secret-1\nPOSTGRES_DB=atbb\n"
    )
    proc = subprocess.run(
        [compose, "-f", "docker-compose.example.yml", "-p", "h14compose", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)["services"]
    assert resolved["postgres"]["environment"] == {
        "POSTGRES_USER": "atbb",
        "POSTGRES_PASSWORD": "pg-secret-1",
        "POSTGRES_DB": "atbb",
    }
    for name in ("atbb", "migrate"):
        env = resolved[name]["environment"]
        assert env["POSTGRES_PASSWORD"] == "", name
        assert env["SESSION_SECRET"].startswith("session-secret"), name
    assert resolved["migrate"]["healthcheck"] == {"test": ["NONE"]}


def test_the_kit_hands_compose_the_postgres_values_of_the_env_file_wherever_it_lies(tmp_path):
    """Compose would only look for them in the `.env` next to the Compose file."""
    from atbb_kit.commands.base import Command, Secret
    from atbb_kit.ops.deployment import compose_env

    env_file = tmp_path / "elsewhere.env"
    env_file.write_text("DATABASE_URL=postgres://atbb:pg-secret-2@postgres:5432/atbb\nPOSTGRES_PASSWORD=pg-secret-2\n")
    env = compose_env("atbb:t", 8080, env_file, "postgres:16-alpine")
    assert env["POSTGRES_PASSWORD"] == "pg-secret-2" and isinstance(env["POSTGRES_PASSWORD"], Secret)
    assert "POSTGRES_USER" not in env, "unset values are left to the file's defaults"
    assert "DATABASE_URL" not in env, "nothing else of the env file"
    assert "pg-secret-2" not in Command(("docker", "compose", "up"), env=env).display()
    # Commands that work without an env file (compose-down, logs) still get their variables.
    assert "POSTGRES_PASSWORD" not in compose_env("atbb:t", 8080, tmp_path / "absent.env", "pg")
    (tmp_path / "binary.env").write_bytes(b"\xff\xfe")
    assert "POSTGRES_PASSWORD" not in compose_env("atbb:t", 8080, tmp_path / "binary.env", "pg")


# --- the edge (issue 17): the one service on the host port, nginx from the same image ---------------------


def test_the_edge_publishes_the_host_port_and_atbb_does_not():
    assert "ports" not in SERVICES["atbb"], "a second atbb container (inv upgrade) would fight over the port"
    assert SERVICES["edge"]["ports"] == ["${ATBB_HOST_PORT:-8080}:80"]
    assert SERVICES["edge"]["image"] == SERVICES["atbb"]["image"], "no third-party image to trust or update"


def test_the_edge_is_as_locked_down_as_the_app():
    edge = SERVICES["edge"]
    assert edge["read_only"] is True and edge["tmpfs"] == ["/tmp"] and edge["cap_drop"] == ["ALL"]
    assert "env_file" not in edge and "environment" not in edge, "the edge needs none of the app's secrets"
    assert edge["restart"] == "unless-stopped"


def edge_script(root: str) -> str:
    """The edge's start script as Compose hands it to the shell ($$ -> $), with its folder moved to `root`
    and nginx asked to test the configuration instead of running it."""
    script = SERVICES["edge"]["command"][0].replace("$$", "$").replace("/tmp/edge", root)
    assert "exec nginx -e stderr -c " in script
    return script.replace("exec nginx -e stderr -c ", "nginx -t -q -e stderr -c ")


def test_real_nginx_accepts_the_edge_configuration_and_the_kits_rewrite_of_it(tmp_path):
    """The configuration the Compose file writes, then the upstream file `inv upgrade` writes, both pass
    nginx -t with the host's nginx (the image's is the same distribution package)."""
    from atbb_kit.commands import upgrade as cmds

    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("nginx is not installed (CI=true: run scripts/bootstrap.sh)")
        pytest.skip("nginx is not installed")
    root = str(tmp_path / "edge")
    env = {**os.environ, "PATH": f"{os.path.dirname(nginx)}:{os.environ.get('PATH', '')}"}
    first = subprocess.run(["sh", "-c", edge_script(root)], capture_output=True, text=True, env=env, check=False)
    assert first.returncode == 0, first.stderr
    upstream = (tmp_path / "edge" / "upstream.conf").read_text()
    assert 'default "atbb";' in upstream and 'default "";' in upstream
    # The kit's rewrite (point_edge's script) with nginx -s reload left out: no master runs here.
    rewrite = cmds.EDGE_SCRIPT.replace("/tmp/edge", root).split("; nginx -e stderr")[0]
    second = subprocess.run(
        ["sh", "-c", rewrite, "sh", "atbb_atbb_3", "e2e-1.1.0-3"], capture_output=True, text=True, env=env, check=False
    )
    assert second.returncode == 0, second.stderr
    upstream = (tmp_path / "edge" / "upstream.conf").read_text()
    assert 'default "atbb_atbb_3";' in upstream and 'default "e2e-1.1.0-3";' in upstream
