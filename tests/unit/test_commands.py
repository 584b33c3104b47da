"""argv builders: each command the kit runs, compared as data."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from atbb_kit.commands import docker as commands
from atbb_kit.commands import pnpm
from atbb_kit.core.config import load_config
from atbb_kit.core.errors import KitError
from tests.conftest import ROOT

CTX = Path("/kit")
DF = Path("/kit/docker/Dockerfile")
LABELS = {"org.opencontainers.image.revision": "abc", "org.opencontainers.image.version": "1.2.3", "x.other": "n"}


def build(builder, **kw):
    defaults = dict(context=CTX, dockerfile=DF, tags=["r/o/atbb:1.2.3", "r/o/atbb:latest"], args={"A": "1"}, labels={})
    defaults.update(kw)
    return commands.docker_build("docker", builder, **defaults)


CASES = [
    (
        "classic",
        build("classic"),
        (
            "docker",
            "build",
            "--file",
            str(DF),
            "--tag",
            "r/o/atbb:1.2.3",
            "--tag",
            "r/o/atbb:latest",
            "--build-arg",
            "A=1",
            "/kit",
        ),
        {"DOCKER_BUILDKIT": "0"},
    ),
    (
        "buildkit",
        build("buildkit", no_cache=True),
        (
            "docker",
            "build",
            "--progress=plain",
            "--file",
            str(DF),
            "--tag",
            "r/o/atbb:1.2.3",
            "--tag",
            "r/o/atbb:latest",
            "--build-arg",
            "A=1",
            "--no-cache",
            "/kit",
        ),
        {"DOCKER_BUILDKIT": "1"},
    ),
    (
        "buildx-single-loads",
        build("buildx", platforms=["linux/amd64"], tags=["t"]),
        (
            "docker",
            "buildx",
            "build",
            "--progress=plain",
            "--platform",
            "linux/amd64",
            "--load",
            "--file",
            str(DF),
            "--tag",
            "t",
            "--build-arg",
            "A=1",
            "/kit",
        ),
        {},
    ),
    (
        "buildx-multi-cannot-load",
        build("buildx", platforms=["linux/amd64", "linux/arm64"], tags=["t"]),
        (
            "docker",
            "buildx",
            "build",
            "--progress=plain",
            "--platform",
            "linux/amd64,linux/arm64",
            "--file",
            str(DF),
            "--tag",
            "t",
            "--build-arg",
            "A=1",
            "/kit",
        ),
        {},
    ),
    (
        "buildx-push-with-gha-cache",
        build("buildx", platforms=["linux/amd64", "linux/arm64"], tags=["t"], push=True, cache="gha"),
        (
            "docker",
            "buildx",
            "build",
            "--progress=plain",
            "--platform",
            "linux/amd64,linux/arm64",
            "--push",
            # GitHub's cache service v2 (v1 is shut down), and a failed cache export only warns.
            "--cache-from",
            "type=gha,version=2",
            "--cache-to",
            "type=gha,version=2,mode=max,ignore-error=true",
            "--file",
            str(DF),
            "--tag",
            "t",
            "--build-arg",
            "A=1",
            "/kit",
        ),
        {},
    ),
    (
        # What the publish job runs (`inv image --cache gha`): one platform, loaded for `inv smoke`.
        "buildx-load-with-gha-cache",
        build("buildx", platforms=["linux/amd64"], tags=["t"], cache="gha"),
        (
            "docker",
            "buildx",
            "build",
            "--progress=plain",
            "--platform",
            "linux/amd64",
            "--load",
            "--cache-from",
            "type=gha,version=2",
            "--cache-to",
            "type=gha,version=2,mode=max,ignore-error=true",
            "--file",
            str(DF),
            "--tag",
            "t",
            "--build-arg",
            "A=1",
            "/kit",
        ),
        {},
    ),
    (
        "labels-become-build-args",
        build("classic", tags=["t"], labels=LABELS),
        (
            "docker",
            "build",
            "--file",
            str(DF),
            "--tag",
            "t",
            "--build-arg",
            "A=1",
            "--build-arg",
            "REVISION=abc",
            "--build-arg",
            "VERSION=1.2.3",
            "/kit",
        ),
        {"DOCKER_BUILDKIT": "0"},
    ),
]


@pytest.mark.parametrize(("cmd", "expected", "env"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_docker_build_argv(cmd, expected, env):
    assert cmd.argv == expected
    assert dict(cmd.env) == env


@pytest.mark.parametrize(
    ("backend", "source", "target"),
    [
        ("gha", "type=gha,version=2", "type=gha,version=2,mode=max,ignore-error=true"),
        # version=2 is a gha parameter only; every backend's export failure is non-fatal.
        ("local", "type=local", "type=local,mode=max,ignore-error=true"),
    ],
)
def test_cache_arguments(backend, source, target):
    assert commands.cache_source(backend) == source
    assert commands.cache_target(backend) == target


def test_unknown_builder_is_a_bug():
    with pytest.raises(ValueError, match="podman"):
        build("podman")


def test_build_args_mirror_atbb_yaml():
    cfg = load_config(ROOT / "atbb.yaml", environ={"ATBB_IMAGE_BASE": "local/node:22"})
    args = commands.build_args(cfg)
    assert args == {
        "NODE_BASE": "local/node:22",
        "PNPM_VERSION": cfg.node.pnpm,
        "MONOREPO": "examples/forum",
        "NGINX_CONF": "nginx/nginx.conf",
        "KIT_EXCLUDE": "",
        "RUNTIME_INCLUDE": "*/dist",
        "MIGRATE_PACKAGE": "",
        "SERVICES": (
            "ATBB_SERVICES='appview web'; svc_appview_cwd=.; svc_appview_port=3000; svc_appview_grace=5; "
            "svc_appview_env='ATBB_SERVICE=appview HOST=127.0.0.1 PORT=3000'; "
            "svc_appview_argv='node apps/appview/dist/index.js'; svc_web_cwd=.; svc_web_port=3001; "
            "svc_web_grace=5; svc_web_env='ATBB_SERVICE=web HOST=127.0.0.1 PORT=3001 "
            "APPVIEW_URL=http://127.0.0.1:3000'; svc_web_argv='node apps/web/dist/index.js'"
        ),
        "MIGRATE": "migrate_dir=''; migrate_cwd=.; migrate_argv='node apps/appview/dist/migrate.js'",
        "HEALTH": 'health_path=/api/health; health_status=200; health_body=\'"status":"ok"\'',
    }


def test_build_args_for_a_config_beside_its_app_drop_the_kit_files(tmp_path):
    # monorepo: "." with the config, the rendered nginx.conf and the kit all inside the app's folder.
    app = ROOT / "examples" / "forum"
    cfg = load_config(ROOT / "atbb.yaml", environ={}, overrides={"monorepo": "."})
    args = commands.build_args(cfg)
    assert args["MONOREPO"] == "."
    assert args["KIT_EXCLUDE"].split() == [
        "atbb.yaml",
        "atbb_kit",
        "docker/Dockerfile",
        "docker/entrypoint.sh",
        "nginx/nginx.conf",
        "nginx/nginx.conf.template",
        "tasks.py",
    ]
    assert app.is_dir()


def test_build_context_must_hold_the_monorepo(tmp_path):
    (tmp_path / "atbb.yaml").write_text((ROOT / "atbb.yaml").read_text())
    cfg = load_config(tmp_path / "atbb.yaml", environ={})
    with pytest.raises(KitError, match="outside the build context"):
        commands.build_args(cfg)


def test_dockerfile_arg_defaults_match_config():
    """`docker build -f docker/Dockerfile .` without the kit must build what atbb.yaml describes."""
    cfg = load_config(ROOT / "atbb.yaml", environ={})
    defaults = {}
    for line in (ROOT / "docker" / "Dockerfile").read_text().splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0] == "ARG" and "=" in parts[1]:
            key, _, value = parts[1].partition("=")
            # Dockerfile ARG defaults are quoted like shell words.
            defaults.setdefault(key, shlex.split(value)[0] if value else "")
    for key, value in commands.build_args(cfg).items():
        assert defaults.get(key) == value, f"ARG {key} default {defaults.get(key)!r} != atbb.yaml {value!r}"


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        (pnpm.monorepo_lint, ("pnpm", "turbo", "run", "lint")),
        (pnpm.monorepo_test, ("pnpm", "turbo", "run", "test")),
        (pnpm.monorepo_build, ("pnpm", "turbo", "run", "build")),
    ],
)
def test_pnpm_commands_run_in_the_monorepo(builder, expected):
    cmd = builder(Path("/m"))
    assert cmd.argv == expected
    assert cmd.cwd == Path("/m")
    assert cmd.install_hint and "pnpm" in cmd.install_hint


@pytest.mark.parametrize(("suite", "marker"), [("unit", ("-m", "unit")), ("e2e", ("-m", "e2e")), ("all", ())])
def test_pytest_suite(suite, marker):
    cmd = pnpm.pytest_suite(Path("/k"), suite, ["-x"])
    assert cmd.argv[1:] == ("-m", "pytest", *marker, "-x")


def test_image_cache_needs_buildx():
    from tests.conftest import run_inv

    proc = run_inv("image", "--cache", "gha", "--builder", "buildkit", "--dry-run")
    assert proc.returncode == 1
    assert "--cache gha needs docker buildx" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_image_refuses_the_classic_builder_naming_the_fix():
    from tests.conftest import run_inv

    proc = run_inv("image", "--builder", "classic", "--dry-run")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: docker/Dockerfile needs BuildKit")
    assert "DOCKER_BUILDKIT=1" in lines[0] and "buildx" in lines[0]


def test_cold_builds_empty_the_cache_mounts():
    cmd = commands.docker_prune_build_cache_mounts("docker")
    assert cmd.argv == ("docker", "builder", "prune", "--force", "--filter", "type=exec.cachemount")
