"""Image tags and OCI labels from the config and a BuildContext. Pure: no git, no clock, no environment.

    ref                        tags, most specific first, `latest` last      published
    refs/heads/<default>       <branch>-<sha>, latest                         yes
    refs/tags/vX.Y.Z           X.Y.Z, X.Y, X, latest (but see below)          yes
    refs/tags/vX.Y.Z-rc.1      X.Y.Z-rc.1                                     yes
    refs/heads/<other>         <branch>-<sha>                                 no, local builds only
    refs/pull/N/merge          pr-N                                           no
    refs/tags/<not a version>  <tag>-<sha>                                    no
    detached, no version tag   sha-<sha>                                      no

Release tags:
- The `v` is optional; build metadata (`+build.5`) is dropped, since `+` cannot appear in a tag.
- Floating tags never move back. `X.Y` is skipped when a newer stable X.Y.* exists, `X` when a newer
  stable X.* exists, `latest` when any newer stable version exists; so patching an old line (v1.2.5
  after v1.3.0) publishes only `1.2.5` and `1.2`. Prereleases never float and never block floating.
- A 0.x release gets no bare major tag: `0` would promise a compatibility 0.x does not make.
- A tag that starts like a version (`v` or `V` + digit, or a digit) but is not semver is an error, not
  a silently local build: someone meant to release. `V1.2.3` is refused too: `git tag --list 'v*'`
  would not see it, so later releases could move floating tags back past it.

Nothing is published from a dirty working tree outside Actions, from a `pull_request_target` run (its
ref is the base branch, its code usually the contributor's), or without a known image owner.

`version` is always the first tag (the immutable one: `main-<sha>`, `1.2.3`, ...), so it can be used
wherever a tag is, and it is what the `org.opencontainers.image.version` label carries.

Every tag is registry-valid: letters and digits stay, accents are stripped (ü becomes u), any other
character outside [A-Za-z0-9_.-] becomes `-`, runs of `-` collapse, no leading `.` or `-`, at most 128
characters, cut from the name so that a `-<sha>` suffix survives.
"""

from __future__ import annotations

import re
import secrets
import shlex
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import semver

from atbb_kit.core.context import BuildContext
from atbb_kit.core.errors import ConfigError, ReleaseError

MAX_TAG_LENGTH = 128
LABEL_PREFIX = "org.opencontainers.image."

_INVALID_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_DASH_RUNS = re.compile(r"-{2,}")
_LOOKS_LIKE_VERSION = re.compile(r"[vV]?[0-9]")
_PULL_REQUEST = re.compile(r"refs/pull/(\d+)/(?:merge|head)")
_IDENTIFIER = re.compile(r"[0-9A-Za-z-]+")
_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


# Read-only properties, so frozen dataclasses and frozen pydantic models both satisfy them.
class ImageSettings(Protocol):
    @property
    def registry(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def licenses(self) -> str: ...


class ReleaseSettings(Protocol):
    @property
    def default_branch(self) -> str: ...
    @property
    def sha_length(self) -> int: ...


@dataclass(frozen=True)
class Blocker:
    """Why a plan may not be pushed, and what to do about it."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what} — {self.fix}"


OWNER_UNKNOWN = Blocker("image owner unknown", "set image.owner in atbb.yaml or ATBB_IMAGE_OWNER")


@dataclass(frozen=True)
class TagPlan:
    # <registry>/<owner>/<name>, or just <name> when no owner is known (a local-only image).
    repository: str
    tags: tuple[str, ...]
    version: str
    # hash=False: a dict is not hashable, and equal plans have equal tags anyway.
    labels: dict[str, str] = field(hash=False)
    # Tags that are re-pointed by later builds (latest, X.Y, X, pr-N); the rest never change.
    floating: frozenset[str] = frozenset()
    # default-branch, release, prerelease, branch, pull-request, tag, detached or ref.
    kind: str = "branch"
    blockers: tuple[Blocker, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(f"{self.repository}:{tag}" for tag in self.tags)

    @property
    def primary(self) -> str:
        """The immutable reference: what to build, smoke-test and print."""
        return self.refs[0]

    @property
    def publishable(self) -> bool:
        return not self.blockers

    @property
    def reason(self) -> str | None:
        return "; ".join(str(b) for b in self.blockers) or None

    def require_publishable(self) -> None:
        if self.blockers:
            raise ReleaseError(
                "not publishing: " + "; ".join(b.what for b in self.blockers),
                "; ".join(b.fix for b in self.blockers),
            )


def compute(image: ImageSettings, release: ReleaseSettings, ctx: BuildContext, created: str) -> TagPlan:
    """Tags and labels for the build described by `ctx`; raises ReleaseError for a malformed version tag."""
    if not 7 <= release.sha_length <= 40:
        raise ConfigError(f"release.sha_length: expected 7-40, got {release.sha_length}")
    if ctx.sha is None:
        raise ReleaseError(
            f"cannot tell which commit is being built: {ctx.problem or 'no commit sha'}",
            "run inside a git clone that has at least one commit, with git on PATH "
            "(in GitHub Actions, GITHUB_SHA and GITHUB_REF must be set)",
        )
    short = ctx.sha[: release.sha_length]
    only = f"only the default branch ({release.default_branch}) and version tags (vX.Y.Z) publish"
    blockers: list[Blocker] = []
    warnings: list[str] = []
    floating: tuple[str, ...] = ()
    tags: tuple[str, ...]
    ref = ctx.ref

    if ref is None:
        kind, tags = "detached", (f"sha-{short}",)
        blockers.append(Blocker("HEAD is detached and no version tag points at it", only))
    elif ref == f"refs/heads/{release.default_branch}":
        kind, floating = "default-branch", ("latest",)
        tags = (sanitize_tag(release.default_branch, suffix=short, fallback="branch"), "latest")
    elif ref.startswith("refs/heads/"):
        branch = ref.removeprefix("refs/heads/")
        kind, tags = "branch", (sanitize_tag(branch, suffix=short, fallback="branch"),)
        blockers.append(Blocker(f"branch {branch} is not the default branch", only))
    elif ref.startswith("refs/tags/") and _LOOKS_LIKE_VERSION.match(ref.removeprefix("refs/tags/")):
        name = ref.removeprefix("refs/tags/")
        version = parse_version_tag(name)
        known = [v for v in (_lenient_version(t) for t in ctx.versions) if v is not None]
        if version.prerelease:
            kind, tags = "prerelease", (str(version),)
        else:
            kind, floating = "release", release_floating_tags(version, known)
            tags = (str(version), *floating)
            if not any(not k.prerelease and k != version for k in known):
                warnings.append(
                    f"no release tags other than {name} are known here; if the repository has others, "
                    "fetch them (git fetch --tags; actions/checkout with fetch-depth: 0) or `latest` "
                    "may move to an older version"
                )
    elif ref.startswith("refs/tags/"):
        name = ref.removeprefix("refs/tags/")
        kind, tags = "tag", (sanitize_tag(name, suffix=short, fallback="tag"),)
        blockers.append(Blocker(f"tag {name} is not a version tag", only))
    elif match := _PULL_REQUEST.fullmatch(ref):
        kind, tags = "pull-request", (f"pr-{match[1]}",)
        floating = tags
        blockers.append(Blocker(f"pull request #{match[1]} builds are not published", only))
    else:
        kind, tags = "ref", (sanitize_tag(ref.removeprefix("refs/"), suffix=short, fallback="ref"),)
        blockers.append(Blocker(f"{ref} is neither a branch nor a tag", only))

    # pull_request_target runs on the base branch's ref but usually builds the contributor's code.
    if ctx.event == "pull_request_target" and not blockers:
        blockers.append(Blocker("pull_request_target builds are not published", only))

    owner = (image.owner or "").strip() or ctx.owner
    if not owner and ctx.repository:
        owner = ctx.repository.split("/", 1)[0]
    if owner:
        repository = "/".join(p.strip().strip("/").lower() for p in (image.registry, owner, image.name) if p)
    else:
        repository = image.name.lower()
        blockers.append(OWNER_UNKNOWN)

    if ctx.dirty and not ctx.in_actions:
        blockers.append(Blocker("working tree has uncommitted changes", _dirty_fix(ctx.changes)))

    return TagPlan(
        repository=repository,
        tags=tags,
        version=tags[0],
        labels=_labels(image, ctx, version=tags[0], created=created),
        floating=frozenset(floating),
        kind=kind,
        blockers=tuple(blockers),
        warnings=tuple(warnings),
    )


def release_floating_tags(version: semver.Version, known: Iterable[semver.Version]) -> tuple[str, ...]:
    """The floating tags a stable release may move, given the versions already released."""
    newer = [k for k in known if not k.prerelease and k > version]
    tags = []
    if not any(k.major == version.major and k.minor == version.minor for k in newer):
        tags.append(f"{version.major}.{version.minor}")
    if version.major > 0 and not any(k.major == version.major for k in newer):
        tags.append(str(version.major))
    if not newer:
        tags.append("latest")
    return tuple(tags)


def parse_version_tag(name: str) -> semver.Version:
    """A version tag (`v` optional) as semver without build metadata, or a ReleaseError saying why not."""
    prefixed = name.startswith(("v", "V"))
    text = name[1:] if prefixed else name
    try:
        version = semver.Version.parse(text).replace(build=None)
    except ValueError:
        why, example = _semver_problem(text)
    else:
        if len(str(version)) > MAX_TAG_LENGTH:
            raise ReleaseError(
                f"tag {name} is too long: an image tag has at most {MAX_TAG_LENGTH} characters",
                f"delete it ({delete_tag_command(name)}) and push a shorter one",
            )
        if not name.startswith("V"):
            return version
        # `git tag --list 'v*'` is case-sensitive: a V tag would be invisible to later releases.
        why, example = "the v must be lower case", str(version)
    example = ("v" if prefixed else "") + example
    raise ReleaseError(
        f"tag {name} is not a semantic version (expected vMAJOR.MINOR.PATCH, e.g. {example}): {why}",
        f"delete it ({delete_tag_command(name)}) and push a tag like {shlex.quote(example)}",
    )


def delete_tag_command(name: str) -> str:
    """The commands that delete tag `name` here and on origin, quoted for pasting into a shell: a tag
    may hold ; $ ( ) and more (`v1.2.3;touch${IFS}pwned` passes git check-ref-format)."""
    return " && ".join(
        (shlex.join(["git", "tag", "-d", name]), shlex.join(["git", "push", "origin", f":refs/tags/{name}"]))
    )


def _lenient_version(name: str) -> semver.Version | None:
    try:
        return semver.Version.parse(name.removeprefix("v")).replace(build=None)
    except ValueError:
        return None  # an old malformed tag must not block every later release


def _semver_problem(text: str) -> tuple[str, str]:
    """Why `text` (without its v) is not semver, and a corrected example where one is obvious."""
    rest, plus, build = text.partition("+")
    core, dash, pre = rest.partition("-")
    parts = core.split(".")
    numeric = all(p.isascii() and p.isdigit() for p in parts)
    example = "1.2.0"
    if numeric:
        example = ".".join(str(int(p)) for p in [*parts, "0", "0"][:3])
    if not numeric:
        bad = next(p for p in parts if not (p.isascii() and p.isdigit()))
        return (f"{bad!r} is not a number" if bad else "a number is missing between dots"), example
    if len(parts) != 3:
        count = f"{len(parts)} number" + ("s" if len(parts) > 1 else "")
        return f"it has {count}, MAJOR.MINOR.PATCH needs exactly 3", example
    if zero := next((p for p in parts if len(p) > 1 and p.startswith("0")), None):
        return f"{zero} has a leading zero", example
    if dash and not pre:
        return "nothing follows the '-' (a prerelease looks like -rc.1)", example
    for ident in pre.split(".") if dash else ():
        if not _IDENTIFIER.fullmatch(ident):
            return f"prerelease {pre!r} has an empty or invalid part (use [0-9A-Za-z-] between dots)", example
        if ident.isdigit() and len(ident) > 1 and ident.startswith("0"):
            return f"prerelease number {ident} has a leading zero", example
    if plus and not all(_IDENTIFIER.fullmatch(i) for i in build.split(".")):
        return "build metadata after '+' is empty or invalid (use [0-9A-Za-z-] between dots)", example
    return "it does not follow semver.org", example


def sanitize_tag(text: str, *, suffix: str = "", fallback: str = "build") -> str:
    """A registry-valid tag from arbitrary text (a branch name), keeping `-<suffix>` intact."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    base = _DASH_RUNS.sub("-", _INVALID_TAG_CHARS.sub("-", stripped)).lstrip(".-")
    if not suffix:
        return base[:MAX_TAG_LENGTH].rstrip("-") or fallback
    base = base[: MAX_TAG_LENGTH - len(suffix) - 1].rstrip("-") or fallback
    return f"{base}-{suffix}"


def _dirty_fix(changes: tuple[str, ...]) -> str:
    fix = "commit or stash them before pushing"
    if changes:
        shown = ", ".join(changes[:3]) + (f" and {len(changes) - 3} more" if len(changes) > 3 else "")
        fix += f" (changed: {shown})"
    return fix


def _labels(image: ImageSettings, ctx: BuildContext, *, version: str, created: str) -> dict[str, str]:
    # GHCR links a package to the repository named by `source`; it must be the forge URL, not the image.
    source = f"{ctx.server_url.rstrip('/')}/{ctx.repository}" if ctx.repository else ""
    values = {
        "source": source,
        "revision": ctx.sha or "",
        "version": version,
        "created": created,
        "title": image.title,
        "description": image.description,
        "licenses": image.licenses,
    }
    # An empty label says nothing and some registries show it as a blank field.
    return {LABEL_PREFIX + key: value for key, value in values.items() if value}


def format_for_github(plan: TagPlan) -> tuple[dict[str, str], str]:
    """Step outputs (for $GITHUB_OUTPUT, see `github_output_lines`) and a $GITHUB_STEP_SUMMARY table."""
    outputs = {
        "tags": "\n".join(plan.refs),
        "version": plan.version,
        "labels": "\n".join(f"{k}={v}" for k, v in plan.labels.items()),
        "repository": plan.repository,
        "publishable": "true" if plan.publishable else "false",
    }
    lines = [f"### Image `{plan.repository}`", "", "| Tag | Moves with later builds |", "| --- | --- |"]
    lines += [f"| `{tag}` | {'yes' if tag in plan.floating else 'no'} |" for tag in plan.tags]
    lines.append("")
    revision = plan.labels.get(LABEL_PREFIX + "revision", "")
    lines.append(f"Version `{plan.version}`, commit `{revision[:12]}`.")
    if plan.publishable:
        lines.append("Publishable.")
    else:
        lines.append("Not published: " + _md_escape(plan.reason or ""))
    lines += [f"> warning: {_md_escape(w)}" for w in plan.warnings]
    return outputs, "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _random_delimiter() -> str:
    return f"ghadelimiter_{secrets.token_hex(16)}"


def github_output_lines(outputs: Mapping[str, str], *, new_delimiter: Callable[[], str] = _random_delimiter) -> str:
    """Text to append to $GITHUB_OUTPUT. Multi-line values use `name<<DELIM` heredocs; the delimiter
    is random and checked against the value, so no value (say, a label) can end the heredoc early and
    inject further outputs."""
    chunks = []
    for name, value in outputs.items():
        if not _OUTPUT_NAME.fullmatch(name):
            raise ValueError(f"invalid GitHub output name {name!r}")
        if "\n" not in value and "\r" not in value:
            chunks.append(f"{name}={value}\n")
            continue
        delimiter = new_delimiter()
        for _ in range(100):
            if delimiter not in value:
                break
            delimiter = new_delimiter()
        else:
            raise ValueError(f"no heredoc delimiter found that does not occur in output {name!r}")
        chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(chunks)
