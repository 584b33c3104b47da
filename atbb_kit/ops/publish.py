"""Publishing the built image: credentials, push order, registry checks and GitHub outputs.

`inv tags` and `inv push` (atbb_kit/tasks/publish.py) call `print_tags` and `push` here.

`inv tags` prints one full image reference per line on stdout and nothing else there, so scripts can
read it (`for ref in $(inv tags)`); notes go to stderr. `inv push` prints only the pushed manifest digest
on stdout; the commands it runs and one progress line per tag go to stderr.

Decisions:
- Two stages. `immutable`: `docker push` of the tags that never move (1.2.3, main-<sha>), each checked in
  the registry. `floating`: the tags that move (1.2, 1, `latest`, in that order) are pointed, through the
  registry's HTTP API, at the builds the registry holds, decided by `floating_targets` from the registry's
  own tag list right before each move (see "Which version is highest" in docs/decisions.md). `inv push`
  runs both; the publish workflow runs them as two jobs, the second in one concurrency group shared by
  every run, so no two runs ever move floating tags at the same time. A failure stops the sequence, so a
  half-finished publish never moves `latest` and every floating tag points at an image whose immutable
  tag exists.
- The floating stage is a reconciliation, not "move my tags": whichever run does it last, and in whatever
  order the runs finish, the floating tags end at the highest published builds. A run whose turn was
  skipped (GitHub cancels a waiting run when a newer one joins the group) loses nothing: the next run
  moves its tags for it.
- After each push the registry itself is asked what the tag resolves to (HTTP API, registry_api.py): all
  tags of one publish must share the manifest digest of the first push. A mismatch (someone else pushed
  in between) stops before `latest`.
- Credentials: ATBB_REGISTRY_TOKEN, else GITHUB_TOKEN; user ATBB_REGISTRY_USER, else GITHUB_ACTOR. The
  token reaches `docker login` on stdin as a Secret, never in argv (visible in `ps`), logs or dry runs.
  GITHUB_TOKEN is only sent to ghcr.io (or a loopback test registry): a typo in image.registry must not
  hand a GitHub token to a stranger's host. Other registries need ATBB_REGISTRY_TOKEN.
- With a token, login and pushes use a private DOCKER_CONFIG folder (mode 0700, deleted when the task
  ends): the docker client stores the token base64-encoded, not encrypted, in config.json; this way it
  never outlives the run, does not replace the user's own login, and does not end up in a credential
  store. Without a token the user's existing `docker login` (their DOCKER_CONFIG) is used as is.
- `inv push` publishes what the local engine holds, so one platform. A multi-platform image never
  reaches the engine (buildx keeps it in its cache) and is refused with that reason.
- --dry-run still refuses what a real push would refuse (it answers "would this publish?"), but only
  notes a missing local image, so the commands can be previewed before `inv image` has run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from atbb_kit.commands import docker as commands
from atbb_kit.commands.base import Secret
from atbb_kit.core import flags
from atbb_kit.core.errors import ConfigError, EngineUnavailable, KitError
from atbb_kit.core.tags import TagPlan, format_for_github, github_output_lines, sanitize_tag
from atbb_kit.infra.checkout import plan_for, run_git
from atbb_kit.infra.console import console
from atbb_kit.infra.registry_api import (
    Credentials,
    RegistryError,
    Repository,
    is_loopback,
    manifest_digest,
    split_reference,
)
from atbb_kit.infra.runner import Result, Runner

if TYPE_CHECKING:
    import semver

    from atbb_kit.core.config import Config

LATEST = "latest"
# Registries GITHUB_TOKEN may be sent to (plus loopback addresses, for local and CI test registries).
GITHUB_TOKEN_REGISTRIES = frozenset({"ghcr.io"})
_PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
# docker's error output, reduced to a reason: these phrases mean "nothing answered" ...
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "tls handshake timeout",
    "network is unreachable",
    "connection reset by peer",
    "no route to host",
    "server gave http response to https client",
    "certificate",
)
# ... and these that the registry answered no. Whole words only: a port like :40123 must not read as 401.
_REFUSED = re.compile(r"\b(unauthorized|authentication required|incorrect username or password|status: 401)\b")
_DENIED = re.compile(r"\b(denied|forbidden|status: 403)\b")


# --------------------------------------------------------------------------------------------------------
# Pure pieces (unit-tested as tables)


def push_order(plan: TagPlan) -> list[str]:
    """Full references in push order: immutable tags, then floating ones (plan order), `latest` last."""
    fixed = [t for t in plan.tags if t not in plan.floating]
    moving = [t for t in plan.tags if t in plan.floating and t != LATEST]
    last = [LATEST] if LATEST in plan.tags else []
    return [f"{plan.repository}:{t}" for t in (*fixed, *moving, *last)]


@dataclass(frozen=True)
class Login:
    user: str
    token: Secret
    # The variables they came from, so an auth error names what to fix.
    user_var: str
    token_var: str

    @property
    def hint(self) -> str:
        return f"check {self.user_var}/{self.token_var}"


def registry_login(environ: Mapping[str, str], registry: str) -> tuple[Login | None, list[str]]:
    """The login to perform (None: rely on the docker client's existing login) and notes for stderr."""
    notes: list[str] = []
    token_var = next((v for v in ("ATBB_REGISTRY_TOKEN", "GITHUB_TOKEN") if environ.get(v, "").strip()), None)
    from_github = token_var == "GITHUB_TOKEN"  # noqa: S105 - the variable's name, not a secret
    if from_github and registry.lower() not in GITHUB_TOKEN_REGISTRIES and not is_loopback(registry):
        notes.append(
            f"note: GITHUB_TOKEN is only sent to ghcr.io, not to {registry}; set ATBB_REGISTRY_TOKEN to log in there"
        )
        token_var = None
    if token_var is None:
        if environ.get("ATBB_REGISTRY_USER", "").strip():
            notes.append("note: ATBB_REGISTRY_USER is set but no token is; using the docker client's existing login")
        return None, notes
    user_var = next((v for v in ("ATBB_REGISTRY_USER", "GITHUB_ACTOR") if environ.get(v, "").strip()), None)
    if user_var is None:
        raise KitError(
            f"{token_var} is set but no registry user is",
            "set ATBB_REGISTRY_USER (in GitHub Actions GITHUB_ACTOR is used)",
        )
    token = Secret(environ[token_var].strip())
    return Login(environ[user_var].strip(), token, user_var, token_var), notes


def failure_reason(output: str) -> str:
    """The gist of docker's complaint, for a one-line error: a known phrase, else its last line."""
    lowered = output.lower()
    for phrase in _UNREACHABLE:
        if phrase in lowered:
            return phrase
    if _REFUSED.search(lowered):
        return "unauthorized"
    if _DENIED.search(lowered):
        return "denied"
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "no output"
    return last.removeprefix("Error response from daemon: ")[:160]


def is_unreachable(reason: str) -> bool:
    return reason in _UNREACHABLE


def push_digest(output: str) -> str | None:
    """The digest `docker push` reports (`1.2.3: digest: sha256:... size: 528`)."""
    found = _PUSH_DIGEST.findall(output)
    return found[-1] if found else None


def github_push_summary(repository: str, digest: str, refs: Sequence[str]) -> str:
    lines = [f"### Pushed `{repository}`", "", f"Digest `{digest}`", "", "| Tag | Digest |", "| --- | --- |"]
    lines += [f"| `{ref.rsplit(':', 1)[1]}` | `{digest[:19]}…` |" for ref in refs]
    return "\n".join(lines) + "\n"


def github_floating_summary(repository: str, results: Sequence[FloatingResult]) -> str:
    lines = [f"### Floating tags of `{repository}`", "", "| Tag | Points at | Digest | |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{r.tag}` | `{r.target}` | `{r.digest[:19]}…` | {'moved' if r.moved else 'unchanged'} |" for r in results
    ]
    return "\n".join(lines) + "\n"


def write_github(environ: Mapping[str, str], outputs: Mapping[str, str], summary: str) -> None:
    """Append step outputs to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY (Actions only)."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return

    for var, text in (("GITHUB_OUTPUT", github_output_lines(outputs)), ("GITHUB_STEP_SUMMARY", summary)):
        path = environ.get(var, "")
        if not path:
            console.warn(f"GITHUB_ACTIONS=true but {var} is not set; step outputs not written")
            continue
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(text)


# --------------------------------------------------------------------------------------------------------
# The push sequence, with its I/O passed in so unit tests can drive it with fakes.

DigestQuery = Callable[[str], str | None]


def publish(
    run: Runner,
    docker: str,
    refs: Sequence[str],
    *,
    registry: str,
    config_dir: Path | None,
    registry_digest: DigestQuery,
    progress: Callable[[str], None] = console.say,
) -> str | None:
    """Push `refs` in order and check each against the registry; return the digest they all share.

    Stops at the first failure, so nothing after it (above all `latest`) is pushed.
    """
    expected: str | None = None
    total = len(refs)
    for i, ref in enumerate(refs, start=1):
        res = run.run(commands.docker_push(docker, ref, config_dir=config_dir), check=False, capture=True)
        if run.dry_run:
            continue
        if not res.ok:
            reason = failure_reason(res.stderr + "\n" + res.stdout)
            refusal = ghcr_refusal(res.stderr + "\n" + res.stdout, ref)
            if refusal:
                what, fix = refusal
            elif is_unreachable(reason):
                what, fix = f"registry {registry} is not reachable ({reason})", "check that the registry is up"
            elif reason in ("unauthorized", "denied"):
                what = f"registry {registry} refused the push of {ref} ({reason})"
                fix = "the token needs write access to the package (packages: write in GitHub Actions)"
            else:
                what, fix = f"docker push {ref} failed ({reason})", commands.PUSH_HINT
            raise RegistryError(what + _progress_note(i - 1, refs), fix)
        # From here on `ref` is pushed; what is left to say is whether it points where it should.
        reported = push_digest(res.stdout)
        try:
            actual = registry_digest(ref) or reported
        except RegistryError as exc:
            raise RegistryError(f"{exc.what} while checking {ref}" + _progress_note(i, refs), exc.fix) from None
        if actual is None:
            raise RegistryError(
                f"the registry does not know {ref} right after pushing it" + _progress_note(i, refs),
                "retry; if it persists the registry may be read-only or caching",
            )
        expected = expected or actual
        if actual != expected or (reported and reported != expected):
            raise RegistryError(
                f"{ref} resolves to {actual} in the registry, not {expected} like {refs[0]} "
                "(another push may have raced this one)" + _progress_note(i, refs),
                "rebuild and rerun `inv push`",
            )
        progress(f"pushed {i}/{total} {ref} {expected}")
    return expected


def _progress_note(done: int, refs: Sequence[str]) -> str:
    """`; 1 of 4 tags pushed, not pushed: 1, latest (`latest` untouched)` for a one-line error."""
    rest = [r.rsplit(":", 1)[1] for r in refs[done:]]
    note = f"; {done} of {len(refs)} tags pushed"
    if rest:
        note += f", not pushed: {', '.join(rest)}"
    if LATEST in rest:
        note += " (`latest` untouched)"
    return note


@contextmanager
def private_docker_config(enabled: bool):
    """A throwaway DOCKER_CONFIG folder (0700) for one login, removed afterwards; None when disabled."""
    if not enabled:
        yield None
        return

    folder = Path(tempfile.mkdtemp(prefix="atbb-docker-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def docker_client() -> str:
    """The docker client to talk to the registry with: the one on PATH, else Debian's /usr/bin/docker.

    Any client version can log in and push; no builder is needed, so no probing (detect_cli) either.
    """
    return shutil.which("docker") or ("/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")


# --------------------------------------------------------------------------------------------------------
# GHCR's first-push refusals: each names the setting that is in the way.

_GHCR_CREATE = re.compile(r"not allowed to create (an )?organi[sz]ation package", re.IGNORECASE)
_GHCR_WRITE = re.compile(
    r"not allowed to write (an )?organi[sz]ation package|permission_denied:\s*write_package", re.IGNORECASE
)


def ghcr_refusal(output: str, ref: str) -> tuple[str, str] | None:
    """(what, fix) when GHCR's answer (docker's output, or the registry's error message) is one of the
    refusals an organisation's settings explain; None for anything else.

    - "installation not allowed to Create organization package": the package does not exist yet and the
      organisation does not let this repository's workflows create one (its package creation policy, or
      workflow permissions that are read-only).
    - "installation not allowed to Write organization package" / "permission_denied: write_package": the
      package exists (made by hand, another repository, or an earlier upload with another token) and
      this repository is not among those with write access to it.
    """
    try:
        _, path, _ = split_reference(ref)
    except ValueError:
        path = ref.rpartition(":")[0]
    owner, _, name = path.partition("/")
    quoted = "; ".join(
        ln.strip() for ln in output.strip().splitlines() if _GHCR_CREATE.search(ln) or _GHCR_WRITE.search(ln)
    )[:160]
    if _GHCR_CREATE.search(output):
        return (
            f"GHCR refused to create the package {path} ({quoted}): the {owner} organisation does not let this "
            "repository's workflows create packages",
            f"an owner of {owner} allows it: organisation Settings > Packages > Package creation (tick the "
            "visibility), and Settings > Actions > General > Workflow permissions must not be read-only",
        )
    if _GHCR_WRITE.search(output):
        return (
            f"GHCR refused to write to the package {path} ({quoted}): it exists, but this repository has no "
            "write access to it",
            f"in the package's settings (github.com/{owner} > Packages > {name} > Package settings) add this "
            "repository under Manage Actions access with the Write role",
        )
    return None


def private_package_note(registry: str, ref: str, *, anonymous_digest: DigestQuery) -> str | None:
    """A note when nobody can pull `ref` without logging in: GHCR makes a new package private unless the
    organisation's default says otherwise, and operators then get "unauthorized" from `docker pull`."""
    try:
        anonymous_digest(ref)
    except RegistryError as exc:
        if "refused" not in exc.what:
            return None
        name = ref.rpartition(":")[0]
        return (
            f"note: {name} cannot be pulled without a login (the package is private); to let operators pull "
            "it: Package settings > Danger Zone > Change visibility > Public"
        )
    return None


# --------------------------------------------------------------------------------------------------------
# Floating tags: which build each one must point at, decided from the registry's tags.


def published_versions(tags: Iterable[str]) -> list[semver.Version]:
    """The release versions a registry holds: tags that are exactly semver (1.2.3, 1.2.3-rc.1)."""
    import semver

    found = []
    for tag in tags:
        try:
            version = semver.Version.parse(tag)
        except ValueError:
            continue
        if str(version) == tag:
            found.append(version)
    return found


def floating_targets(
    tags: Iterable[str], newest_main: str | None = None, main_is_newer: Callable[[str], bool] = lambda _: False
) -> dict[str, str]:
    """{floating tag: immutable tag it must point at}, in push order (1.2 lines, 1 lines, `latest` last).

    - X.Y points at the highest published X.Y.z, X (X > 0) at the highest X.y.z: stable releases only.
    - `latest` points at the highest published stable release, or at `newest_main` (the newest build of
      the default branch that the registry holds) when `main_is_newer(release)` says that build's commit
      comes after the release's commit. A release and a main build of the same commit: the release.
    """
    stable = sorted(v for v in published_versions(tags) if not v.prerelease)
    minors: dict[str, str] = {}
    majors: dict[str, str] = {}
    for v in stable:  # ascending: the highest of each line is written last
        minors[f"{v.major}.{v.minor}"] = str(v)
        if v.major > 0:
            majors[str(v.major)] = str(v)
    targets = {**minors, **majors}
    highest = str(stable[-1]) if stable else None
    if highest and newest_main and main_is_newer(highest):
        targets[LATEST] = newest_main
    elif highest or newest_main:
        targets[LATEST] = highest or newest_main or ""
    return targets


@dataclass(frozen=True)
class FloatingResult:
    tag: str
    target: str
    digest: str
    moved: bool


class TagStore(Protocol):
    """What the floating stage needs from a registry repository (registry_api.Repository)."""

    def tags(self) -> list[str]: ...
    def digest(self, reference: str) -> str | None: ...
    def retag(self, source: str, tag: str) -> str: ...


def move_floating(
    store: TagStore,
    decide: Callable[[list[str]], dict[str, str]],
    *,
    repository: str,
    progress: Callable[[str], None] = console.say,
) -> list[FloatingResult]:
    """Point every floating tag at its target, deciding again from a fresh tag list before each move.

    Reading the registry right before each move is what makes a late run harmless: a higher version
    published by another run since this one checked out is in the list, and wins.
    """
    results: list[FloatingResult] = []
    # (tag, target) pairs handled: a tag whose target changed since (a higher build appeared) comes again.
    done: set[tuple[str, str]] = set()
    while True:
        targets = decide(store.tags())  # in push order: `latest` is always the last one left
        pending = [t for t in targets if (t, targets[t]) not in done]
        if not pending:
            return results
        tag = pending[0]
        target = targets[tag]
        done.add((tag, target))
        want = store.digest(target)
        if want is None:
            raise RegistryError(
                f"{repository}:{target} vanished from the registry while moving {tag}",
                "rerun `inv push --only floating`",
            )
        current = store.digest(tag)
        if current == want:
            results.append(FloatingResult(tag, target, want, moved=False))
            progress(f"kept {repository}:{tag} at {target} {want}")
            continue
        try:
            store.retag(target, tag)
        except RegistryError as exc:
            refusal = ghcr_refusal(exc.detail or exc.what, f"{repository}:{tag}")
            if refusal:
                raise RegistryError(*refusal) from None
            raise RegistryError(f"{exc.what}; {_floating_note(tag, results)}", exc.fix) from None
        now = store.digest(tag)
        if now != want:
            raise RegistryError(
                f"{repository}:{tag} resolves to {now} right after pointing it at {target} ({want}): another "
                f"push is moving it; {_floating_note(tag, results)}",
                "publishing runs must share one concurrency group; rerun `inv push --only floating`",
            )
        results.append(FloatingResult(tag, target, want, moved=True))
        progress(f"moved {repository}:{tag} to {target} {want}")


def _floating_note(tag: str, results: Sequence[FloatingResult]) -> str:
    moved = [r.tag for r in results if r.moved]
    return f"{tag} not moved" + (f" (moved before it: {', '.join(moved)})" if moved else " (nothing moved)")


def latest_note(own: str, own_floating: Iterable[str], results: Sequence[FloatingResult]) -> str | None:
    """Why `latest` does not point at this run's build although its plan included it, for stderr."""
    if LATEST not in own_floating:
        return None
    final = next((r for r in results if r.tag == LATEST), None)
    if final is None or final.target == own:
        return None
    return (
        f"note: latest stays at {final.target}, not {own}: the registry holds a newer build "
        "(published after this checkout, or a release this checkout does not know)"
    )


# --------------------------------------------------------------------------------------------------------
# The default branch's history, from the checkout: which main build is newest, and is it past a release.

GitRun = Callable[[Sequence[str]], "tuple[bool, str]"]


def newest_main_build(
    git: GitRun, default_branch: str, branch_tag: Callable[[str], str], published: set[str], depth: int = 200
) -> tuple[str, str] | None:
    """(tag, commit) of the newest build of the default branch the registry holds: the first commit on
    the branch's first-parent history (origin's copy when the checkout has one) with a published tag."""
    for ref in (f"refs/remotes/origin/{default_branch}", f"refs/heads/{default_branch}"):
        ok, out = git(["rev-list", "--first-parent", f"--max-count={depth}", ref, "--"])
        if not ok:
            continue
        for sha in out.split():
            tag = branch_tag(sha)
            if tag in published:
                return tag, sha
        return None
    return None


def main_is_newer_than(git: GitRun, main_commit: str) -> Callable[[str], bool]:
    """Whether the main build's commit strictly descends from the commit release `version` was tagged on.
    A release this checkout has no tag for (pushed after it) counts as newer than the main build."""

    def check(version: str) -> bool:
        for name in (f"v{version}", version):
            ok, out = git(["rev-parse", "--verify", "--quiet", f"refs/tags/{name}^{{commit}}"])
            if ok and out.strip():
                release = out.strip()
                if release == main_commit:
                    return False
                return git(["merge-base", "--is-ancestor", release, main_commit])[0]
        return False

    return check


# --- the tasks: `inv tags`, `inv push` -------------------------------------------------------------------

PUSH_STAGES = ("immutable", "floating")


def print_tags(cfg: Config, as_json: bool) -> None:
    """`inv tags`: the references on stdout (one a line, or one JSON object); warnings and notes on stderr."""
    plan = plan_for(cfg)
    for warning in plan.warnings:
        console.warn(warning)
    if not plan.publishable:
        console.say(f"note: not publishable: {plan.reason}")
    if as_json:
        data = {
            "tags": list(plan.refs),
            "version": plan.version,
            "labels": dict(plan.labels),
            "publishable": plan.publishable,
            "reason": plan.reason,
            "repository": plan.repository,
            "floating": [r for r in plan.refs if r.rsplit(":", 1)[1] in plan.floating],
            "warnings": list(plan.warnings),
        }
        console.result(json.dumps(data, indent=2))
    else:
        console.result("\n".join(plan.refs))
    outputs, summary = format_for_github(plan)
    write_github(os.environ, outputs, summary)


def check_stage(only: str | None) -> None:
    """`--only` of `inv push` and `inv release`: one of PUSH_STAGES, or None for both."""
    if only not in (None, *PUSH_STAGES):
        raise ConfigError(f"--only {only}: expected immutable or floating", "drop --only to run both stages")


def check_push_flags(image: str | None, only: str | None, by_digest: bool, digest_file: str | None) -> None:
    """`inv push`'s flags, refused before anything runs."""
    check_stage(only)
    flags.image_ref("image", image)
    if digest_file and not by_digest:
        raise ConfigError("--digest-file needs --by-digest", "add --by-digest")
    if by_digest and only:
        raise ConfigError("--by-digest pushes no tags, so --only does not apply", "drop --only")


def push(k, image: str | None, only: str | None) -> None:
    """`inv push` (tags): the immutable stage, then the floating one; the digest on stdout."""
    stages = PUSH_STAGES if only is None else (only,)
    run = k.run
    plan = plan_for_push(k.cfg)
    registry = k.cfg.image.registry.lower()
    login, notes = registry_login(os.environ, registry)
    for note in notes:
        console.say(note)
    if "floating" in stages and login is None and not run.dry_run:
        raise KitError(
            "moving the floating tags (1.2, 1, latest) goes through the registry's API, which needs a token",
            "set ATBB_REGISTRY_TOKEN and ATBB_REGISTRY_USER (in GitHub Actions GITHUB_TOKEN is used for ghcr.io)",
        )
    digest = None
    if "immutable" in stages:
        digest = push_immutable(k, plan, registry, login, image)
    if "floating" in stages:
        push_floating(k, plan, registry, login)
    if digest is not None:
        console.result(digest)


def plan_for_push(cfg: Config) -> TagPlan:
    plan = plan_for(cfg)
    plan.require_publishable()
    for warning in plan.warnings:
        console.warn(warning)
    return plan


def _credentials(login: Login | None) -> Credentials | None:
    return Credentials(login.user, login.token.reveal()) if login else None


def _local_image_problem(found: Result, docker: str, source: str, image: str | None) -> KitError:
    """Why `docker image inspect` of the image to push failed, as the error a real push stops with."""
    stderr = found.stderr.lower()
    if found.returncode == 127:
        return EngineUnavailable(f"no docker client found ({docker})", commands.DOCKER_HINT)
    if "no such image" in stderr:
        fix = "check --image" if image else "run `inv image` first (it builds and tags it)"
        return KitError(f"no local image {source}", fix)
    if "cannot connect" in stderr or "daemon running" in stderr:
        return EngineUnavailable(
            "no Docker engine answers",
            "start the engine (sudo systemctl start docker, or scripts/ensure-docker.sh)",
        )
    return KitError(f"cannot inspect the local image {source} ({failure_reason(found.stderr)})")


def _login_error(registry: str, login: Login, result: Result) -> RegistryError:
    """A failed `docker login`, classified: unreachable, refused, or anything else."""
    reason = failure_reason(result.stderr + "\n" + result.stdout)
    if is_unreachable(reason):
        return RegistryError(
            f"registry {registry} is not reachable ({reason})",
            "check image.registry (ATBB_IMAGE_REGISTRY) and that the registry is up",
        )
    if reason in ("unauthorized", "denied"):
        return RegistryError(f"registry {registry} refused the login ({reason})", login.hint)
    return RegistryError(f"docker login {registry} failed ({reason})", login.hint)


def push_immutable(k, plan: TagPlan, registry: str, login: Login | None, image: str | None) -> str | None:
    """`docker push` of the tags that never move, each checked in the registry; the digest they share."""
    run = k.run
    platforms = k.cfg.image.platforms
    if len(platforms) > 1 and not image:
        # buildx cannot load a multi-platform image into the engine, so there is nothing local to push.
        raise KitError(
            f"image.platforms lists {len(platforms)} platforms; a multi-platform image exists only in the "
            "buildx cache and cannot be pushed from the local engine",
            "push each platform's image with `inv push --by-digest` and join them with `inv release`",
        )
    docker = docker_client()
    source = image or plan.primary

    found = run.probe(commands.docker_image_id(docker, source))
    if not found.ok:
        problem = _local_image_problem(found, docker, source, image)
        if not run.dry_run:
            raise problem
        console.say(f"note: a real push would stop here: {problem}")

    refs = [r for r in push_order(plan) if r.rsplit(":", 1)[1] not in plan.floating]
    console.say(f"==> pushing {source} as {len(refs)} tag(s) to {registry}" + (" (dry run)" if run.dry_run else ""))
    credentials = _credentials(login)
    fallback_noted = False

    def registry_digest(ref: str) -> str | None:
        nonlocal fallback_noted
        host, repository, tag = split_reference(ref)
        try:
            return manifest_digest(host, repository, tag, credentials=credentials)
        except RegistryError as exc:
            # Without our own credentials the API may refuse us although the docker client's stored
            # login could push: then the digest docker push reported (from the registry) must do.
            if credentials is not None or "refused" not in exc.what:
                raise
            if not fallback_noted:
                console.say(f"note: {exc.what}; trusting the digests `docker push` reports (set ATBB_REGISTRY_TOKEN)")
                fallback_noted = True
            return None

    with private_docker_config(login is not None) as config_dir:
        if login is not None:
            cmd = commands.docker_login(docker, registry, login.user, login.token, config_dir=config_dir)
            res = run.run(cmd, check=False, capture=True)
            if not res.ok:
                raise _login_error(registry, login, res)
        for ref in refs:
            if ref != source:
                run.run(commands.docker_tag(docker, source, ref))
        digest = publish(run, docker, refs, registry=registry, config_dir=config_dir, registry_digest=registry_digest)

    if run.dry_run or digest is None:
        console.say(f"dry run: would push {', '.join(r.rsplit(':', 1)[1] for r in refs)} in that order")
        return None
    if registry in GITHUB_TOKEN_REGISTRIES:
        host, repository, tag = split_reference(refs[0])
        note = private_package_note(
            registry, refs[0], anonymous_digest=lambda ref: manifest_digest(host, repository, tag)
        )
        if note:
            console.say(note)
    write_github(os.environ, {"digest": digest}, github_push_summary(plan.repository, digest, refs))
    return digest


def push_floating(k, plan: TagPlan, registry: str, login: Login | None) -> None:
    """Point 1.2, 1 and latest at the highest builds the registry holds (see floating_targets)."""
    run, cfg = k.run, k.cfg
    if run.dry_run:
        console.say(
            "dry run: would then point the floating tags (X.Y, X, latest) at the highest builds "
            f"{plan.repository} holds in the registry"
        )
        return
    host, path, _ = split_reference(plan.primary)
    store = Repository(host, path, credentials=_credentials(login))
    root = cfg.root()

    def git(args):
        (res,) = run_git(root, [args])
        return res.ok, res.stdout

    release = cfg.release

    def branch_tag(sha: str) -> str:
        return sanitize_tag(release.default_branch, suffix=sha[: release.sha_length], fallback="branch")

    def decide(tags: list[str]) -> dict[str, str]:
        newest = newest_main_build(git, release.default_branch, branch_tag, set(tags))
        if newest is None:
            return floating_targets(tags)
        return floating_targets(tags, newest[0], main_is_newer_than(git, newest[1]))

    console.say(f"==> pointing the floating tags of {plan.repository} at the highest published builds")
    results = move_floating(store, decide, repository=plan.repository)
    note = latest_note(plan.version, plan.floating, results)
    if note:
        console.say(note)
    write_github(os.environ, {}, github_floating_summary(plan.repository, results))
