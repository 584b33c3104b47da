"""Replay the publish workflow's `inv` steps locally, with the environment GitHub Actions gives them.

The runner's variables are set by hand (a tag push of v1.2.3 to acme/forum; the owner in upper case on
purpose: GHCR names must be lower case), each step gets its own $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY
file like on a real runner, and the registry is a real one on loopback that accepts GITHUB_ACTOR /
GITHUB_TOKEN. Then the step outputs are read back with the runner's own parsing rules.

`test_publish_job_replay` runs every job after the checks in order: the matrix from `inv platforms --json`,
one publish job per platform (push by digest), the release job (the index) and the floating job.

`test_two_publishes_*` replay the queue design: a push to main and a v1.2.3 tag push, each running the
publish job's push step, the release job's and then the floating job's, with the `run:` lines and env
taken from publish.yml.
The floating jobs run one after the other (they share one concurrency group) in both orders, as GitHub
may start them either way; `latest` must end at the highest build both times.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_inv
from tests.e2e.registry import GIT_ENV, Registry, arm64_image, docker, git, kit_repo, remove_image, tiny_image

TAGS = ("1.2.3", "1.2", "1", "latest")
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


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


WORKFLOW = ROOT / ".github" / "workflows" / "publish.yml"
BOTH = "linux/amd64,linux/arm64"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def job_push_step(job: str) -> dict:
    """The one `inv push` / `inv release` step of a job, as publish.yml writes it."""
    steps = [s for s in workflow()["jobs"][job]["steps"] if s.get("run", "").startswith(("inv push", "inv release"))]
    assert len(steps) == 1, f"the {job} job must run `inv push` or `inv release` exactly once"
    return steps[0]


def test_the_publish_jobs_push_with_the_job_token() -> None:
    """What this replay assumes about the workflow: every push runs with GITHUB_TOKEN, and every `run:`
    step of the jobs it replays is one `inv` call."""
    assert job_push_step("publish")["run"] == "inv push --by-digest --digest-file build/digests/"
    assert job_push_step("release")["run"] == "inv release --only immutable --digests-from build/digests/"
    assert job_push_step("floating")["run"] == "inv push --only floating"
    for job in ("publish", "release", "floating"):
        assert job_push_step(job)["env"] == {"GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}
    for name, job in workflow()["jobs"].items():
        for step in job.get("steps", []):
            if "run" in step:
                assert step["run"].split()[0] == "inv", (name, step["run"])


def expand(value: str, matrix: dict[str, str], token: str) -> str:
    """The two kinds of expression the replayed steps' env holds: matrix values and the job token."""
    value = re.sub(r"\$\{\{ matrix\.(\w+) \}\}", lambda m: matrix[m[1]], value)
    return value.replace("${{ secrets.GITHUB_TOKEN }}", token)


def test_publish_job_replay(tmp_path: Path, registry: Registry) -> None:
    """The whole publish workflow after the checks, job by job and step by step in its order: the
    platforms job's matrix, one publish job per matrix entry, the release job, the floating job.

    atbb.yaml lists linux/amd64 only; the runner env sets ATBB_IMAGE_PLATFORMS to both platforms, as if it
    listed linux/arm64 too. Replaced, and only these: `inv image` by a tiny image of the job's platform
    (amd64 by `docker import`, arm64 by a `FROM scratch` BuildKit build: neither runs anything), `inv
    smoke --browser` (covered by the smoke tests), the attestation action (needs GitHub's OIDC) and the
    artifact actions (a folder per artifact, merged the way `merge-multiple` does).
    """
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
        # The deliberate differences from GHCR and this repository's atbb.yaml.
        "ATBB_IMAGE_REGISTRY": registry.host,
        "ATBB_IMAGE_PLATFORMS": BOTH,
    }
    repository = f"{registry.host}/acme/atbb"
    refs = [f"{repository}:{t}" for t in TAGS]
    wf = workflow()
    ran: list[str] = []

    def step(name: str, run: str, env: dict[str, str]):
        files = {"GITHUB_OUTPUT": tmp_path / f"{name}.output", "GITHUB_STEP_SUMMARY": tmp_path / f"{name}.summary"}
        for path in files.values():
            path.touch()
        words = run.split()
        assert words[0] == "inv", run
        ran.append(run)
        proc = run_inv(*words[1:], cwd=repo, env={**runner_env, **env, **{k: str(v) for k, v in files.items()}},
                       timeout=300)  # fmt: skip
        assert proc.returncode == 0, f"step {name} failed:\n{proc.stderr}"
        assert registry.password not in proc.stdout + proc.stderr
        return proc, parse_github_output(files["GITHUB_OUTPUT"].read_text()), files["GITHUB_STEP_SUMMARY"].read_text()

    local: list[str] = []
    artifacts = tmp_path / "artifacts"
    try:
        # Job: platforms. Its output is the publish job's matrix, read back the way `fromJSON` would.
        (matrix_step,) = [s for s in wf["jobs"]["platforms"]["steps"] if "run" in s]
        proc, outputs, _ = step("platforms", matrix_step["run"], {})
        matrix = json.loads(outputs["matrix"])
        assert matrix == json.loads(proc.stdout)
        assert [(m["platform"], m["runner"]) for m in matrix["include"]] == [
            ("linux/amd64", "ubuntu-latest"),
            ("linux/arm64", "ubuntu-24.04-arm"),
        ]

        # Jobs: publish, once per matrix entry, each on a fresh digest folder (its own runner).
        digests = {}
        for entry in matrix["include"]:
            job = wf["jobs"]["publish"]
            job_env = {k: expand(v, entry, registry.password) for k, v in job["env"].items()}
            shutil.rmtree(repo / "build", ignore_errors=True)
            for s in job["steps"]:
                if "run" not in s:
                    continue
                words = s["run"].split()
                if words[1] == "image":  # a tiny image of this platform, tagged like `inv image` tags it
                    local.append(f"atbb-e2e-rel-replay-{entry['slug']}:{uuid.uuid4().hex[:8]}")
                    if entry["platform"] == "linux/arm64":
                        arm64_image(local[-1], tmp_path / "arm64", config=docker_config)
                    else:
                        tiny_image(local[-1], config=docker_config)
                    docker("tag", local[-1], refs[0], config=docker_config)
                    ran.append(s["run"])
                    continue
                if words[1] == "smoke":
                    ran.append(s["run"])
                    continue
                env = {**job_env, **{k: expand(v, entry, registry.password) for k, v in s.get("env", {}).items()}}
                proc, outputs, summary = step(f"publish-{entry['slug']}", s["run"], env)
                digest = proc.stdout.strip()
                assert outputs == {
                    "digest": digest,
                    "platform": entry["platform"],
                    "slug": entry["slug"],
                    "repository": repository,
                }
                assert f"`{digest}`" in summary
                digests[entry["platform"]] = digest
            remove_image(refs[0], config=docker_config)
            # upload-artifact: this job's build/digests/ as digest-<slug>
            shutil.copytree(repo / "build" / "digests", artifacts / f"digest-{entry['slug']}")
        assert registry.digest("acme/atbb", "1.2.3") is None  # nothing tagged yet

        # Job: release. download-artifact with merge-multiple puts every digest file in one folder.
        shutil.rmtree(repo / "build", ignore_errors=True)
        (repo / "build" / "digests").mkdir(parents=True)
        for folder in sorted(artifacts.glob("digest-*")):
            for f in folder.iterdir():
                shutil.copy(f, repo / "build" / "digests" / f.name)
        release = job_push_step("release")
        proc, outputs, summary = step("release", release["run"], {"GITHUB_TOKEN": registry.password})
        index_digest = proc.stdout.strip()
        assert outputs == {"digest": index_digest, "repository": repository}
        assert "| `linux/amd64` |" in summary and "| `linux/arm64` |" in summary
        assert registry.digest("acme/atbb", "1.2.3") == index_digest
        assert registry.digest("acme/atbb", "latest") is None  # the floating job's part

        # Job: floating.
        floating = job_push_step("floating")
        proc, outputs, summary = step("floating", floating["run"], {"GITHUB_TOKEN": registry.password})
        assert outputs == {}
        rows = [ln.split("`")[1:4:2] for ln in summary.splitlines() if ln.startswith("| `")]
        assert rows == [["1.2", "1.2.3"], ["1", "1.2.3"], ["latest", "1.2.3"]]
        assert {t: registry.digest("acme/atbb", t) for t in TAGS} == dict.fromkeys(TAGS, index_digest)
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            urllib.request.Request(
                f"http://{registry.host}/v2/acme/atbb/manifests/latest",
                headers={"Accept": INDEX_TYPE, "Authorization": basic(registry)},
            )
        ) as resp:
            index = json.loads(resp.read())
        assert {m["digest"]: m["platform"]["architecture"] for m in index["manifests"]} == {
            digests["linux/amd64"]: "amd64",
            digests["linux/arm64"]: "arm64",
        }

        # Every run step of the replayed jobs ran, in the workflow's order, and each was an `inv` call.
        expected = [matrix_step["run"]]
        expected += [s["run"] for s in wf["jobs"]["publish"]["steps"] if "run" in s] * len(matrix["include"])
        expected += [release["run"], floating["run"]]
        assert ran == expected
    finally:
        remove_image(*refs, *local, config=docker_config)


def basic(registry: Registry) -> str:
    return "Basic " + base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()


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
    # The publish job's own env, for the matrix entry of atbb.yaml's one platform.
    amd64 = {"platform": "linux/amd64", "slug": "linux-amd64", "runner": "ubuntu-latest"}
    env = {**env, **{k: expand(v, amd64, "") for k, v in workflow()["jobs"][job].get("env", {}).items()}}
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
                # The build (a tiny stand-in image: this replay is about publishing), the push by digest,
                # then the release job that makes the (one-platform) index and its immutable tag.
                shutil.rmtree(repo / "build", ignore_errors=True)
                tiny_image(refs[run], config=docker_config)
                run_job("publish", repo, envs[run], registry, tmp_path, event)
                proc = run_job("release", repo, envs[run], registry, tmp_path, f"{event}-release")
                digests[run] = proc.stdout.strip()
                assert registry.digest("acme/atbb", refs[run].rsplit(":", 1)[1]) == digests[run]
            else:
                run_job(job, repo, envs[run], registry, tmp_path, event)
        assert digests["main"] != digests["tag"]

        expected = digests["tag"] if main_commit == "same-as-tag" else digests["main"]
        assert registry.digest("acme/atbb", "latest") == expected
        # The release lines follow the release, whichever job moved them.
        assert registry.digest("acme/atbb", "1.2") == digests["tag"]
        assert registry.digest("acme/atbb", "1") == digests["tag"]
    finally:
        remove_image(*refs.values(), config=docker_config)
