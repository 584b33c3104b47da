"""Tags and labels: a table of (ref, versions, config) -> expected tags, then the edges one by one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from atbb_kit.core.context import BuildContext
from atbb_kit.core.errors import ConfigError, ReleaseError
from atbb_kit.core.tags import (
    LABEL_PREFIX,
    MAX_TAG_LENGTH,
    compute,
    format_for_github,
    github_output_lines,
    sanitize_tag,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
CREATED = "2025-03-01T12:00:00Z"
ONLY = "only the default branch (main) and version tags (vX.Y.Z) publish"


@dataclass(frozen=True)
class Image:
    registry: str = "ghcr.io"
    owner: str = ""
    name: str = "atbb"
    title: str = "atBB"
    description: str = "A forum built on the AT Protocol"
    licenses: str = "MIT"


@dataclass(frozen=True)
class Release:
    default_branch: str = "main"
    sha_length: int = 7


def context(ref: str | None, **changes: Any) -> BuildContext:
    base = BuildContext(ref=ref, sha=SHA, repository="acme/atbb", owner="acme")
    return replace(base, **changes)


@dataclass(frozen=True)
class Case:
    id: str
    ref: str | None
    tags: tuple[str, ...]
    versions: tuple[str, ...] = ()
    image: dict[str, Any] = field(default_factory=dict)
    release: dict[str, Any] = field(default_factory=dict)
    ctx: dict[str, Any] = field(default_factory=dict)
    repository: str = "ghcr.io/acme/atbb"
    # None: publishable; otherwise a fragment of the reason.
    blocked: str | None = None


LONG = "feature/" + "x" * 200
CASES = [
    # The default branch.
    Case("main-push", "refs/heads/main", ("main-0123456", "latest")),
    Case("main-sha-12", "refs/heads/main", ("main-0123456789ab", "latest"), release={"sha_length": 12}),
    Case("main-sha-40", "refs/heads/main", (f"main-{SHA}", "latest"), release={"sha_length": 40}),
    Case("default-branch-trunk", "refs/heads/trunk", ("trunk-0123456", "latest"), release={"default_branch": "trunk"}),
    Case(
        "main-when-default-is-trunk",
        "refs/heads/main",
        ("main-0123456",),
        release={"default_branch": "trunk"},
        blocked="branch main is not the default branch",
    ),
    # Other branches: local only, names made registry-safe.
    Case("branch", "refs/heads/feature/login", ("feature-login-0123456",), blocked=ONLY),
    Case("branch-uppercase", "refs/heads/Feature/UI", ("Feature-UI-0123456",), blocked=ONLY),
    Case("branch-sha-length", "refs/heads/dev", ("dev-0123456789",), release={"sha_length": 10}, blocked=ONLY),
    Case("branch-long", f"refs/heads/{LONG}", ("feature-" + "x" * 112 + "-0123456",), blocked=ONLY),
    Case(
        "branch-long-sha-40",
        f"refs/heads/{LONG}",
        (("feature-" + "x" * 200)[:87] + f"-{SHA}",),
        release={"sha_length": 40},
        blocked=ONLY,
    ),
    Case("branch-leading-dots-dashes", "refs/heads/..--hotfix", ("hotfix-0123456",), blocked=ONLY),
    Case("branch-unicode-accents", "refs/heads/fix/über-straße", ("fix-uber-stra-e-0123456",), blocked=ONLY),
    Case("branch-unicode-only", "refs/heads/日本語", ("branch-0123456",), blocked=ONLY),
    Case("branch-symbols", "refs/heads/a@b#c!!d", ("a-b-c-d-0123456",), blocked=ONLY),
    Case("branch-dash-runs", "refs/heads/a---b__c..d", ("a-b__c..d-0123456",), blocked=ONLY),
    # Pull requests.
    Case("pr-merge", "refs/pull/12/merge", ("pr-12",), blocked="pull request #12 builds are not published"),
    Case("pr-head", "refs/pull/7/head", ("pr-7",), blocked=ONLY),
    Case(
        "pr-target-event",
        "refs/heads/main",
        ("main-0123456", "latest"),
        ctx={"event": "pull_request_target"},
        blocked="pull_request_target",
    ),
    # Stable releases and the never-move-back rule.
    Case("release-first", "refs/tags/v1.2.3", ("1.2.3", "1.2", "1", "latest"), versions=("v1.2.3",)),
    Case(
        "release-after-older",
        "refs/tags/v1.2.3",
        ("1.2.3", "1.2", "1", "latest"),
        versions=("v0.9.0", "v1.1.0", "v1.2.2", "v1.2.3"),
    ),
    Case("release-without-v", "refs/tags/1.2.3", ("1.2.3", "1.2", "1", "latest"), versions=("1.2.3",)),
    Case("release-newer-minor-exists", "refs/tags/v1.2.5", ("1.2.5", "1.2"), versions=("v1.2.4", "v1.3.0")),
    Case("release-newer-patch-exists", "refs/tags/v1.2.5", ("1.2.5",), versions=("v1.2.6", "v1.3.0")),
    Case("release-newer-major-exists", "refs/tags/v1.2.5", ("1.2.5", "1.2", "1"), versions=("v2.0.0",)),
    Case(
        "release-newer-only-prereleases",
        "refs/tags/v1.2.3",
        ("1.2.3", "1.2", "1", "latest"),
        versions=("v1.3.0-rc.1", "v2.0.0-beta"),
    ),
    Case(
        "release-ignores-invalid-known-tags",
        "refs/tags/v1.2.3",
        ("1.2.3", "1.2", "1", "latest"),
        versions=("v9.9", "vnext", "v1.2.0"),
    ),
    Case("release-newer-without-v", "refs/tags/v1.2.3", ("1.2.3",), versions=("1.2.4",)),
    Case("release-zero-major", "refs/tags/v0.3.1", ("0.3.1", "0.3", "latest"), versions=("v0.3.0",)),
    Case("release-zero-major-older-line", "refs/tags/v0.3.1", ("0.3.1", "0.3"), versions=("v0.4.0",)),
    Case("release-zero-zero", "refs/tags/v0.0.1", ("0.0.1", "0.0", "latest")),
    Case("release-build-metadata", "refs/tags/v1.2.3+build.5", ("1.2.3", "1.2", "1", "latest"), versions=("v1.2.2",)),
    Case(
        "release-same-version-other-build",
        "refs/tags/v1.2.3+b2",
        ("1.2.3", "1.2", "1", "latest"),
        versions=("v1.2.3+b1",),
    ),
    # Prereleases: only their own tag.
    Case("prerelease", "refs/tags/v1.2.3-rc.1", ("1.2.3-rc.1",), versions=("v1.2.2",)),
    Case("prerelease-no-stable-yet", "refs/tags/v0.1.0-alpha", ("0.1.0-alpha",)),
    Case("prerelease-build-metadata", "refs/tags/v2.0.0-beta.2+exp.sha.5114f85", ("2.0.0-beta.2",)),
    # Other refs.
    Case("tag-not-a-version", "refs/tags/nightly", ("nightly-0123456",), blocked="tag nightly is not a version tag"),
    Case("tag-v-word", "refs/tags/very-good", ("very-good-0123456",), blocked=ONLY),
    Case("detached", None, ("sha-0123456",), blocked="HEAD is detached"),
    Case("unknown-ref", "refs/remotes/origin/x", ("remotes-origin-x-0123456",), blocked="neither a branch nor a tag"),
    # Where the image goes.
    Case(
        "owner-from-config",
        "refs/heads/main",
        ("main-0123456", "latest"),
        image={"owner": "Octo-Org"},
        repository="ghcr.io/octo-org/atbb",
    ),
    Case(
        "owner-config-beats-github",
        "refs/heads/main",
        ("main-0123456", "latest"),
        image={"owner": "other"},
        ctx={"owner": "acme"},
        repository="ghcr.io/other/atbb",
    ),
    Case(
        "owner-from-github-uppercase",
        "refs/heads/main",
        ("main-0123456", "latest"),
        ctx={"owner": "AcMe"},
        repository="ghcr.io/acme/atbb",
    ),
    Case(
        "owner-from-repository",
        "refs/heads/main",
        ("main-0123456", "latest"),
        ctx={"owner": None, "repository": "Org/repo"},
        repository="ghcr.io/org/atbb",
    ),
    Case(
        "registry-and-name-uppercase",
        "refs/heads/main",
        ("main-0123456", "latest"),
        image={"registry": "GHCR.IO", "name": "AtBB"},
    ),
    Case(
        "registry-trailing-slash",
        "refs/heads/main",
        ("main-0123456", "latest"),
        image={"registry": "registry.example.com:5000/"},
        repository="registry.example.com:5000/acme/atbb",
    ),
    Case(
        "registry-empty-docker-hub",
        "refs/heads/main",
        ("main-0123456", "latest"),
        image={"registry": ""},
        repository="acme/atbb",
    ),
    Case(
        "owner-unknown",
        "refs/heads/main",
        ("main-0123456", "latest"),
        ctx={"owner": None, "repository": None},
        repository="atbb",
        blocked="image owner unknown — set image.owner in atbb.yaml or ATBB_IMAGE_OWNER",
    ),
    # A dirty tree blocks only local publishing.
    Case(
        "dirty-local",
        "refs/heads/main",
        ("main-0123456", "latest"),
        ctx={"dirty": True},
        blocked="working tree has uncommitted changes — commit or stash them before pushing",
    ),
    Case(
        "dirty-in-actions-ignored",
        "refs/heads/main",
        ("main-0123456", "latest"),
        ctx={"dirty": True, "in_actions": True},
    ),
    Case(
        "dirty-release",
        "refs/tags/v1.0.0",
        ("1.0.0", "1.0", "1", "latest"),
        ctx={"dirty": True, "changes": ("a.txt",)},
        blocked="(changed: a.txt)",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_tag_table(case: Case) -> None:
    ctx = context(case.ref, versions=case.versions, **case.ctx)
    plan = compute(Image(**case.image), Release(**case.release), ctx, CREATED)
    assert plan.tags == case.tags
    assert plan.repository == case.repository
    assert plan.refs == tuple(f"{case.repository}:{t}" for t in case.tags)
    assert plan.version == case.tags[0]
    if case.blocked is None:
        assert plan.publishable, plan.reason
        assert plan.reason is None
    else:
        assert not plan.publishable
        assert case.blocked in (plan.reason or "")
    for tag in plan.tags:
        assert len(tag) <= MAX_TAG_LENGTH
        assert tag[0] not in ".-"
        assert set(tag) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
        assert "--" not in tag


INVALID = [
    ("v1.2", "tag v1.2 is not a semantic version (expected vMAJOR.MINOR.PATCH, e.g. v1.2.0)", "2 numbers"),
    ("v1", "e.g. v1.0.0", "it has 1 number,"),
    ("v01.2.3", "e.g. v1.2.3", "01 has a leading zero"),
    ("v1.02.3", "e.g. v1.2.3", "02 has a leading zero"),
    ("v1.2.3.4", "not a semantic version", "4 numbers"),
    ("v1.2.3-", "e.g. v1.2.3", "nothing follows the '-'"),
    ("v1.2.3-rc..1", "not a semantic version", "empty or invalid part"),
    ("v1.2.3-rc.01", "not a semantic version", "prerelease number 01 has a leading zero"),
    ("v1.2.3+", "not a semantic version", "build metadata"),
    ("v1..3", "not a semantic version", "a number is missing"),
    ("v1.x.3", "not a semantic version", "'x' is not a number"),
    ("1.2", "tag 1.2 is not a semantic version", "e.g. 1.2.0"),
    ("2024-01-15", "tag 2024-01-15 is not a semantic version", "1 number"),
    ("V1.2.3", "e.g. v1.2.3", "the v must be lower case"),
    ("v1.2.3-" + "a" * 130, "is too long", "at most 128 characters"),
]


@pytest.mark.parametrize(("tag", "message", "why"), INVALID, ids=[t for t, _, _ in INVALID])
def test_invalid_version_tags(tag: str, message: str, why: str) -> None:
    with pytest.raises(ReleaseError) as info:
        compute(Image(), Release(), context(f"refs/tags/{tag}"), CREATED)
    assert message in info.value.what
    assert why in info.value.what
    assert f"git tag -d {tag}" in (info.value.fix or "")


def test_labels_of_a_release() -> None:
    plan = compute(Image(), Release(), context("refs/tags/v1.2.3+build.9"), CREATED)
    assert plan.labels == {
        "org.opencontainers.image.source": "https://github.com/acme/atbb",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.version": "1.2.3",
        "org.opencontainers.image.created": CREATED,
        "org.opencontainers.image.title": "atBB",
        "org.opencontainers.image.description": "A forum built on the AT Protocol",
        "org.opencontainers.image.licenses": "MIT",
    }


def test_labels_follow_server_url_and_skip_empty_values() -> None:
    ctx = context("refs/heads/main", server_url="https://git.corp.example/", repository="Team/Forum")
    plan = compute(Image(description="", licenses=""), Release(), ctx, CREATED)
    assert plan.labels[LABEL_PREFIX + "source"] == "https://git.corp.example/Team/Forum"
    assert plan.labels[LABEL_PREFIX + "version"] == "main-0123456"
    assert LABEL_PREFIX + "description" not in plan.labels
    assert LABEL_PREFIX + "licenses" not in plan.labels


def test_source_label_needs_a_repository() -> None:
    plan = compute(Image(owner="acme"), Release(), context("refs/heads/main", repository=None), CREATED)
    assert LABEL_PREFIX + "source" not in plan.labels
    assert plan.publishable


def test_floating_tags_are_marked() -> None:
    release = compute(Image(), Release(), context("refs/tags/v1.2.3"), CREATED)
    assert release.floating == {"1.2", "1", "latest"}
    assert release.primary == "ghcr.io/acme/atbb:1.2.3"
    assert compute(Image(), Release(), context("refs/heads/main"), CREATED).floating == {"latest"}
    assert compute(Image(), Release(), context("refs/tags/v1.2.3-rc.1"), CREATED).floating == set()


def test_warns_when_no_other_release_is_known() -> None:
    lonely = compute(Image(), Release(), context("refs/tags/v1.2.3", versions=("v1.2.3",)), CREATED)
    assert any("fetch-depth: 0" in w for w in lonely.warnings)
    known = compute(Image(), Release(), context("refs/tags/v1.2.3", versions=("v1.2.3", "v1.0.0")), CREATED)
    assert known.warnings == ()


def test_missing_sha_is_a_release_error_with_the_problem() -> None:
    ctx = BuildContext(ref=None, sha=None, problem="not a git repository (or any of the parent directories): .git")
    with pytest.raises(ReleaseError, match="cannot tell which commit is being built: not a git repository"):
        compute(Image(), Release(), ctx, CREATED)


def test_sha_length_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"release\.sha_length"):
        compute(Image(), Release(sha_length=5), context("refs/heads/main"), CREATED)


def test_require_publishable_lists_every_blocker() -> None:
    ctx = context("refs/heads/dev", owner=None, repository=None, dirty=True)
    plan = compute(Image(), Release(), ctx, CREATED)
    with pytest.raises(ReleaseError) as info:
        plan.require_publishable()
    assert "branch dev is not the default branch" in info.value.what
    assert "image owner unknown" in info.value.what
    assert "uncommitted changes" in info.value.what
    assert "ATBB_IMAGE_OWNER" in (info.value.fix or "")
    compute(Image(), Release(), context("refs/heads/main"), CREATED).require_publishable()


def test_dirty_reason_names_a_few_paths() -> None:
    ctx = context("refs/heads/main", dirty=True, changes=("a", "b", "c", "d", "e"))
    plan = compute(Image(), Release(), ctx, CREATED)
    assert plan.reason is not None
    assert plan.reason.endswith("(changed: a, b, c and 2 more)")


def test_plan_is_frozen() -> None:
    plan = compute(Image(), Release(), context("refs/heads/main"), CREATED)
    with pytest.raises(AttributeError):
        plan.tags = ()  # type: ignore[misc]
    assert list(plan.refs) == ["ghcr.io/acme/atbb:main-0123456", "ghcr.io/acme/atbb:latest"]
    assert plan.publishable is True


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [
        ("feature/x", "", "feature-x"),
        ("-.-x", "", "x"),
        ("x" * 300, "", "x" * 128),
        ("a" * 125 + "/b", "abc", "a" * 124 + "-abc"),
        ("a/" * 100, "abc", "a-" * 61 + "a-abc"),
        ("...", "abc", "build-abc"),
        ("ñandú", "", "nandu"),
    ],
)
def test_sanitize_tag(text: str, suffix: str, expected: str) -> None:
    assert sanitize_tag(text, suffix=suffix) == expected


# GitHub's runner reads $GITHUB_OUTPUT like this: `name=value` lines, or `name<<DELIM` and the lines up to
# one equal to DELIM.
def parse_github_output(text: str) -> dict[str, str]:
    outputs: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        eq, heredoc = line.find("="), line.find("<<")
        if eq >= 0 and (heredoc < 0 or eq < heredoc):
            outputs[line[:eq]] = line[eq + 1 :]
            continue
        name, delimiter = line.split("<<", 1)
        body = []
        for inner in lines:
            if inner == delimiter:
                break
            body.append(inner)
        else:
            raise AssertionError(f"heredoc {delimiter!r} never closed")
        outputs[name] = "\n".join(body)
    return outputs


def test_github_output_single_and_multi_line() -> None:
    outputs = {"version": "1.2.3", "tags": "a:1\na:latest", "empty": "", "trailing": "x\n"}
    text = github_output_lines(outputs)
    assert "version=1.2.3\n" in text
    assert "empty=\n" in text
    assert "tags<<ghadelimiter_" in text
    assert parse_github_output(text) == outputs


def test_github_output_delimiters_are_random() -> None:
    first = github_output_lines({"tags": "a\nb"}).splitlines()[0]
    second = github_output_lines({"tags": "a\nb"}).splitlines()[0]
    assert first != second


def test_github_output_delimiter_never_occurs_in_the_value() -> None:
    hostile = "line one\nEOF\nversion=evil"
    tokens = iter(["EOF", "version", "SAFE"])
    text = github_output_lines({"labels": hostile}, new_delimiter=lambda: next(tokens))
    assert text == f"labels<<SAFE\n{hostile}\nSAFE\n"
    assert parse_github_output(text) == {"labels": hostile}


def test_github_output_gives_up_rather_than_write_an_unsafe_heredoc() -> None:
    with pytest.raises(ValueError, match="no heredoc delimiter"):
        github_output_lines({"x": "a\nb"}, new_delimiter=lambda: "a")


@pytest.mark.parametrize("name", ["", "a=b", "a<<b", "a\nb", "1abc", "a b"])
def test_github_output_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid GitHub output name"):
        github_output_lines({name: "v"})


def test_format_for_github_round_trips() -> None:
    plan = compute(Image(), Release(), context("refs/tags/v1.2.3"), CREATED)
    outputs, summary = format_for_github(plan)
    parsed = parse_github_output(github_output_lines(outputs))
    assert parsed["tags"].split("\n") == list(plan.refs)
    assert parsed["version"] == "1.2.3"
    assert parsed["publishable"] == "true"
    assert dict(line.split("=", 1) for line in parsed["labels"].split("\n")) == plan.labels
    assert "### Image `ghcr.io/acme/atbb`" in summary
    assert "| `1.2.3` | no |" in summary
    assert "| `latest` | yes |" in summary
    assert summary.index("`1.2.3`") < summary.index("`latest`")


def test_summary_says_why_a_plan_is_not_published() -> None:
    plan = compute(Image(), Release(), context("refs/pull/3/merge"), CREATED)
    outputs, summary = format_for_github(plan)
    assert outputs["publishable"] == "false"
    assert "Not published: pull request #3 builds are not published" in summary


# ---------------------------------------------------------------------------------------------------------
# Hints a person pastes into a shell: hostile refs, branch names, paths and image names stay one word each.

# Each passes `git check-ref-format` (refs) or is a legal file name (paths): none may run anything.
HOSTILE = [
    "v1.2.3;touch${IFS}pwned",
    "v1.2.3&&id",
    "v1.2.3|sh",
    "v1.2.3`id`",
    "v1.2.3$(id)",
    "v1.2.3'quote",
    'v1.2.3"dq',
    "v1.2.3>out",
    "v1.2.3#comment",
    "v1.2.3!bang",
    "v1.2.3{a,b}",
    "v1.2.3*",
    "1.2.3;reboot",
]


def _words(command: str) -> list[str]:
    """Split a shell command as a shell would, with operators (&& ; |) as their own tokens."""
    import shlex

    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


@pytest.mark.parametrize("tag", HOSTILE)
def test_delete_tag_hint_quotes_hostile_tags(tag: str) -> None:
    with pytest.raises(ReleaseError) as info:
        compute(Image(), Release(), context(f"refs/tags/{tag}"), CREATED)
    fix = info.value.fix or ""
    command = fix.removeprefix("delete it (").split(") and push a tag like ")[0]
    assert _words(command) == ["git", "tag", "-d", tag, "&&", "git", "push", "origin", f":refs/tags/{tag}"]


@pytest.mark.parametrize("tag", HOSTILE)
def test_too_long_tag_hint_is_quoted_too(tag: str) -> None:
    from atbb_kit.core.tags import delete_tag_command

    long_tag = "v1.2.3-" + "a" * 130 + tag.removeprefix("v1.2.3")
    assert _words(delete_tag_command(long_tag))[3] == long_tag


@pytest.mark.parametrize("branch", [f"feature/{h}" for h in HOSTILE])
def test_hostile_branch_names_reach_no_command(branch: str) -> None:
    plan = compute(Image(owner="o"), Release(), context(f"refs/heads/{branch}"), CREATED)
    assert all(set(t) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") for t in plan.tags)
    for blocker in plan.blockers:
        assert branch not in blocker.fix


HOSTILE_PATHS = [f"/tmp/x {h}/.env" for h in HOSTILE] + ["/tmp/$HOME/.env", "-rf .env", "~/.env"]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_path_hints_are_quoted(path: str, tmp_path) -> None:
    from pathlib import Path

    from atbb_kit.infra import envfile
    from atbb_kit.ops import backup, doctor

    p = Path(path)
    missing = doctor.env_finding(p, False, ())
    first, second = missing.fix.removesuffix(", then edit it").split(" && ")
    assert _words(first) == ["cp", ".env.production.example", path]
    assert _words(second) == ["chmod", "600", path]
    assert _words(doctor.permission_finding(p, True, "readable").fix) == ["chmod", "600", path]
    assert _words(backup.restore_command(p)) == ["inv", "restore", path]
    real = tmp_path / f"d {Path(path).parent.name}"
    real.mkdir()
    env = real / ".env"
    env.write_text("")
    env.chmod(0o644)
    warning = envfile.permission_warning(env) or ""
    assert _words(warning.split("; run: ")[1]) == ["chmod", "600", str(env)]


@pytest.mark.parametrize("image", ["atbb;id", "atbb$(id)", "a b", "atbb`id`:1", "ghcr.io/o/atbb:1|sh", "'x'"])
def test_hostile_image_names_are_refused_before_any_hint(image: str) -> None:
    from atbb_kit.core import flags

    with pytest.raises(ConfigError) as info:
        flags.image_ref("image", image)
    assert image not in (info.value.fix or "")
