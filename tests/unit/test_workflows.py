"""The GitHub workflows, read as data: triggers, permissions, where secrets may appear, what each job runs.

The workflows are the one part of the kit that cannot run here, so their promises are pinned as tests:
every job is setup + `inv` calls naming real tasks and flags; the PR checks hold no secret and only read;
publish reuses the checks, smoke-tests before it pushes, and is the only place a token is used.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from atbb_kit.commands.pnpm import PR_SUITE
from atbb_kit.core.config import load_config
from atbb_kit.tasks import namespace
from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
PUBLISH = WORKFLOWS / "publish.yml"
SETUP = ROOT / ".github" / "actions" / "setup" / "action.yml"
SETUP_REF = "./.github/actions/setup"

# The only commands a `run:` step may hold besides `inv ...`: installing what the `inv` calls need.
SETUP_COMMANDS = (
    "python -m pip install -e '.[test]'",
    "pnpm install --frozen-lockfile",
    "sh scripts/install-lint-tools.sh",
    # `inv smoke --browser` needs Chromium; GitHub's Ubuntu images carry it, elsewhere Debian's package.
    "command -v chromium || command -v chromium-browser || command -v google-chrome || "
    "command -v google-chrome-stable || (sudo apt-get update -q && sudo apt-get install -y -q chromium)",
)
# Tasks the workflows call that are planned but not built yet; each is reported as a skip until it lands.
PENDING_TASKS: dict[str, str] = {}
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@(v[0-9]+|[0-9a-f]{40})$")
# The current major of every action, all on the Node 24 runtime (GitHub forces Node 20 actions onto Node 24
# since June 2026 and then removes Node 20). Dependabot groups their major updates into one pull request
# (.github/dependabot.yml, github-actions-major); it then fails here, in one place, until this table moves.
CURRENT_MAJORS = {
    "actions/checkout": "v6",
    "actions/setup-python": "v6",
    "actions/setup-node": "v6",
    "pnpm/action-setup": "v6",
    "docker/setup-buildx-action": "v4",
    "crazy-max/ghaction-github-runtime": "v4",
    "actions/upload-artifact": "v7",
    "actions/download-artifact": "v8",
    "actions/attest-build-provenance": "v4",
}
# The one concurrency group every run that moves a floating tag (X.Y, X, latest) shares.
FLOATING_GROUP = "publish-floating-tags"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _on(wf: dict) -> dict:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    triggers = wf.get("on", wf.get(True))
    return triggers if isinstance(triggers, dict) else {t: None for t in ([triggers] if triggers else [])}


@pytest.fixture(scope="module")
def ci() -> dict:
    return _load(CI)


@pytest.fixture(scope="module")
def publish() -> dict:
    return _load(PUBLISH)


@pytest.fixture(scope="module")
def setup_action() -> dict:
    return _load(SETUP)


@pytest.fixture(scope="module")
def cfg():
    return load_config(ROOT / "atbb.yaml")


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _runs(job: dict) -> list[str]:
    return [s["run"].strip() for s in _steps(job) if "run" in s]


def _inv_calls(wf: dict) -> list[tuple[str, str, list[str]]]:
    """(job, task, args) for every `inv` step of every job."""
    out = []
    for name, job in wf["jobs"].items():
        for run in _runs(job):
            words = shlex.split(run)
            if words and words[0] == "inv":
                out.append((name, words[1], words[2:]))
    return out


def _uses(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_uses(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_uses(item))
    return found


def _task_flags(task_name: str) -> set[str]:
    flags = set()
    for arg in namespace[task_name].get_arguments():
        for name in arg.names:
            flags.add(f"--{name}" if len(name) > 1 else f"-{name}")
            if arg.kind is bool and len(name) > 1:
                flags.add(f"--no-{name}")
    return flags


# --- every job is setup + inv ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CI, PUBLISH], ids=["ci", "publish"])
def test_every_run_step_is_one_inv_call(path):
    wf = _load(path)
    for name, job in wf["jobs"].items():
        for run in _runs(job):
            assert "\n" not in run, f"{path.name} {name}: one command per step, got {run!r}"
            assert shlex.split(run)[0] == "inv", f"{path.name} {name}: {run!r} is not an `inv` call"


def test_setup_action_only_installs(setup_action):
    steps = setup_action["runs"]["steps"]
    assert setup_action["runs"]["using"] == "composite"
    for step in steps:
        if "run" in step:
            assert step["run"].strip() in SETUP_COMMANDS, step["run"]
    # The monorepo is installed exactly as locked.
    assert any(s.get("run", "").strip() == "pnpm install --frozen-lockfile" for s in steps)


def test_every_inv_call_names_a_task_and_flags_that_exist(ci, publish):
    known = set(namespace.task_names)
    calls = [("ci", *c) for c in _inv_calls(ci)] + [("publish", *c) for c in _inv_calls(publish)]
    assert calls
    pending = set()
    for wf, job, task, args in calls:
        if task not in known:
            assert task in PENDING_TASKS, f"{wf}.yml job {job}: `inv {task}` is not a task ({sorted(known)})"
            pending.add(task)
            continue
        flags = _task_flags(task)
        for arg in args:
            if arg.startswith("-"):
                assert arg.split("=", 1)[0] in flags, f"{wf}.yml job {job}: inv {task} has no {arg}"
    if pending:
        pytest.skip("; ".join(PENDING_TASKS[t] for t in sorted(pending)) + " — every other call was checked")


def test_jobs_with_inv_calls_check_out_and_set_up_first(ci, publish):
    for wf in (ci, publish):
        for name, job in wf["jobs"].items():
            steps = _steps(job)
            if not any("run" in s for s in steps):
                continue
            uses = [s.get("uses", "") for s in steps]
            checkout = next(i for i, u in enumerate(uses) if u.startswith("actions/checkout@"))
            setup = uses.index(SETUP_REF)
            first_run = next(i for i, s in enumerate(steps) if "run" in s)
            assert checkout < setup < first_run, name


# --- ci.yml ---------------------------------------------------------------------------------------------


def test_ci_triggers(ci, cfg):
    on = _on(ci)
    assert set(on) == {"pull_request", "push", "workflow_call"}
    # main is published (and checked) by publish.yml; checking it here too would run everything twice.
    assert on["push"] == {"branches-ignore": [cfg.release.default_branch]}


def test_ci_only_reads(ci):
    assert ci["permissions"] == {"contents": "read"}
    for name, job in ci["jobs"].items():
        assert job.get("permissions", {"contents": "read"}) == {"contents": "read"}, name


def test_ci_cancels_superseded_runs_but_never_a_publishing_one(ci):
    """PRs and branch pushes cancel their older run; a run publish.yml calls (default branch, tags) has a
    group of its own commit and is never cancelled, or that commit would never get its image."""
    group, cancel = ci["concurrency"]["group"], ci["concurrency"]["cancel-in-progress"]
    default = "format('refs/heads/{0}', github.event.repository.default_branch)"
    assert group.startswith("ci-${{ github.ref }}")
    assert f"(github.ref == {default} || startsWith(github.ref, 'refs/tags/')) && format('-{{0}}', github.sha)" in group
    assert cancel == f"${{{{ github.ref != {default} && !startsWith(github.ref, 'refs/tags/') }}}}"


def test_ci_runs_the_same_three_steps_as_inv_ci(ci):
    calls = {job: (task, args) for job, task, args in _inv_calls(ci)}
    assert calls == {"lint": ("lint", []), "test": ("test", ["--suite", PR_SUITE]), "build": ("build", [])}
    # Three parallel jobs: none waits for another.
    assert all("needs" not in job for job in ci["jobs"].values())


def test_ci_builds_no_image(ci):
    text = json.dumps(ci)
    assert "inv image" not in text
    assert "docker/" not in text


# --- publish.yml ----------------------------------------------------------------------------------------


def test_publish_triggers(publish, cfg):
    assert _on(publish) == {"push": {"branches": [cfg.release.default_branch], "tags": ["v*"]}}


def test_publish_reuses_ci_rather_than_copying_it(publish):
    checks = publish["jobs"]["checks"]
    assert checks["uses"] == "./.github/workflows/ci.yml"
    assert "steps" not in checks
    assert "secrets" not in checks  # no `secrets: inherit` into the PR checks
    assert checks["permissions"] == {"contents": "read"}
    assert publish["jobs"]["platforms"]["needs"] in ("checks", ["checks"])
    assert publish["jobs"]["publish"]["needs"] == ["checks", "platforms"]
    assert publish["jobs"]["release"]["needs"] in ("publish", ["publish"])
    assert publish["jobs"]["floating"]["needs"] in ("release", ["release"])
    assert set(publish["jobs"]) == {"checks", "platforms", "publish", "release", "floating"}


ATTEST = "actions/attest-build-provenance@"


def test_publish_permissions_are_only_what_each_job_needs(publish):
    """Read everywhere; packages to push; id-token + attestations only in the jobs that attest."""
    assert publish.get("permissions") == {}
    assert publish["jobs"]["platforms"]["permissions"] == {"contents": "read"}
    assert publish["jobs"]["floating"]["permissions"] == {"contents": "read", "packages": "write"}
    for job in ("publish", "release"):
        assert publish["jobs"][job]["permissions"] == {
            "contents": "read",
            "packages": "write",
            "id-token": "write",
            "attestations": "write",
        }, job
    for name, job in publish["jobs"].items():
        attests = any(s.get("uses", "").startswith(ATTEST) for s in _steps(job))
        assert attests == ("id-token" in job.get("permissions", {})), name


def test_every_pushed_digest_is_attested_right_after_its_push(publish):
    """The per-platform digests (publish) and the index (release), each by the step output that names it,
    pushed to the registry next to the image."""
    for job, step_id, run in (("publish", "push", "inv push --by-digest"), ("release", "release", "inv release")):
        steps = _steps(publish["jobs"][job])
        push = next(i for i, s in enumerate(steps) if s.get("run", "").startswith(run))
        assert steps[push]["id"] == step_id
        attest = steps[push + 1]
        assert attest["uses"].startswith(ATTEST), job
        assert attest["with"] == {
            "subject-name": f"${{{{ steps.{step_id}.outputs.repository }}}}",
            "subject-digest": f"${{{{ steps.{step_id}.outputs.digest }}}}",
            "push-to-registry": True,
        }


def test_the_matrix_comes_from_atbb_yaml(publish):
    platforms = publish["jobs"]["platforms"]
    step = next(s for s in _steps(platforms) if "run" in s)
    assert (step["run"], step["id"]) == ("inv platforms --json", "matrix")
    assert platforms["outputs"] == {"matrix": "${{ steps.matrix.outputs.matrix }}"}
    job = publish["jobs"]["publish"]
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.platforms.outputs.matrix) }}"
    assert job["runs-on"] == "${{ matrix.runner }}"
    # Each job builds, tests and pushes its runner's own platform only.
    assert job["env"] == {"ATBB_IMAGE_PLATFORMS": "${{ matrix.platform }}"}


def test_the_digests_travel_from_the_platform_jobs_to_the_release_job(publish):
    upload = next(s for s in _steps(publish["jobs"]["publish"]) if s.get("with", {}).get("path") == "build/digests/")
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["name"] == "digest-${{ matrix.slug }}"
    download = next(s for s in _steps(publish["jobs"]["release"]) if "download-artifact" in s.get("uses", ""))
    assert download["with"] == {"pattern": "digest-*", "path": "build/digests/", "merge-multiple": True}
    assert _runs(publish["jobs"]["release"]) == ["inv release --only immutable --digests-from build/digests/"]


def test_publish_checks_out_full_history(publish):
    for job in ("publish", "release", "floating"):
        steps = _steps(publish["jobs"][job])
        checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
        assert checkout["with"]["fetch-depth"] == 0, job
        assert checkout["with"]["persist-credentials"] is False, job


def test_publish_builds_then_smoke_tests_then_pushes_only_what_never_moves(publish):
    steps = _steps(publish["jobs"]["publish"])
    order = [shlex.split(s["run"])[1:] for s in steps if "run" in s]
    assert order == [
        ["image", "--cache", "gha"],
        ["smoke", "--browser"],
        ["push", "--by-digest", "--digest-file", "build/digests/"],
    ]
    uses = [s.get("uses", "") for s in steps]
    buildx = next(i for i, u in enumerate(uses) if u.startswith("docker/setup-buildx-action@"))
    first_run = next(i for i, s in enumerate(steps) if "run" in s)
    assert buildx < first_run


def test_publish_smoke_tests_in_chromium_and_keeps_the_screenshots(publish, setup_action):
    """`inv smoke --browser` needs Chromium in the job, and its screenshots (build/smoke/<run id>/) are
    uploaded whatever the smoke test said: after a failure they show what broke."""
    steps = _steps(publish["jobs"]["publish"])
    setup = next(s for s in steps if s.get("uses") == SETUP_REF)
    assert setup["with"] == {"browser": "true"}
    assert setup_action["inputs"]["browser"]["default"] == "false"  # the other jobs need no browser
    chromium = [s for s in setup_action["runs"]["steps"] if s.get("if") == "inputs.browser == 'true'"]
    assert [s["name"] for s in chromium] == ["Install Chromium"]
    assert "apt-get install -y -q chromium" in chromium[0]["run"]
    uploads = [
        i
        for i, s in enumerate(steps)
        if s.get("uses", "").startswith("actions/upload-artifact@") and s["with"]["path"] == "build/smoke/"
    ]
    assert len(uploads) == 1
    upload = steps[uploads[0]]
    assert upload["with"]["name"] == "smoke-screenshots-${{ matrix.slug }}"
    assert upload["with"]["path"] == "build/smoke/"
    assert upload["if"] == "${{ !cancelled() }}"
    # Last: an upload problem never holds back the push, and it still runs after a failed smoke step.
    smoke_step = next(i for i, s in enumerate(steps) if s.get("run", "").startswith("inv smoke"))
    assert smoke_step < uploads[0] == len(steps) - 1
    assert "secrets." not in json.dumps(upload)


def test_secrets_appear_only_in_the_push_steps(ci, publish):
    assert "secrets." not in json.dumps(ci)
    assert "secrets." not in json.dumps(publish["jobs"]["checks"])
    assert "secrets." not in json.dumps(publish["jobs"]["platforms"])
    for name, run in (
        ("publish", "inv push --by-digest --digest-file build/digests/"),
        ("release", "inv release --only immutable --digests-from build/digests/"),
        ("floating", "inv push --only floating"),
    ):
        job = publish["jobs"][name]
        with_secrets = [s for s in _steps(job) if "secrets." in json.dumps(s)]
        assert [s.get("run") for s in with_secrets] == [run]
        assert with_secrets[0]["env"] == {"GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}
        assert "secrets." not in json.dumps({k: v for k, v in job.items() if k != "steps"})


# --- one queue for everything that moves a floating tag ---------------------------------------------------


def _moves_floating_tags(run: str) -> bool:
    """`inv push` and `inv release` move floating tags unless told not to (--only immutable; --by-digest
    pushes no tag at all)."""
    words = shlex.split(run)
    if words[:2] not in (["inv", "push"], ["inv", "release"]) or "--by-digest" in words:
        return False
    return "--only" not in words or words[words.index("--only") + 1] != "immutable"


def test_every_step_that_moves_floating_tags_is_in_the_one_shared_group(publish):
    """Main pushes and tag pushes alike: one group, a constant (no ${{ }}: not per ref, not per run)."""
    assert "concurrency" not in publish  # a workflow-level group would also hold back builds
    movers = [(name, job) for name, job in publish["jobs"].items() if any(_moves_floating_tags(r) for r in _runs(job))]
    assert [name for name, _ in movers] == ["floating"]
    for _, job in movers:
        assert job["concurrency"] == {"group": FLOATING_GROUP, "cancel-in-progress": False}
        assert "${{" not in job["concurrency"]["group"]
        # The floating job does nothing but move tags: the wait in the queue is seconds, not a build.
        assert [shlex.split(r)[1:] for r in _runs(job)] == [["push", "--only", "floating"]]


def test_builds_and_immutable_pushes_are_never_queued_behind_each_other(publish):
    # A group keeps one waiting run and cancels it when a newer one arrives: a build in such a group
    # could lose a commit's image. Only the floating job, which reconciles from the registry, may wait.
    for job in ("checks", "platforms", "publish", "release"):
        assert "concurrency" not in publish["jobs"][job], job


def test_the_floating_job_sets_up_only_the_kit(publish, setup_action):
    setup = next(s for s in _steps(publish["jobs"]["floating"]) if s.get("uses") == SETUP_REF)
    assert setup["with"] == {"node": "false"}
    assert setup_action["inputs"]["node"]["default"] == "true"
    gated = {s["name"] for s in setup_action["runs"]["steps"] if s.get("if") == "inputs.node == 'true'"}
    assert gated == {
        "Set up pnpm",
        "Set up Node.js",
        "Install the monorepo's dependencies",
        "Install the Node-based linters",
    }
    python = [s for s in setup_action["runs"]["steps"] if "if" not in s]
    assert [s.get("uses", s.get("run", "")).split("@")[0] for s in python] == [
        "actions/setup-python",
        "python -m pip install -e '.[test]'",
    ]


# --- both -----------------------------------------------------------------------------------------------


def test_no_pull_request_target_anywhere():
    for path in (CI, PUBLISH):
        assert "pull_request_target" not in _on(_load(path))
        assert "pull_request_target" not in path.read_text()


def test_every_action_is_pinned(ci, publish, setup_action):
    uses = _uses(ci) + _uses(publish) + _uses(setup_action)
    assert uses
    for ref in uses:
        if ref.startswith("./"):
            assert (ROOT / ref).exists(), f"{ref} does not exist in the repository"
            continue
        assert PINNED.match(ref), f"{ref}: pin to a major version (@v4) or a full commit sha"


def test_every_action_is_on_its_current_major(ci, publish, setup_action):
    uses = [u for u in _uses(ci) + _uses(publish) + _uses(setup_action) if not u.startswith("./")]
    seen = {}
    for ref in uses:
        name, _, major = ref.partition("@")
        assert name in CURRENT_MAJORS, f"{ref}: add the action's current major to CURRENT_MAJORS"
        assert major == CURRENT_MAJORS[name], f"{ref}: the current major is {CURRENT_MAJORS[name]}"
        seen[name] = major
    assert seen == CURRENT_MAJORS  # and no stale entry in the table


def test_dependabot_groups_action_updates_majors_included():
    dependabot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    actions = next(u for u in dependabot["updates"] if u["package-ecosystem"] == "github-actions")
    groups = {tuple(g["update-types"]): g["patterns"] for g in actions["groups"].values()}
    assert groups == {("minor", "patch"): ["*"], ("major",): ["*"]}


def test_setup_versions_match_atbb_yaml(setup_action, cfg):
    steps = {s.get("uses", "").split("@")[0]: s.get("with", {}) for s in setup_action["runs"]["steps"]}
    assert str(steps["actions/setup-node"]["node-version"]) == cfg.node.version
    assert str(steps["pnpm/action-setup"]["version"]) == cfg.node.pnpm
    # pnpm must be on PATH before setup-node asks it where the store is (for `cache: pnpm`).
    order = [s.get("uses", "").split("@")[0] for s in setup_action["runs"]["steps"]]
    assert order.index("pnpm/action-setup") < order.index("actions/setup-node")
    assert steps["actions/setup-node"]["cache"] == "pnpm"
    assert steps["actions/setup-python"]["cache"] == "pip"
    assert setup_action["inputs"]["monorepo"]["default"] == cfg.monorepo
    assert (cfg.monorepo_dir() / "pnpm-lock.yaml").is_file()
