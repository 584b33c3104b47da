"""`--network` for the one-off containers (issue 13 item 10): a database on the operator's own Docker
network, not the Compose example's. Without the flag the migrator and the doctor's check cannot resolve
the host and say so; with it they join that network and succeed; a misspelt network is named."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import run_inv
from tests.e2e.stack import app_env, cleanup, start_postgres


@pytest.fixture(scope="module")
def own_network_db(docker_client, test_images, tmp_path_factory):
    name = f"atbb-e2e-net-{uuid.uuid4().hex[:6]}"
    pg = start_postgres(docker_client, test_images["ATBB_COMPOSE_POSTGRES_IMAGE"], name)
    env_file = tmp_path_factory.mktemp("netflag") / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in app_env(pg).items()))
    env_file.chmod(0o600)
    try:
        yield pg, env_file
    finally:
        cleanup(docker_client, name)


def test_migrate_reaches_a_database_on_another_network_only_with_the_flag(built_image, test_images, own_network_db):
    pg, env_file = own_network_db
    base = ("migrate", "--env-file", str(env_file), "--image", built_image)
    # The host never resolves off its network: waiting the default 60 s for it would prove nothing more.
    without = run_inv(*base, env={**test_images, "ATBB_MIGRATE_WAIT_TIMEOUT": "3"}, timeout=300)
    assert without.returncode != 0
    assert "--network NAME" in without.stderr, without.stderr[-2000:]
    with_flag = run_inv(*base, "--network", pg.network.name, env=test_images, timeout=300)
    assert with_flag.returncode == 0, with_flag.stdout[-2000:] + with_flag.stderr[-2000:]
    assert f"joins the Docker network {pg.network.name}" in with_flag.stderr
    assert "migrate: done" in with_flag.stdout + with_flag.stderr


def test_doctor_checks_the_database_on_the_named_network(built_image, test_images, own_network_db):
    pg, env_file = own_network_db
    without = run_inv("doctor", "--env-file", str(env_file), "--image", built_image, env=test_images, timeout=300)
    assert "cannot reach the database host" in without.stdout + without.stderr
    assert "--network NAME" in without.stdout + without.stderr
    args = ("doctor", "--env-file", str(env_file), "--image", built_image, "--network", pg.network.name)
    found = run_inv(*args, env=test_images, timeout=300)
    assert f"(on network {pg.network.name})" in found.stdout, found.stdout[-3000:]


def test_a_network_that_does_not_exist_is_named(built_image, test_images, own_network_db):
    _pg, env_file = own_network_db
    args = ("migrate", "--env-file", str(env_file), "--image", built_image, "--network", "atbb-no-such-net")
    proc = run_inv(*args, env=test_images, timeout=120)
    assert proc.returncode == 2 or proc.returncode == 1
    assert "Docker network 'atbb-no-such-net' (--network) does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
