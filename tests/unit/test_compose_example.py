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
