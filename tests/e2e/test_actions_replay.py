"""Replay the publish job's `inv` steps locally, with the environment GitHub Actions gives them.

The runner's variables are set by hand (a tag push of v1.2.3 to acme/forum; the owner in upper case on
purpose: GHCR names must be lower case), each step gets its own $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY
file like on a real runner, and the registry is a real one on loopback that accepts GITHUB_ACTOR /
GITHUB_TOKEN. Then the step outputs are read back with the runner's own parsing rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_inv
from tests.e2e.registry import GIT_ENV, Registry, git, kit_repo, remove_image, tiny_image

TAGS = ("1.2.3", "1.2", "1", "latest")


@pytest.fixture
def registry(docker_client, tmp_path: Path):
    reg = Registry(tmp_path / "registry", user="github-actions-bot").start()
    yield reg
    reg.stop()


def parse_github_output(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value` lines, or `name<<DELIMITER` ... `DELIMITER`.

    Strict on purpose: an unterminated heredoc or a line that is neither form fails the test, where the
    runner would fail the step.
    """
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    assert lines[-1] == "", "GITHUB_OUTPUT must end with a newline"
    i = 0
    while i < len(lines) - 1:
        line = lines[i]
        i += 1
        eq, heredoc = line.find("="), line.find("<<")
        if eq > 0 and (heredoc < 0 or eq < heredoc):
            outputs[line[:eq]] = line[eq + 1 :]
            continue
        assert heredoc > 0, f"malformed GITHUB_OUTPUT line {line!r}"
        name, delimiter = line[:heredoc], line[heredoc + 2 :]
        assert delimiter, f"empty heredoc delimiter for {name}"
        assert delimiter in lines[i:], f"heredoc {name} is never closed"
        end = lines.index(delimiter, i)
        outputs[name] = "\n".join(lines[i:end])
        i = end + 1
    return outputs


def publish_job_steps() -> list[dict]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text())
    return workflow["jobs"]["publish"]["steps"]


def test_the_publish_job_pushes_with_the_job_token() -> None:
    """What this replay assumes about the workflow: `inv push` runs there with GITHUB_TOKEN in its env."""
    push = [s for s in publish_job_steps() if s.get("run", "").strip() == "inv push"]
    assert len(push) == 1, "the publish job must run `inv push` exactly once"
    assert "GITHUB_TOKEN" in push[0].get("env", {})


def test_publish_job_replay(tmp_path: Path, registry: Registry) -> None:
    repo = kit_repo(tmp_path / "repo", tag="v1.2.3")
    sha = git(repo, "rev-parse", "HEAD")
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    runner_env = {
        **GIT_ENV,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF": "refs/tags/v1.2.3",
        "GITHUB_REF_NAME": "v1.2.3",
        "GITHUB_SHA": sha,
        "GITHUB_REPOSITORY": "acme/forum",
        "GITHUB_REPOSITORY_OWNER": "Acme",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_ACTOR": registry.user,
        "DOCKER_CONFIG": str(docker_config),
        # The one deliberate difference from GHCR: the registry is on loopback.
        "ATBB_IMAGE_REGISTRY": registry.host,
    }
    repository = f"{registry.host}/acme/atbb"
    refs = [f"{repository}:{t}" for t in TAGS]

    def step(name: str, *args: str, secrets: dict[str, str] | None = None):
        files = {"GITHUB_OUTPUT": tmp_path / f"{name}.output", "GITHUB_STEP_SUMMARY": tmp_path / f"{name}.summary"}
        for path in files.values():
            path.touch()
        env = {**runner_env, **{k: str(v) for k, v in files.items()}, **(secrets or {})}
        proc = run_inv(*args, cwd=repo, env=env, timeout=300)
        assert proc.returncode == 0, f"step {name} failed:\n{proc.stderr}"
        return proc, parse_github_output(files["GITHUB_OUTPUT"].read_text()), files["GITHUB_STEP_SUMMARY"].read_text()

    try:
        # Step: inv tags
        proc, outputs, summary = step("tags", "tags")
        assert proc.stdout.splitlines() == refs
        assert outputs["tags"].splitlines() == refs
        assert outputs["version"] == "1.2.3"
        labels = dict(line.split("=", 1) for line in outputs["labels"].splitlines())
        assert labels["org.opencontainers.image.source"] == "https://github.com/acme/forum"
        assert labels["org.opencontainers.image.revision"] == sha
        assert labels["org.opencontainers.image.version"] == "1.2.3"
        assert outputs["publishable"] == "true"
        assert outputs["repository"] == repository
        assert "| Tag | Moves with later builds |" in summary
        assert "| `1.2.3` | no |" in summary and "| `latest` | yes |" in summary

        # Step: inv image. Replaced by tagging a tiny imported image as the primary reference: a full
        # build takes minutes and is covered by the image tests; this replay is about publishing.
        tiny_image(refs[0], config=docker_config)

        # Step: inv push, with the job token as the workflow passes it.
        proc, outputs, summary = step("push", "push", secrets={"GITHUB_TOKEN": registry.password})
        digest = proc.stdout.strip()
        assert outputs == {"digest": digest}
        assert digest.startswith("sha256:") and len(digest) == 71
        assert f"Digest `{digest}`" in summary
        assert "| Tag | Digest |" in summary
        assert [ln.split("`")[1] for ln in summary.splitlines() if ln.startswith("| `")] == list(TAGS)
        assert registry.password not in proc.stdout + proc.stderr
        assert {t: registry.digest("acme/atbb", t) for t in TAGS} == dict.fromkeys(TAGS, digest)
    finally:
        remove_image(*refs, config=docker_config)
