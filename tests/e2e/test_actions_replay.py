"""Replay the publish job's `inv` steps locally, with the environment GitHub Actions gives them.

The runner's variables are set by hand (a tag push of v1.2.3 to acme/forum; the owner in upper case on
purpose: GHCR names must be lower case), each step gets its own $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY
file like on a real runner, and the registry is a real one on loopback that accepts GITHUB_ACTOR /
GITHUB_TOKEN. Then the step outputs are read back with the runner's own parsing rules.

`test_two_publishes_*` replay the queue design: a push to main and a v1.2.3 tag push, each running the
publish job's push step and then the floating job's, with the `run:` lines and env taken from publish.yml.
The floating jobs run one after the other (they share one concurrency group) in both orders, as GitHub
may start them either way; `latest` must end at the highest build both times.
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


def job_push_step(job: str) -> dict:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text())
    steps = [s for s in workflow["jobs"][job]["steps"] if s.get("run", "").startswith("inv push")]
    assert len(steps) == 1, f"the {job} job must run `inv push` exactly once"
    return steps[0]


def test_the_publish_jobs_push_with_the_job_token() -> None:
    """What this replay assumes about the workflow: `inv push` runs in both jobs with GITHUB_TOKEN."""
    assert job_push_step("publish")["run"] == "inv push --only immutable"
    assert job_push_step("floating")["run"] == "inv push --only floating"
    for job in ("publish", "floating"):
        assert job_push_step(job)["env"] == {"GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}


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

        # The publish job's push step, then the floating job's, with the job token as the workflow passes it.
        token = {"GITHUB_TOKEN": registry.password}
        proc, outputs, summary = step("push", *job_push_step("publish")["run"].split()[1:], secrets=token)
        digest = proc.stdout.strip()
        assert outputs == {"digest": digest}
        assert digest.startswith("sha256:") and len(digest) == 71
        assert f"Digest `{digest}`" in summary
        assert "| Tag | Digest |" in summary
        assert [ln.split("`")[1] for ln in summary.splitlines() if ln.startswith("| `")] == ["1.2.3"]
        assert registry.password not in proc.stdout + proc.stderr
        proc, outputs, summary = step("floating", *job_push_step("floating")["run"].split()[1:], secrets=token)
        assert proc.stdout == ""
        assert outputs == {}
        rows = [ln.split("`")[1:4:2] for ln in summary.splitlines() if ln.startswith("| `")]
        assert rows == [["1.2", "1.2.3"], ["1", "1.2.3"], ["latest", "1.2.3"]]
        assert registry.password not in proc.stdout + proc.stderr
        assert {t: registry.digest("acme/atbb", t) for t in TAGS} == dict.fromkeys(TAGS, digest)
    finally:
        remove_image(*refs, config=docker_config)


# --- two publishes, one queue -------------------------------------------------------------------------------


def runner_env_for(registry: Registry, docker_config: Path, ref: str, sha: str) -> dict[str, str]:
    return {
        **GIT_ENV,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF": ref,
        "GITHUB_REF_NAME": ref.rsplit("/", 1)[1],
        "GITHUB_SHA": sha,
        "GITHUB_REPOSITORY": "acme/forum",
        "GITHUB_REPOSITORY_OWNER": "acme",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_ACTOR": registry.user,
        "DOCKER_CONFIG": str(docker_config),
        "ATBB_IMAGE_REGISTRY": registry.host,
    }


def run_job(job: str, repo: Path, env: dict[str, str], registry: Registry, tmp_path: Path, name: str):
    """One job's `inv push` step, as publish.yml writes it (its run line and its env, secrets filled in)."""
    step = job_push_step(job)
    secrets = {k: registry.password for k, v in step["env"].items() if v == "${{ secrets.GITHUB_TOKEN }}"}
    files = {"GITHUB_OUTPUT": tmp_path / f"{name}.output", "GITHUB_STEP_SUMMARY": tmp_path / f"{name}.summary"}
    for path in files.values():
        path.touch()
    proc = run_inv(*step["run"].split()[1:], cwd=repo, env={**env, **{k: str(v) for k, v in files.items()},
                   **secrets}, timeout=300)  # fmt: skip
    assert proc.returncode == 0, f"{name} failed:\n{proc.stderr}"
    return proc


SEQUENCES = {
    # Both builds done, then the floating jobs in either order (they share one group: never at once).
    "both-built-main-floats-first": ["main-publish", "tag-publish", "main-floating", "tag-floating"],
    "both-built-tag-floats-first": ["main-publish", "tag-publish", "tag-floating", "main-floating"],
    # One run finishes completely before the other's build is even pushed.
    "main-finishes-first": ["main-publish", "main-floating", "tag-publish", "tag-floating"],
    "tag-finishes-first": ["tag-publish", "tag-floating", "main-publish", "main-floating"],
}


@pytest.mark.parametrize("sequence", list(SEQUENCES))
@pytest.mark.parametrize("main_commit", ["same-as-tag", "after-tag"])
def test_two_publishes_end_with_latest_at_the_highest_build(
    tmp_path: Path, registry: Registry, sequence: str, main_commit: str
) -> None:
    """A push to main and the v1.2.3 tag push, both publishing, their jobs finishing in any order.

    same-as-tag: main and v1.2.3 are one commit, so the release is the highest build: latest = 1.2.3.
    after-tag: main moved one commit past v1.2.3, so its build is newer: latest = main-<sha>.
    """
    repo = kit_repo(tmp_path / "repo", tag=None)
    tag_sha = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1.2.3")
    if main_commit == "after-tag":
        (repo / "CHANGELOG.md").write_text("after 1.2.3\n")
        git(repo, "add", "CHANGELOG.md")
        git(repo, "commit", "-q", "-m", "after 1.2.3")
    main_sha = git(repo, "rev-parse", "HEAD")
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    envs = {
        "main": runner_env_for(registry, docker_config, "refs/heads/main", main_sha),
        "tag": runner_env_for(registry, docker_config, "refs/tags/v1.2.3", tag_sha),
    }
    repository = f"{registry.host}/acme/atbb"
    refs = {"main": f"{repository}:main-{main_sha[:7]}", "tag": f"{repository}:1.2.3"}
    digests: dict[str, str] = {}
    try:
        for event in SEQUENCES[sequence]:
            run, job = event.split("-")
            if job == "publish":
                # The build (a tiny stand-in image: this replay is about publishing), then the push step.
                tiny_image(refs[run], config=docker_config)
            proc = run_job(job, repo, envs[run], registry, tmp_path, event)
            if job == "publish":
                digests[run] = proc.stdout.strip()
                assert registry.digest("acme/atbb", refs[run].rsplit(":", 1)[1]) == digests[run]
        assert digests["main"] != digests["tag"]

        expected = digests["tag"] if main_commit == "same-as-tag" else digests["main"]
        assert registry.digest("acme/atbb", "latest") == expected
        # The release lines follow the release, whichever job moved them.
        assert registry.digest("acme/atbb", "1.2") == digests["tag"]
        assert registry.digest("acme/atbb", "1") == digests["tag"]
    finally:
        remove_image(*refs.values(), config=docker_config)
