"""The foundation against a real engine: it answers, and the kit sees it with the test base images."""

from __future__ import annotations

from tests.conftest import run_inv


def test_engine_answers_with_a_server_version(docker_client):
    version = docker_client.version()
    assert version["Version"], version
    assert int(version["ApiVersion"].split(".")[1]) >= 41


def test_config_check_passes_with_test_base_images(test_images):
    proc = run_inv("config", "--check", env=test_images)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: ")
    shown = run_inv("config", env=test_images)
    assert "env ATBB_IMAGE_BASE" in shown.stdout
